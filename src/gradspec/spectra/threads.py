"""Per-layer spectral work spread over the CPU's threads.

The matrices of one layer are small (576 x 576 on the default model): LAPACK's symmetric
eigensolver barely speeds up with a second thread on them, and each phase (float64 copies,
cores, Gram matrices, eigenvalues) would otherwise wait for the slowest thread of the one
before. Whole layers run concurrently instead, torch single-threaded inside each (LAPACK and
BLAS release the GIL); the README's performance section has what this saves. On a GPU the
layers run in order, each kernel already parallel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
from threadpoolctl import ThreadpoolController

_POOL: ThreadPoolExecutor | None = None
_BLAS: ThreadpoolController | None = None


@contextlib.contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Intra-op threads of torch (its BLAS and LAPACK) and of numpy's BLAS set to one, then
    restored: several threads each calling a multi-threaded library would oversubscribe the
    cores."""
    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()  # finds the loaded BLAS libraries once
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _BLAS.limit(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def for_each_layer(work: Callable[[int], None], n_layers: int, device: torch.device) -> None:
    """``work(i)`` for every layer i; concurrently on a CPU with several threads.

    ``work`` must write only its own layer's slots (it runs on several threads at once).
    An exception in any layer is raised here.
    """
    global _POOL
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads < 2 or n_layers < 2:
        for i in range(n_layers):
            work(i)
        return
    if _POOL is None or _POOL._max_workers != threads:
        _POOL = ThreadPoolExecutor(threads, thread_name_prefix="gradspec-spectra")
    with single_threaded_torch():
        list(_POOL.map(work, range(n_layers)))  # list() waits for all and re-raises
