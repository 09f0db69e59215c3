"""How a GPU takes the eigenvalues of a stack of Gram matrices, and which way this device does it fastest.

Batched ``torch.linalg.eigvalsh`` on CUDA calls cuSOLVER's batched Jacobi only for small matrices
and loops over the others one by one inside; for the sizes gradspec meets (hundreds to thousands)
a loop of single calls, or MAGMA's solver, may be faster. ``benchmarks/gpu_check.py`` measures
every way at the sizes that matter and writes the fastest per size into the gradspec cache for
this device (``routes/<device>.json``); ``eigen_solver=auto`` reads it. Every way is exact: the
eigenvalues are float64 whichever computes them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import torch

from gradspec.model.shipped import cache_root

SOLVERS = ("batched", "looped", "magma")


def route_file(device_name: str) -> Path:
    return cache_root() / "routes" / (re.sub(r"[^A-Za-z0-9_.-]+", "_", device_name) + ".json")


@functools.cache
def measured(device_name: str) -> dict[int, str]:
    """{matrix size: fastest solver} measured for this device, or nothing."""
    path = route_file(device_name)
    if not path.exists():
        return {}
    try:
        return {int(n): s for n, s in json.loads(path.read_text())["eigen"].items() if s in SOLVERS}
    except (ValueError, KeyError, TypeError):
        return {}


def choose(solver: str, device: torch.device, n: int) -> str:
    """The solver to use for n x n matrices: the one asked for, or (``auto``) the measured one nearest in size."""
    if solver != "auto":
        return solver
    if device.type != "cuda":
        return "batched"
    table = measured(torch.cuda.get_device_name(device))
    if not table:
        return "batched"
    return table[min(table, key=lambda size: abs(size - n))]


@contextlib.contextmanager
def linalg_library(name: str) -> Iterator[None]:
    """CUDA linear algebra through ``name`` (cusolver or magma) inside the block."""
    before = torch.backends.cuda.preferred_linalg_library()
    torch.backends.cuda.preferred_linalg_library(name)
    try:
        yield
    finally:
        torch.backends.cuda.preferred_linalg_library(before)


def eigenvalues(grams: torch.Tensor, solver: str = "batched") -> torch.Tensor:
    """Ascending eigenvalues of a (..., n, n) stack of symmetric matrices, by ``solver``."""
    if solver == "looped":
        flat = grams.reshape(-1, *grams.shape[-2:])
        return torch.stack([torch.linalg.eigvalsh(g) for g in flat]).reshape(*grams.shape[:-1])
    if solver == "magma" and grams.is_cuda:
        with linalg_library("magma"):
            return torch.linalg.eigvalsh(grams)
    return torch.linalg.eigvalsh(grams)
