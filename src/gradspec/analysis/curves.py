"""Layer-wise curves: their differences (as the fast/slow-thinking paper reports them) and
the similarity of their shapes across models of different depth.

Depth alignment puts layer i of an L-layer model at relative depth i / (L - 1), so an
18-layer and a 30-layer model share one axis; curves are compared after linear
interpolation onto a common grid.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

GRID = np.linspace(0.0, 1.0, 21)


def curve_differences(curve_a: np.ndarray, curve_b: np.ndarray, top: int = 3) -> dict[str, object]:
    """Mean absolute difference of two per-layer curves (whole, early/middle/late thirds), the
    relative difference per layer (b - a) / |a|, and the layers that differ most."""
    a, b = np.asarray(curve_a, float), np.asarray(curve_b, float)
    diff = np.abs(b - a)
    thirds = np.array_split(np.arange(len(a)), 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (b - a) / np.abs(a)
    order = np.argsort(-np.nan_to_num(np.abs(rel), nan=-1))[:top]

    def mad(idx: np.ndarray) -> float:
        return float(diff[idx].mean()) if len(idx) else math.nan

    return {
        "mad_all": mad(np.arange(len(a))),
        "mad_early": mad(thirds[0]),
        "mad_middle": mad(thirds[1]),
        "mad_late": mad(thirds[2]),
        "relative_difference": [float(v) for v in rel],
        "layers_differing_most": [int(i) for i in order],
    }


def on_depth_grid(depth: np.ndarray, values: np.ndarray, grid: np.ndarray = GRID) -> np.ndarray:
    """A curve sampled at ``depth`` (0..1), linearly interpolated onto ``grid``."""
    order = np.argsort(depth)
    return np.interp(grid, np.asarray(depth, float)[order], np.asarray(values, float)[order])


def shape_similarity(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Pearson correlation and RMS distance (of z-scored curves) for every pair of groups.

    ``curves[group] = (depth, mean value per layer)``. Z-scoring compares shapes, not levels:
    two models can differ ten-fold in gradient norm and still share a pattern.
    """
    gridded = {g: on_depth_grid(d, v) for g, (d, v) in curves.items()}
    rows = []
    for a in gridded:
        for b in gridded:
            x, y = gridded[a], gridded[b]
            sx, sy = x.std(), y.std()
            if sx == 0 or sy == 0:
                r, dist = math.nan, math.nan
            else:
                r = float(np.corrcoef(x, y)[0, 1])
                dist = float(np.sqrt(np.mean(((x - x.mean()) / sx - (y - y.mean()) / sy) ** 2)))
            rows.append({"a": a, "b": b, "correlation": r, "distance": dist})
    return pd.DataFrame(rows)
