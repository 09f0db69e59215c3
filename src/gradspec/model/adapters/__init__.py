"""Architecture adapters; importing this package registers all of them."""

from gradspec.model.adapters import gpt2, gpt_neox, llama, phi3  # noqa: F401  (registration)
from gradspec.model.adapters.registry import (
    MODULES,
    Problem,
    Projection,
    Target,
    decoder_layers,
    find_targets,
    register_adapter,
    supported_model_types,
    validate,
)

__all__ = [
    "MODULES",
    "Problem",
    "Projection",
    "Target",
    "decoder_layers",
    "find_targets",
    "register_adapter",
    "supported_model_types",
    "validate",
]
