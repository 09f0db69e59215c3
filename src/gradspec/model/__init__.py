"""Model stage: loading, the default model, and the architecture adapters."""

from gradspec.model.adapters import MODULES, LayerProjection, find_projections, supported_model_types, validate
from gradspec.model.loading import DTYPES, LoadedModel, load, load_model

__all__ = [
    "DTYPES",
    "MODULES",
    "LoadedModel",
    "load",
    "LayerProjection",
    "find_projections",
    "load_model",
    "supported_model_types",
    "validate",
]
