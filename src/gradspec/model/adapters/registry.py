"""The only code that knows Hugging Face module names.

An adapter maps one decoder layer to its projections under canonical names (q, k, v, o,
gate, up, down). A fused projection is one module with several canonical names, each with
the output features that belong to it. Everything downstream sees canonical names and a
layer index only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from gradspec.errors import ModelError
from gradspec.model.hf import hf
from gradspec.store.contract import MODULES

Layout = Literal["linear", "conv1d"]


@dataclass(frozen=True, eq=False)
class Projection:
    """One logical projection: a module and, for fused modules, its share of the outputs.

    Attributes:
        module: the ``nn.Linear`` (weight [out, in]) or GPT-2 ``Conv1D`` (weight [in, out]).
        out_index: output features of ``module`` that belong to this projection; ``None``
            means all of them.
        layout: how ``module`` stores its weight; gradients are always reported in the
            ``nn.Linear`` orientation [out, in], so cosines do not depend on it.
    """

    module: nn.Module
    out_index: torch.Tensor | None = None
    layout: Layout = "linear"

    @property
    def weight(self) -> torch.Tensor:
        weight = self.module.weight
        assert isinstance(weight, torch.Tensor)  # a Linear's or Conv1D's parameter
        return weight

    @property
    def d_in(self) -> int:
        w = self.weight
        return int(w.shape[0] if self.layout == "conv1d" else w.shape[1])

    @property
    def d_out(self) -> int:
        if self.out_index is not None:
            return int(self.out_index.numel())
        w = self.weight
        return int(w.shape[1] if self.layout == "conv1d" else w.shape[0])


@dataclass(frozen=True, eq=False)
class LayerProjection:
    """A projection of one layer under its canonical name."""

    layer: int
    name: str
    projection: Projection


LayerAdapter = Callable[[Any, Any], dict[str, Projection]]  # Hugging Face layers: submodules by attribute
_ADAPTERS: dict[str, LayerAdapter] = {}


def register_adapter(*model_types: str) -> Callable[[LayerAdapter], LayerAdapter]:
    """Register a layer adapter for Hugging Face ``config.model_type`` values."""

    def wrap(fn: LayerAdapter) -> LayerAdapter:
        for t in model_types:
            _ADAPTERS[t] = fn
        return fn

    return wrap


def supported_model_types() -> list[str]:
    return sorted(_ADAPTERS)


def stacked(sizes: Sequence[int]) -> list[torch.Tensor]:
    """Output indices of parts stacked one after another along the output features."""
    bounds = torch.tensor([0, *sizes]).cumsum(0)
    return [torch.arange(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


@dataclass
class Problem:
    """A projection that no adapter names, reported before any compute."""

    layer: int
    module_path: str
    message: str = field(default="")

    def __str__(self) -> str:
        return f"layer {self.layer}: {self.module_path}: {self.message}"


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder layers: the largest ``ModuleList`` of layer count length."""
    n = getattr(model.config, "num_hidden_layers", None)
    candidates = [m for _, m in model.named_modules() if isinstance(m, nn.ModuleList) and (n is None or len(m) == n)]
    if not candidates:
        raise ModelError(f"cannot find the {n} decoder layers of {type(model).__name__}")
    return max(candidates, key=lambda m: sum(p.numel() for p in m.parameters()))


def _is_projection(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def adapter_for(model: nn.Module) -> LayerAdapter:
    model_type = getattr(model.config, "model_type", None)
    if model_type not in _ADAPTERS:
        raise ModelError(f"architecture '{model_type}' has no adapter; supported: {', '.join(supported_model_types())}")
    return _ADAPTERS[model_type]


def find_projections(model: nn.Module, modules: Sequence[str] | None = None) -> list[LayerProjection]:
    """Every requested projection of every decoder layer, in (layer, module) order.

    ``modules=None`` takes every projection the architecture has (GPT-2 has no gate).
    """
    adapter = adapter_for(model)
    projections: list[LayerProjection] = []
    for i, layer in enumerate(decoder_layers(model)):
        named = adapter(layer, model.config)
        if modules is None:
            modules = [m for m in MODULES if m in named]
        missing = [m for m in modules if m not in named]
        if missing:
            raise ModelError(
                f"{hf(model).config.model_type} layer {i} has no projection {', '.join(missing)}; "
                f"it has {', '.join(named)}; choose --modules from those"
            )
        projections.extend(LayerProjection(i, name, named[name]) for name in modules)
    return projections


def validate(model: nn.Module) -> list[Problem]:
    """Projections inside decoder layers that the adapter does not name (none means supported)."""
    adapter = adapter_for(model)
    problems: list[Problem] = []
    for i, layer in enumerate(decoder_layers(model)):
        named = {id(p.module) for p in adapter(layer, model.config).values()}
        for path, module in layer.named_modules():
            if _is_projection(module) and id(module) not in named:
                problems.append(Problem(i, path, "projection has no canonical name in this adapter"))
    return problems
