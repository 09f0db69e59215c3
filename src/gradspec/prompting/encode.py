"""Token ids and the loss mask of one record.

The ids are those of ``tokenizer(prompt + response)``. Loss is taken on every token from
the response's first token on: the first token whose character span reaches past the prompt.
Position 0 is never predicted, so it never carries loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gradspec.config.prompt import PromptConfig
from gradspec.data.records import Record
from gradspec.prompting.templates import render_prompt


@dataclass(frozen=True)
class Encoded:
    """A record as the model sees it."""

    sample_id: str
    index: int
    input_ids: list[int]
    loss_mask: list[bool]  # loss_mask[t]: token t is a response token that is predicted
    n_prompt_tokens: int
    truncated: bool

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_response_tokens(self) -> int:
        return sum(self.loss_mask)


@dataclass(frozen=True)
class Skipped:
    """A record that leaves no response token to score, and why."""

    sample_id: str
    index: int
    reason: str
    n_tokens: int
    n_prompt_tokens: int


def response_start(tokenizer: Any, text: str, prompt_chars: int, add_special: bool) -> tuple[list[int], int]:
    """Ids of ``text`` and the index of the response's first token."""
    try:
        enc = tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
    except NotImplementedError:  # slow tokenizers have no offsets: count the prompt's own tokens
        ids = tokenizer(text, add_special_tokens=add_special)["input_ids"]
        n_prompt = len(tokenizer(text[:prompt_chars], add_special_tokens=add_special)["input_ids"])
        return list(ids), min(n_prompt, len(ids))
    ids = list(enc["input_ids"])
    # Special tokens have empty spans (s == e); they belong to the side they stand on.
    start = next(
        (t for t, (s, e) in enumerate(offsets) if e > prompt_chars and e > s),
        len(ids),
    )
    return ids, start


def encode(record: Record, tokenizer: Any, config: PromptConfig) -> Encoded | Skipped:
    """Tokenise a record and truncate it to ``config.max_length``."""
    prompt, add_special = render_prompt(record, tokenizer, config)
    ids, n_prompt = response_start(tokenizer, prompt + record.response, len(prompt), add_special)
    n_total = len(ids)
    truncated = n_total > config.max_length
    if truncated and config.truncation == "prompt_start":
        # Drop the prompt's start, keeping at least one prompt token to predict from.
        drop = min(n_total - config.max_length, max(n_prompt - 1, 0))
        ids, n_prompt = ids[drop:], n_prompt - drop
    ids = ids[: config.max_length]
    mask = [t >= max(n_prompt, 1) for t in range(len(ids))]
    if not any(mask):
        if n_prompt >= len(ids):
            reason = (
                f"record {record.index}: prompt fills the max length ({n_prompt} prompt tokens, "
                f"max_length {config.max_length}); no response token left"
            )
        else:
            reason = f"record {record.index}: response has no token that can be predicted"
        return Skipped(record.sample_id, record.index, reason, n_total, n_prompt)
    return Encoded(record.sample_id, record.index, ids, mask, min(n_prompt, len(ids)), truncated)
