"""Options of the model stage: which model, in which dtype, on which device."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gradspec.config.fields import Options

DType = Literal["float32", "bfloat16", "float16"]
DeviceMap = Literal["auto", "balanced", "balanced_low_0", "sequential"]


@dataclass(frozen=True)
class ModelConfig(Options):
    """The model and where it runs."""

    model: str = "default"
    """default | a short name (gradspec models list) | a Hugging Face model folder | FILE.gguf | a hub id."""

    dtype: DType = "float32"
    """dtype of the model's weights and activations; the spectral maths never runs below float32 (each gradient
    or its core is formed in --core-dtype, float32 by default; Gram matrices and eigenvalues in float64)."""

    device: str = field(default="auto", metadata={"identity": False})
    """auto | cpu | cuda | cuda:N."""

    device_map: DeviceMap | None = field(default=None, metadata={"identity": False})
    """Spread a model too large for one GPU over all of them (accelerate placement); one process only."""

    trust_remote_code: bool = False
    """Let transformers run the model repository's own code."""


@dataclass(frozen=True)
class ModelsListConfig(Options):
    """``gradspec models list`` takes no options."""


@dataclass(frozen=True)
class ModelsInstallConfig(Options):
    """A model to install by its short name."""

    name: str = field(metadata={"argument": True})
    """A short name from gradspec models list."""
