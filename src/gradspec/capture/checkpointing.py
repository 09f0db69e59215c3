"""Activation checkpointing of decoder layers, for long samples that would not fit in memory.

Each decoder layer keeps only its input; its inside is recomputed during the backward pass
(``torch.utils.checkpoint``, non-reentrant). The model stays in eval mode (Hugging Face's own
switch only works in training mode, which would turn dropout on), so the recomputation is
exact. ``Capture`` records the first call of each projection and ignores the recomputed one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from torch import nn
from torch.utils.checkpoint import checkpoint

from gradspec.model.adapters.registry import decoder_layers


@contextmanager
def layer_checkpointing(model: nn.Module, enabled: bool = True) -> Iterator[None]:
    """Within the block every decoder layer's forward is checkpointed (no-op when not ``enabled``)."""
    if not enabled:
        yield
        return
    layers = list(decoder_layers(model))
    for layer in layers:
        layer.forward = partial(checkpoint, layer.forward, use_reentrant=False)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward  # the class's forward again
