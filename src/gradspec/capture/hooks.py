"""Hooks that keep each projection's input X and output gradient Delta for one batch.

For a linear map y = x W^T (+ b) applied to T tokens, the weight gradient of a loss is
G = Delta^T X, with X the (T, d_in) inputs and Delta the (T, d_out) output gradients. Keeping
X and Delta gives every later stage the exact gradient in factored form. Weights stay frozen,
so autograd never builds a ``.grad`` buffer or the d_out x d_in weight-gradient matmul.
State lives in this object keyed by module, never on the modules.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from gradspec.model.hf import hf


class Capture:
    """Context manager that records X and Delta of ``modules`` during one forward/backward.

    Fused modules (several canonical projections in one module) are hooked once.
    """

    def __init__(self, model: nn.Module, modules: Iterable[nn.Module], recomputed: bool = False) -> None:
        """``recomputed``: layers are checkpointed, so a projection's second call in one pass is
        the recomputation during backward; it is ignored (its gradient reaches the first call's
        output)."""
        self.model = model
        self.recomputed = recomputed
        self.modules = list({id(m): m for m in modules}.values())
        self.inputs: dict[int, torch.Tensor] = {}
        self.grads: dict[int, torch.Tensor] = {}
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> Capture:
        # With every weight frozen nothing would require grad; starting the graph at the
        # embeddings' output makes autograd compute activation gradients only.
        embed = hf(self.model).get_input_embeddings()
        self._handles.append(embed.register_forward_hook(lambda _m, _a, out: out.requires_grad_(True)))
        for module in self.modules:
            self._handles.append(module.register_forward_hook(self._forward_hook))
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _forward_hook(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        key = id(module)
        if key in self.inputs and self.recomputed:
            return
        if key in self.inputs:
            raise RuntimeError(f"{type(module).__name__} ran twice in one forward pass; capture would mix calls")
        self.inputs[key] = args[0].detach()

        def keep_grad(grad: torch.Tensor) -> None:
            self.grads[key] = grad.detach()

        output.register_hook(keep_grad)
