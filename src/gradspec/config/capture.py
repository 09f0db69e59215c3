"""Options of the capture stage: which projections, how many tokens per batch, checkpointing."""

from __future__ import annotations

from dataclasses import dataclass, field

import regex

from gradspec.config.fields import Options
from gradspec.store.contract import Module

DEFAULT_MODULES: tuple[Module, ...] = ("q", "k", "v", "o")
STEP_RULES = ("newline", "sentence", "paragraph")


def parse_steps(value: object) -> str | None:
    """A step rule: one of ``STEP_RULES``, or a regular expression of the separators."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"expects newline, sentence, paragraph or a regular expression, got {value!r}")
    if value not in STEP_RULES:
        try:
            regex.compile(value)
        except regex.error as exc:
            raise ValueError(f"{value!r} is neither {', '.join(STEP_RULES)} nor a regular expression ({exc})") from exc
    return value


@dataclass(frozen=True)
class CaptureConfig(Options):
    """What is captured in each forward/backward pass."""

    modules: tuple[Module, ...] | None = DEFAULT_MODULES
    """Projections to measure, comma-separated, or all (every projection the model has)."""

    batch_tokens: int | None = field(default=None, metadata={"min": 1, "identity": False})
    """Most padded tokens in one forward/backward batch (a longer sample gets a batch of its own); default: 512
    on a CPU, on a GPU what fits in its free memory."""

    checkpointing: bool = field(default=False, metadata={"identity": False})
    """Recompute each decoder layer during backward: less memory for long samples, about one more forward pass
    of time, the same numbers."""

    steps: str | None = field(default=None, metadata={"parse": parse_steps})
    """Also measure each step of every response: newline (lines), sentence, paragraph (blank-line separated)
    or a regular expression that matches the separators. Each step's gradient is that of its share of the
    sample's loss (its tokens' loss over all the response's tokens), so a sample's steps add up to it;
    written to the step_stats table."""
