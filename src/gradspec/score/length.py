"""Prompt and response sizes: characters and tokens, before any truncation.

Response length drives gradient norms and ranks, so every comparison needs it at hand.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace

from gradspec.data import Record
from gradspec.prompting import Refused, encode_record
from gradspec.score.context import ScoreContext
from gradspec.score.outcome import Scored, failed
from gradspec.score.registry import register_scorer

FIELDS = ("prompt_tokens", "response_tokens", "prompt_chars", "response_chars")


@register_scorer("length", FIELDS, needs_model=True)
def length_scores(ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    """Token counts under the prompt's template (untruncated) and character counts."""
    tokenizer = ctx.language_model().tokenizer
    whole = replace(ctx.prompt, max_length=sys.maxsize, response_tokens=None, record_windows=False)
    out: dict[int, Scored] = {}
    for item in records:
        prompt_chars = sum(len(m.content) for m in item.messages)
        enc = encode_record(item, tokenizer, whole)  # a Skipped one (no response token) still has sizes
        if isinstance(enc, Refused):  # the tokenizer raised: no token counts, the characters are known
            out[item.index] = failed(FIELDS, enc.reason, prompt_chars=prompt_chars, response_chars=len(item.response))
            continue
        out[item.index] = Scored(
            {
                "prompt_tokens": enc.n_prompt_tokens,
                "response_tokens": enc.n_tokens - enc.n_prompt_tokens,
                "prompt_chars": prompt_chars,
                "response_chars": len(item.response),
            }
        )
    return out
