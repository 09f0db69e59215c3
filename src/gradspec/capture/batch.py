"""One padded batch through the model: per-sample losses and per-sample gradient factors.

The loss is the sum over samples of each sample's own mean response-token loss, so the
factors of sample b are exactly the gradient of b's loss, whatever else is in the batch.
Batches are right-padded; padded positions and positions after a sample's last predicted
token have zero output gradient and are cut off.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gradspec.capture.checkpointing import layer_checkpointing
from gradspec.capture.hooks import Capture
from gradspec.model.adapters import LayerProjection
from gradspec.model.placement import input_device
from gradspec.numerics import at_least_float32
from gradspec.prompting import Encoded
from gradspec.prompting.steps import Step


@dataclass
class SampleFactors:
    """Gradient factors of one sample, keyed by (layer, canonical name).

    ``x[key]`` is (T, d_in) and ``delta[key]`` is (T, d_out), in the ``nn.Linear``
    orientation, so the gradient is ``delta[key].T @ x[key]`` ([d_out, d_in]).
    """

    sample_id: str
    loss: float
    n_positions: int
    x: dict[tuple[int, str], torch.Tensor]
    delta: dict[tuple[int, str], torch.Tensor]

    def finite(self) -> bool:
        """No NaN or Inf in any factor (an input shared by q, k, v is checked once)."""
        unique = {(t.data_ptr(), t.shape): t for t in (*self.x.values(), *self.delta.values())}
        # One device-to-host transfer for the whole sample, not one per tensor (the factors of a
        # model spread over several devices meet on the first one's).
        checks = [torch.isfinite(t).all() for t in unique.values()]
        return bool(torch.stack([c.to(checks[0].device) for c in checks]).all())

    def first(self, n_positions: int) -> SampleFactors:
        """The factors over the first ``n_positions`` positions only (views, no copy)."""
        cut = {k: v[:n_positions] for k, v in self.x.items()}
        return SampleFactors(
            self.sample_id, self.loss, n_positions, cut, {k: v[:n_positions] for k, v in self.delta.items()}
        )

    def vanished(self) -> list[tuple[int, str]]:
        """(layer, name) of every projection whose output gradient is exactly zero.

        In float16 or bfloat16 a gradient too small for the dtype underflows to zero; its
        spectrum would be stored as zeros though the true gradient is not zero.
        """
        keys = list(self.delta)
        zero = [(self.delta[k] == 0).all() for k in keys]
        flags = torch.stack([z.to(zero[0].device) for z in zero]).tolist()  # one transfer
        return [k for k, z in zip(keys, flags) if z]


def collate(samples: Sequence[Encoded], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and loss mask, each (B, T_max)."""
    width = max(s.n_tokens for s in samples)
    ids = torch.zeros(len(samples), width, dtype=torch.long)
    attn = torch.zeros(len(samples), width, dtype=torch.long)
    loss_mask = torch.zeros(len(samples), width, dtype=torch.bool)
    for b, s in enumerate(samples):
        ids[b, : s.n_tokens] = torch.tensor(s.input_ids)
        attn[b, : s.n_tokens] = 1
        loss_mask[b, : s.n_tokens] = torch.tensor(s.loss_mask)
    return ids.to(device), attn.to(device), loss_mask.to(device)


def token_losses(logits: torch.Tensor, ids: torch.Tensor, loss_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(next-token loss at every position, 1 where it is a response token's): both (B, T); position t
    holds the loss of token t + 1."""
    # logits[:, t] predicts ids[:, t + 1]; the last position predicts nothing. Shifting the
    # labels instead of slicing the logits keeps the (B*T, V) view free of a copy, and the
    # classes on the last, contiguous axis: the (B, V, T) layout of cross_entropy lost ~7x
    # more float32 accuracy on CPU (2.7e-3 vs 4e-4 relative error of a layer-28 gradient).
    b, t, v = logits.shape
    labels = torch.full_like(ids, -100)
    labels[:, :-1] = torch.where(loss_mask[:, 1:], ids[:, 1:], -100)
    nll = F.cross_entropy(at_least_float32(logits).reshape(b * t, v), labels.reshape(-1), reduction="none")
    return nll.view(b, t), (labels != -100).to(nll.dtype).view(b, t)


def per_sample_loss(logits: torch.Tensor, ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss over each sample's response tokens: (B,)."""
    nll, mask = token_losses(logits, ids, loss_mask)
    return (nll * mask).sum(1) / mask.sum(1)


def _keeps_logits(model: nn.Module) -> bool:
    return "logits_to_keep" in inspect.signature(model.forward).parameters


def forward_token_losses(
    model: nn.Module, ids: torch.Tensor, attn: torch.Tensor, loss_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Forward a collated batch: ``token_losses`` on the logits' device, and the first position they
    start at (their column c is position c + that of the batch).

    Logits are made only from the first position that predicts a response token on (HF's
    ``logits_to_keep``): the vocabulary projection of prompt positions costs time and memory
    and feeds no loss. Positions kept are the same for the whole batch.
    """
    has_loss = loss_mask.any(0).nonzero()
    start = max(int(has_loss[0]) - 1, 0) if len(has_loss) else 0  # logits at t predict token t + 1
    kwargs = {"logits_to_keep": ids.shape[1] - start} if start > 0 and _keeps_logits(model) else {}
    logits = model(input_ids=ids, attention_mask=attn, use_cache=False, **kwargs).logits
    tail = ids.shape[1] - logits.shape[1]
    dev = logits.device  # the last layer's device when a model is spread over several
    nll, mask = token_losses(logits, ids[:, tail:].to(dev), loss_mask[:, tail:].to(dev))
    return nll, mask, tail


def forward_losses(model: nn.Module, ids: torch.Tensor, attn: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Forward a collated batch; each sample's mean response-token loss, (B,), on the logits' device."""
    nll, mask, _ = forward_token_losses(model, ids, attn, loss_mask)
    return (nll * mask).sum(1) / mask.sum(1)


def run_batch(
    model: nn.Module, projections: Sequence[LayerProjection], samples: Sequence[Encoded], checkpointing: bool = False
) -> list[SampleFactors]:
    """Forward and backward one batch; return each sample's loss and factors.

    ``checkpointing`` recomputes each decoder layer's inside during backward (less memory for
    long samples, about one more forward pass of time; the numbers are the same).
    """
    ids, attn, loss_mask = collate(samples, input_device(model))
    modules = (t.projection.module for t in projections)
    with layer_checkpointing(model, checkpointing), Capture(model, modules, recomputed=checkpointing) as cap:
        losses = forward_losses(model, ids, attn, loss_mask)
        values = backward_sum(losses, torch.isfinite(losses))
    return batch_factors(projections, cap, samples, values)


def backward_sum(losses: torch.Tensor, keep: torch.Tensor, retain_graph: bool = False) -> list[float]:
    """Backward the sum of the ``losses`` (B,) where ``keep``; return every loss as a float, in one
    transfer. A sample whose whole loss is not finite is kept out of the sum, so it cannot spoil the
    others' gradients; it is reported as an error."""
    losses.where(keep, torch.zeros_like(losses)).sum().backward(retain_graph=retain_graph)
    return losses.detach().tolist()


def batch_factors(
    projections: Sequence[LayerProjection], cap: Capture, samples: Sequence[Encoded], values: list[float]
) -> list[SampleFactors]:
    """Every sample's factors from the last backward pass (its loss, or its step's share, is ``values[b]``)."""
    grads = dict(cap.grads)  # a copy: the next backward pass replaces the captured gradients
    return [factors_of(projections, cap.inputs, grads, b, s, values[b]) for b, s in enumerate(samples)]


def factors_of(
    projections: Sequence[LayerProjection],
    inputs: dict[int, torch.Tensor],
    grads: dict[int, torch.Tensor],
    b: int,
    sample: Encoded,
    loss: float,
) -> SampleFactors:
    """Sample ``b``'s factors from one backward pass's captured inputs and output gradients."""
    # Positions after the one that predicts the last response token get zero gradient.
    n_pos = max(t for t, m in enumerate(sample.loss_mask) if m)
    x: dict[tuple[int, str], torch.Tensor] = {}
    delta: dict[tuple[int, str], torch.Tensor] = {}
    for t in projections:
        p, key = t.projection, id(t.projection.module)
        x[(t.layer, t.name)] = inputs[key][b, :n_pos]
        d = grads[key][b, :n_pos]
        delta[(t.layer, t.name)] = d if p.out_index is None else d[:, p.out_index.to(d.device)]
    return SampleFactors(sample.sample_id, loss, n_pos, x, delta)


StepRound = tuple[int, Sequence["SampleFactors | None"]]


def step_columns(step: Step, tail: int) -> slice:
    """The columns of ``forward_token_losses``' losses that hold ``step``'s tokens' losses: token i's
    loss sits at column i - 1 - tail (position i - 1 predicts it; the logits start at ``tail``)."""
    return slice(step.token_start - 1 - tail, step.token_end - 1 - tail)


def run_batch_steps(
    model: nn.Module, projections: Sequence[LayerProjection], samples: Sequence[Encoded]
) -> Iterator[StepRound]:
    """Forward once; backward for the whole loss, then once per step index through the retained graph.

    Yields ``(-1, each sample's factors)``, then ``(j, the factors of step j of each sample, or None
    where it has fewer steps)``: one round at a time, so only one round's gradients are held. A step's
    loss is its tokens' loss over all the response's tokens (its share of the sample's mean loss), so
    the steps of a sample add up to it, loss and gradient. A step's factors span the sample's positions;
    those after the one that predicts its last token get no gradient from it (``SampleFactors.first``
    cuts them off for its spectra). Step j of every sample shares
    one backward pass: samples do not interact, so the gradient of the sum is each sample's own.
    """
    ids, attn, loss_mask = collate(samples, input_device(model))
    modules = (t.projection.module for t in projections)
    rounds = max((len(s.steps) for s in samples), default=0)
    with Capture(model, modules) as cap:
        nll, mask, tail = forward_token_losses(model, ids, attn, loss_mask)
        counts = mask.sum(1)
        losses = (nll * mask).sum(1) / counts
        finite = torch.isfinite(losses)
        yield -1, batch_factors(projections, cap, samples, backward_sum(losses, finite, rounds > 0))
        for j in range(rounds):
            weight = torch.zeros_like(nll)
            for b, s in enumerate(samples):
                if j < len(s.steps):
                    weight[b, step_columns(s.steps[j], tail)] = 1.0 / counts[b]
            share = (nll * mask * weight).sum(1)
            parts = batch_factors(projections, cap, samples, backward_sum(share, finite, j < rounds - 1))
            yield j, [part if j < len(s.steps) else None for part, s in zip(parts, samples)]
