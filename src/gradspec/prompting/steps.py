"""Steps of a response: spans of its text (lines, sentences, paragraphs, or what a regular
expression separates), and the response tokens each holds.

A token belongs to the step its first character falls in; a step that holds no loss-carrying
token (one cut off by truncation) is left out. Spans are in characters of the response text and
in token positions of the encoded sample (``[start, end)``), both stored, so a step can be found
in the text and its gradient is over exactly those tokens.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import regex

SEPARATORS = {
    "newline": r"\n+",
    "sentence": r"(?<=[.!?])\s+|\n+",
    "paragraph": r"\n\s*\n",
}


@dataclass(frozen=True)
class Step:
    """One step of a response: its characters (in the response) and tokens (in the sample)."""

    char_start: int
    char_end: int
    token_start: int
    token_end: int

    @property
    def n_tokens(self) -> int:
        return self.token_end - self.token_start


PATTERN_SECONDS = 2.0
"""Longest a user's separator pattern may search one response: a pattern like ``(a+)+$`` backtracks
for minutes on 30 characters; real ones take microseconds."""


@functools.lru_cache(maxsize=16)
def separators(rule: str) -> regex.Pattern[str]:
    return regex.compile(SEPARATORS.get(rule, rule))


def char_spans(text: str, rule: str) -> list[tuple[int, int]]:
    """[start, end) of each non-blank piece of ``text`` between separators of ``rule``; a ``ValueError``
    when the pattern searches this text for longer than ``PATTERN_SECONDS`` (the record fails alone)."""
    spans, start = [], 0
    try:
        for m in separators(rule).finditer(text, timeout=PATTERN_SECONDS):
            if m.end() == m.start():
                continue  # an empty match separates nothing
            spans.append((start, m.start()))
            start = m.end()
    except TimeoutError as exc:
        raise ValueError(
            f"--steps {rule!r} searched this response for over {PATTERN_SECONDS:g} s (nested quantifiers "
            "backtrack without end); simplify the pattern"
        ) from exc
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def token_steps(
    spans: list[tuple[int, int]], offsets: Sequence[tuple[int, int]], response_start: int, loss_mask: Sequence[bool]
) -> list[Step]:
    """The steps' token spans, which partition the loss-carrying tokens: ``offsets`` are the sample's
    tokens' character spans in its whole text, whose response begins at ``response_start``.

    A token belongs to the span its first character falls in; one that starts in a separator (a
    newline token) or before the response (a token across the prompt's end) joins the step before
    it, or the first step, so every loss-carrying token is in exactly one step and the steps'
    gradients add up to the sample's."""
    starts = [a for a, _ in spans]
    owner: list[int | None] = []
    for (s, e), carries in zip(offsets, loss_mask):
        c = s - response_start
        i = bisect.bisect_right(starts, c) - 1
        owner.append(i if carries and e > s and i >= 0 and c < spans[i][1] else None)
    tokens: dict[int, list[int]] = {}
    current: int | None = None
    loose: list[int] = []  # loss tokens before the first owned one
    for t, (o, carries) in enumerate(zip(owner, loss_mask)):
        if not carries:
            continue
        if o is not None:
            current = o
        if current is None:
            loose.append(t)
            continue
        tokens.setdefault(current, []).append(t)
    if not tokens:
        return []
    first = min(tokens)
    tokens[first] = loose + tokens[first]
    return [Step(spans[i][0], spans[i][1], ts[0], ts[-1] + 1) for i, ts in sorted(tokens.items())]
