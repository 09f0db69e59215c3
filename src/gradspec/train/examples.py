"""Records as training examples: the ids ``compute`` measures, with labels on response tokens only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gradspec.prompting import Encoded

IGNORE = -100  # the label transformers' losses skip


@dataclass(frozen=True)
class Examples:
    """Encoded records, and why the others could not be used."""

    encoded: list[Encoded]
    skipped: dict[int, str]


def labels_of(e: Encoded) -> list[int]:
    """The ids where a token carries loss, ``IGNORE`` elsewhere (the model shifts them itself)."""
    return [t if m else IGNORE for t, m in zip(e.input_ids, e.loss_mask)]


def collate(batch: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask and labels of a batch of ``{"input_ids", "labels"}``."""
    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for i, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[i, :n] = torch.tensor(b["input_ids"])
        labels[i, :n] = torch.tensor(b["labels"])
        attention[i, :n] = 1
    return {"input_ids": ids, "attention_mask": attention, "labels": labels}


def token_steps(samples: Sequence[Encoded], steps: int, seed: int) -> list[list[Encoded]]:
    """The samples in seeded order, cut into ``steps`` consecutive runs of about equal response tokens
    (a sample goes to the run its tokens' midpoint falls in); an empty run is dropped, so a selection
    with fewer samples than steps trains in fewer."""
    import random

    order = list(samples)
    random.Random(seed).shuffle(order)
    total = sum(s.n_response_tokens for s in order)
    runs: list[list[Encoded]] = [[] for _ in range(steps)]
    used = 0
    for s in order:
        middle = used + s.n_response_tokens / 2
        runs[min(int(middle * steps / max(total, 1)), steps - 1)].append(s)
        used += s.n_response_tokens
    return [r for r in runs if r]
