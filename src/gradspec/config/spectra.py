"""Options of the spectra stage: what is kept of each gradient's singular values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gradspec.config.fields import Options

SpectraPrecision = Literal["float32", "bfloat16"]


@dataclass(frozen=True)
class SpectraConfig(Options):
    """What the spectra stage stores besides the metrics."""

    spectra: bool = False
    """Also store every singular value (the spectra table)."""

    spectra_precision: SpectraPrecision = "float32"
    """Stored singular values: float32 keeps each as computed (lossless); bfloat16 rounds each to 8
    significant bits (within 0.4%, about 3x smaller). Metrics always come from the exact values."""
