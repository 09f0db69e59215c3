"""Several processes (or GPUs) on one run: who am I, wait for the others, which samples are mine.

Started by ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` in the environment) or by
``gradspec compute --workers N``, which launches ``torchrun`` itself. Samples are sharded by
their position in the file, not by what is pending, so every rank agrees on the split whatever
the others have already written; ranks write their own parts into the one run folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mine(self, index: int) -> bool:
        """Does record ``index`` belong to this rank?"""
        return index % self.size == self.rank

    def device(self, device: str) -> str:
        """Each rank on its own GPU when several share a machine."""
        if self.size > 1 and device in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return device

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def join_world() -> World:
    """The world this process runs in; joins the process group when there is more than one rank."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend)
    return world


def leave_world() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def launch(workers: int, args: Sequence[str]) -> int:
    """Run ``gradspec ARGS`` under ``torchrun`` with ``workers`` processes; return its exit code."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={workers}",
        "-m",
        "gradspec",
        *args,
    ]
    env = dict(os.environ)
    if not torch.cuda.is_available():  # split the CPU cores between the workers
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    return subprocess.call(cmd, env=env)
