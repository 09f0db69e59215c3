"""Prompt and response sizes: characters and tokens, before any truncation.

Response length drives gradient norms and ranks, so every comparison needs it at hand.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace

from gradspec.data import Record
from gradspec.data.values import LENGTH_FIELDS
from gradspec.prompting import Refused, encode_record
from gradspec.score.context import ScoreContext
from gradspec.score.outcome import Scored, failed
from gradspec.score.registry import register_scorer


@register_scorer("length", LENGTH_FIELDS, needs_model=True, per_record=True)
def length_scores(ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    """Token counts under the prompt's template (untruncated) and character counts."""
    tokenizer = ctx.language_model().tokenizer
    whole = replace(ctx.prompt, max_length=sys.maxsize, response_tokens=None, record_windows=False)
    out: dict[int, Scored] = {}
    for item in records:
        n_prompt_chars = sum(len(m.content) for m in item.messages)
        enc = encode_record(item, tokenizer, whole)  # a Skipped one (no response token) still has sizes
        if isinstance(enc, Refused):  # the tokenizer raised: no token counts, the characters are known
            out[item.index] = failed(
                LENGTH_FIELDS, enc.reason, n_prompt_chars=n_prompt_chars, n_response_chars=len(item.response)
            )
            continue
        out[item.index] = Scored(
            {
                "n_prompt_tokens": enc.n_prompt_tokens,
                "n_response_tokens": enc.n_tokens - enc.n_prompt_tokens,
                "n_prompt_chars": n_prompt_chars,
                "n_response_chars": len(item.response),
            }
        )
    return out
