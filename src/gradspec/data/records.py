"""The unit every later stage sees: one input record, normalised to chat turns.

A record is either usable (``Record``) or not (``BadRecord``); both keep the record's
position in the file and a stable ``sample_id`` so that every input gets exactly one row
in the run's ``samples`` table.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: Role
    content: str


@dataclass(frozen=True)
class Record:
    """A usable sample: the turns before the response, and the response that carries the loss."""

    index: int
    sample_id: str
    messages: tuple[Message, ...]
    response: str


@dataclass(frozen=True)
class BadRecord:
    """A record that cannot be scored, with a reason naming the record and field."""

    index: int
    sample_id: str
    reason: str


def content_hash(raw: Any) -> str:
    """Stable 16-hex-digit hash of a record's content (key order does not matter)."""
    text = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class SampleIds:
    """Assigns content-hash ids; the k-th repeat of the same content gets the suffix ``-k``.

    Repeats are numbered in file order, so ids stay stable between runs of one file.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def __call__(self, raw: Any) -> str:
        base = content_hash(raw)
        count = self._seen.get(base, 0)
        self._seen[base] = count + 1
        return base if count == 0 else f"{base}-{count}"
