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
    window: int | None = None
    """The record's own response window (its ``response_window`` field), for ``--record-windows``."""
    window_problem: str | None = None
    """Why the record has no usable window although it has the field (its value, said)."""


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


def conversation_key(messages: tuple[Message, ...], response: str) -> list[list[str]]:
    """What a usable record's id hashes: its turns and response, not its other fields.

    Scores and ids that ``gradspec score`` and ``select`` add therefore leave the id alone,
    so a run computed on a selected file joins with the scored file on ``sample_id``.
    """
    return [[m.role, m.content] for m in messages] + [["response", response]]


class SampleIds:
    """Assigns content-hash ids; the k-th repeat of the same content gets the suffix ``-k``.

    Repeats are numbered in file order, so ids stay stable between runs of one file. A record
    that carries the ``sample_id`` gradspec gave it (``score``, ``select``) keeps that id when
    it matches the content and is not taken yet, so a repeat keeps its ``-k`` in a subset.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._taken: set[str] = set()

    def __call__(self, raw: Any, carried: Any = None) -> str:
        base = content_hash(raw)
        if isinstance(carried, str) and carried.split("-")[0] == base and carried not in self._taken:
            self._taken.add(carried)
            return carried
        count = self._seen.get(base, 0)
        sid = base if count == 0 else f"{base}-{count}"
        while sid in self._taken:
            count += 1
            sid = f"{base}-{count}"
        self._seen[base] = count + 1
        self._taken.add(sid)
        return sid
