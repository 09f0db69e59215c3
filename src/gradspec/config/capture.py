"""Options of the capture stage: which projections, how many tokens per batch, checkpointing."""

from __future__ import annotations

from dataclasses import dataclass, field

from gradspec.config.fields import Options
from gradspec.store.contract import Module

DEFAULT_MODULES: tuple[Module, ...] = ("q", "k", "v", "o")


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
