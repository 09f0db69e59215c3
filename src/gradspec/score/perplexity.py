"""Mean response-token loss of many samples in forward-only, token-budget batches.

Shares the capture stage's collation and loss, so a perplexity here is computed on exactly
the tokens that ``compute`` takes its gradients of.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from gradspec.capture import collate, forward_losses, token_batches
from gradspec.model.placement import input_device
from gradspec.prompting import Encoded


@torch.no_grad()
def response_losses(
    model: nn.Module, samples: Sequence[Encoded], batch_tokens: int, desc: str = "", progress: bool = True
) -> dict[int, float]:
    """{sample index: mean next-token loss over its loss-mask tokens}; NaN stays NaN."""
    device = input_device(model)
    out: dict[int, float] = {}
    bar = tqdm(total=len(samples), desc=desc, unit="sample", disable=not progress)
    for batch in token_batches(samples, batch_tokens):
        ids, attn, mask = collate(batch, device)
        for s, loss in zip(batch, forward_losses(model, ids, attn, mask).tolist()):
            out[s.index] = loss
        bar.update(len(batch))
    bar.close()
    return out
