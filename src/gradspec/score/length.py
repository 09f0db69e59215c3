"""Prompt and response sizes: characters and tokens, before any truncation.

Response length drives gradient norms and ranks, so every comparison needs it at hand.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from gradspec.data import BadRecord, Record
from gradspec.prompting import PromptConfig, encode
from gradspec.score.outcome import Scored, failed

FIELDS = ("prompt_tokens", "response_tokens", "prompt_chars", "response_chars")


def length_scores(items: Sequence[Record | BadRecord], tokenizer: Any, prompt: PromptConfig) -> dict[int, Scored]:
    """Token counts under ``prompt``'s template (untruncated) and character counts."""
    whole = PromptConfig(prompt.template, prompt.system_prompt, sys.maxsize, prompt.truncation)
    out: dict[int, Scored] = {}
    for item in items:
        if isinstance(item, BadRecord):
            out[item.index] = failed(FIELDS, item.reason)
            continue
        prompt_chars = sum(len(m.content) for m in item.messages)
        enc = encode(item, tokenizer, whole)  # a Skipped one (no response token) still has sizes
        out[item.index] = Scored(
            {
                "prompt_tokens": enc.n_prompt_tokens,
                "response_tokens": enc.n_tokens - enc.n_prompt_tokens,
                "prompt_chars": prompt_chars,
                "response_chars": len(item.response),
            }
        )
    return out
