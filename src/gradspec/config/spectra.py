"""Options of the spectra stage: what is kept of each gradient's singular values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gradspec.config.fields import Options

SpectraPrecision = Literal["float32", "bfloat16"]
CoreDtype = Literal["float32", "float64"]
EigenSolver = Literal["auto", "batched", "looped", "magma"]


@dataclass(frozen=True)
class SpectraConfig(Options):
    """What the spectra stage stores besides the metrics."""

    spectra: bool = False
    """Also store every singular value (the spectra table)."""

    spectra_precision: SpectraPrecision = "float32"
    """Stored singular values: float32 keeps each as computed (lossless); bfloat16 rounds each to 8
    significant bits (within 0.4%, about 3x smaller). Metrics always come from the exact values."""

    core_dtype: CoreDtype = "float32"
    """dtype each gradient (or its QR-reduced core) is formed in: float32 is what autograd's .grad computes
    from the same float32 factors; float64 spends twice the time on digits beyond the precision contract. Gram
    matrices and eigenvalues are float64 always (a float32 Gram loses the small singular values)."""

    eigen_solver: EigenSolver = field(default="auto", metadata={"identity": False})
    """How a GPU takes the eigenvalues: batched (one call per module), looped (one call per matrix) or magma;
    auto uses what benchmarks/gpu_check.py measured for this device, else batched. A CPU takes them layer by
    layer through LAPACK."""
