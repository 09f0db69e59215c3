"""How big a batch is and which samples share it: the token budget per batch (from the device's
free memory on a GPU, a measured constant on the CPU) and length-sorted batches within it. Kept
apart from the forward/backward pass (``batch.py``), which takes whatever batch it is given."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from gradspec.model.hf import hf
from gradspec.prompting import Encoded


def bytes_per_token(config: object, dtype_bytes: int = 4) -> int:
    """A generous estimate of the memory one token of a batch takes in forward and backward.

    Per layer: the activations autograd keeps (about 16 x hidden and 4 x MLP width), which
    also covers the captured inputs and output gradients of the projections; then the logits,
    their float32 copy and their gradient (3 x vocabulary, float32).
    """
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0) or 1024)
    mlp = int(getattr(config, "intermediate_size", 0) or 4 * hidden)
    layers = int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layer", 0) or 1)
    vocab = int(getattr(config, "vocab_size", 0) or 32000)
    return dtype_bytes * layers * (16 * hidden + 4 * mlp) + 12 * vocab


def memory_batch_tokens(free_bytes: int, config: object, dtype_bytes: int = 4, share: float = 0.6) -> int:
    """Tokens per batch that fit ``share`` of ``free_bytes``, in steps of 256, at least 256."""
    tokens = int(share * free_bytes / bytes_per_token(config, dtype_bytes))
    return max(256, min(tokens, 1 << 17) // 256 * 256)


def default_batch_tokens(device: str, model: nn.Module | None = None) -> int:
    """Token budget per batch when none is given (see ``ComputeConfig.batch_tokens``).

    On a GPU: what fits in its free memory next to the model (``memory_batch_tokens``), or
    16384 when the model is not known. On the CPU: 512, where bigger batches of long samples
    were measured slower per sample while short samples still gain from packing.
    """
    if not device.startswith("cuda"):
        return 512
    if model is None:
        return 16384
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return memory_batch_tokens(free, hf(model).config, next(model.parameters()).element_size())


def token_batches(samples: Sequence[Encoded], batch_tokens: int) -> Iterator[list[Encoded]]:
    """Length-sorted batches whose padded size (count x longest) stays within ``batch_tokens``."""
    batch: list[Encoded] = []
    for s in sorted(samples, key=lambda s: s.n_tokens, reverse=True):
        if batch and (len(batch) + 1) * batch[0].n_tokens > batch_tokens:
            yield batch
            batch = []
        batch.append(s)
    if batch:
        yield batch
