"""Architecture adapters; importing this package registers all of them."""

from gradspec.model.adapters import gpt2, gpt_neox, llama, phi3  # noqa: F401  (registration)
from gradspec.model.adapters.registry import (
    LayerProjection,
    Problem,
    Projection,
    decoder_layers,
    find_projections,
    register_adapter,
    supported_model_types,
    validate,
)
from gradspec.store.contract import MODULES

__all__ = [
    "MODULES",
    "Problem",
    "Projection",
    "LayerProjection",
    "decoder_layers",
    "find_projections",
    "register_adapter",
    "supported_model_types",
    "validate",
]
