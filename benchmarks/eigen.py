"""Which exact way takes the eigenvalues of a sample's Gram matrices fastest on this CPU.

At T ~ d the spectra of one sample are 4 x 30 = 120 symmetric float64 eigenproblems of size up
to 576 (the default model's width); their tridiagonal reduction dominates the spectral step.
Candidates, each asked for eigenvalues only:
  torch        ``torch.linalg.eigvalsh`` on the whole stack (what gradspec uses on a GPU)
  numpy        ``numpy.linalg.eigvalsh``, one matrix at a time (what gradspec uses on a CPU: dsyevd
               from numpy's OpenBLAS)
  scipy-evd    ``scipy.linalg.eigvalsh(driver="evd")``, one matrix at a time (scipy's OpenBLAS)
  scipy-evr    the same with ``driver="evr"`` (MRRR)
  scipy-ev     the same with ``driver="ev"`` (QR iteration)
  syevd-2stage LAPACK's two-stage reduction (dense to band with BLAS-3, then band to
               tridiagonal), ``LAPACKE_dsyevd_2stage`` from the OpenBLAS that scipy ships
  syev-2stage  ``LAPACKE_dsyev_2stage`` from the same library
Matrices are Grams of random factors whose singular values decay like real gradients' (the
same condition the spectra meet). Each way is checked against torch's eigenvalues (largest
relative difference of the nuclear norm, the sum of square roots) and timed with one thread,
with every core inside one call, and as gradspec runs them: one thread per call, the matrices
spread over a pool of threads (a call that holds Python's GIL gains nothing there). Prints a
table and writes ``benchmarks/results/eigen.json``.

    .venv/bin/python benchmarks/eigen.py [--sizes 64,128,256,576] [--batch 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy
import scipy.linalg
import torch
from threadpoolctl import threadpool_limits

Solver = Callable[[np.ndarray], np.ndarray]


def openblas() -> ctypes.CDLL | None:
    """scipy's bundled OpenBLAS, whose LAPACKE exports the two-stage routines scipy does not wrap."""
    libs = glob.glob(os.path.join(os.path.dirname(scipy.__file__), "..", "scipy.libs", "libscipy_openblas*.so*"))
    return ctypes.CDLL(libs[0]) if libs else None


def two_stage(lib: ctypes.CDLL, name: str) -> Solver:
    fn = getattr(lib, f"scipy_LAPACKE_{name}")
    fn.restype = ctypes.c_int
    ptr = ctypes.POINTER(ctypes.c_double)

    def solve(stack: np.ndarray) -> np.ndarray:
        out = np.empty(stack.shape[:-1])
        for a, w in zip(stack, out, strict=True):
            a = np.array(a, order="C")  # overwritten
            info = fn(101, ctypes.c_char(b"N"), ctypes.c_char(b"L"), a.shape[0], a.ctypes.data_as(ptr), a.shape[0],
                      w.ctypes.data_as(ptr))  # fmt: skip
            if info != 0:
                raise RuntimeError(f"{name} failed with info={info}")
        return out

    return solve


def solvers() -> dict[str, Solver]:
    ways: dict[str, Solver] = {
        "torch": lambda s: torch.linalg.eigvalsh(torch.from_numpy(s)).numpy(),
        "numpy": lambda s: np.stack([np.linalg.eigvalsh(a) for a in s]),
    }
    for driver in ("evd", "evr", "ev"):
        ways[f"scipy-{driver}"] = lambda s, d=driver: np.stack(
            [scipy.linalg.eigvalsh(a, driver=d, check_finite=False) for a in s]
        )
    lib = openblas()
    if lib is not None:
        ways["syevd-2stage"] = two_stage(lib, "dsyevd_2stage")
        ways["syev-2stage"] = two_stage(lib, "dsyev_2stage")
    return ways


def grams(n: int, batch: int, seed: int = 0) -> np.ndarray:
    """``batch`` Gram matrices X^T X of size n whose singular values decay like a gradient's."""
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(np.arange(1, n + 1))
    x = rng.standard_normal((batch, 2 * n, n)) * scale
    return np.einsum("bti,btj->bij", x, x)


def nuclear(eigenvalues: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(eigenvalues, 0, None)).sum(-1)


def measure(fn: Solver, stack: np.ndarray, rounds: int) -> float:
    fn(stack[:1])  # warm up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn(stack)
        best = min(best, time.perf_counter() - start)
    return best / len(stack)


def measure_pool(fn: Solver, stack: np.ndarray, rounds: int, workers: int) -> float:
    """Seconds per matrix with one BLAS thread per call and the matrices spread over ``workers`` threads."""
    with threadpool_limits(1), ThreadPoolExecutor(workers) as pool:
        torch.set_num_threads(1)
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            list(pool.map(lambda i: fn(stack[i : i + 1]), range(len(stack))))
            best = min(best, time.perf_counter() - start)
    return best / len(stack)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,128,256,576")
    ap.add_argument("--batch", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "eigen.json"))
    args = ap.parse_args()
    ways = solvers()
    cores = os.cpu_count() or 1
    rows = []
    print(
        f"{'n':>5} {'way':<14}{'ms, 1 thread':>14}{f'ms, {cores} threads':>16}{f'ms, pool of {cores}':>16}"
        f"{'nuclear rel diff':>18}"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        stack = grams(n, args.batch)
        reference = nuclear(ways["torch"](stack))
        for name, fn in ways.items():
            error = float(np.max(np.abs(nuclear(fn(stack)) - reference) / reference))
            times = {}
            for threads in (1, cores):
                torch.set_num_threads(threads)
                with threadpool_limits(threads):
                    times[threads] = measure(fn, stack, args.rounds) * 1e3
            pooled = measure_pool(fn, stack, args.rounds, cores) * 1e3
            rows.append({"n": n, "way": name, "ms_one_thread": times[1], "ms_all_threads": times[cores],
                         "ms_thread_pool": pooled, "threads": cores, "nuclear_rel_diff": error})  # fmt: skip
            print(f"{n:>5} {name:<14}{times[1]:>14.2f}{times[cores]:>16.2f}{pooled:>16.2f}{error:>18.1e}")
    torch.set_num_threads(cores)
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": cores,
            "torch": torch.__version__,
            "scipy": scipy.__version__,
            "numpy": np.__version__,
            "batch": args.batch,
        },  # fmt: skip
        "rows": rows,
        "fastest_in_a_thread_pool": {
            str(n): min((r for r in rows if r["n"] == n), key=lambda r: r["ms_thread_pool"])["way"]
            for n in sorted({r["n"] for r in rows})
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
