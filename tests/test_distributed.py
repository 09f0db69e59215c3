"""Two processes on one run folder (torch.distributed, gloo): each sample once, the numbers of a
single-process run, and resume across a different number of workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradspec import ComputeConfig, PromptConfig, compute, open_run
from gradspec.spectra.precision import BOUNDS, COSINE_ATOL

from conftest import write_json

KEYS = {"layer_stats": ["sample_id", "layer", "module"], "similarity": ["sample_id", "kind", "module", "layer"]}


def gradspec_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return subprocess.run(
        [sys.executable, "-m", "gradspec", *args], env=env, capture_output=True, text=True, timeout=600
    )


def records(n: int) -> list[dict[str, str]]:
    return [{"instruction": f"Task {i}: repeat {i}.", "output": f"{i} " * (1 + i % 5)} for i in range(n)]


@pytest.mark.slow
def assert_equals_one_process(run, data: Path, out: Path, model: Path) -> None:
    """Every table of ``run`` equals that of a single-process run of the same data."""
    config = ComputeConfig.of(
        data=data, out=out, model=str(model), prompt=PromptConfig("plain", max_length=64), device="cpu",
        progress=False, batch_tokens=64,
    )  # fmt: skip
    single = compute(config)
    for table, keys in KEYS.items():
        a = run.df(table).sort_values(keys).reset_index(drop=True)
        b = single.df(table).sort_values(keys).reset_index(drop=True)
        assert a[keys].equals(b[keys])
        # Each worker batches other samples together (other shapes, other padding): the precision
        # contract's bound for each column (relative on norms and ranks, absolute on cosines).
        for col in a.columns.difference(keys):
            bound = {"rel": 0, "abs": COSINE_ATOL} if col == "cosine" else {"rel": BOUNDS[col]}
            assert a[col].to_numpy() == pytest.approx(b[col].to_numpy(), **bound, nan_ok=True), col


def test_two_workers_equal_one_process_and_resume(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", [*records(11), {"instruction": "no output"}])
    common = ["--model", str(tiny_llama_dir), "--template", "plain", "--max-length", "64", "--no-progress"]
    common += ["--device", "cpu", "--batch-tokens", "64"]
    out = tmp_path / "run"
    first = gradspec_cli("compute", str(data), "--out", str(out), "--limit", "7", "--workers", "2", *common)
    assert first.returncode == 0, first.stderr[-2000:]
    ranks = {p.name.split("-")[1] for p in (out / "samples").glob("*.parquet")}
    assert ranks == {"r000", "r001"}
    # More records, on one process now: only the new ones are computed.
    second = gradspec_cli("compute", str(data), "--out", str(out), *common)
    assert second.returncode == 0, second.stderr[-2000:]
    run = open_run(out)
    samples = run.df("samples")
    assert len(samples) == 12 and samples["sample_id"].is_unique
    assert (samples.status == "error").sum() == 1
    assert run.manifest["counts"] == {"ok": 11, "skipped": 0, "error": 1, "total": 12}

    assert_equals_one_process(run, data, tmp_path / "single", tiny_llama_dir)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_nodes_meeting_on_loopback_write_one_run(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """Two torchrun "nodes" (--nnodes 2, c10d rendezvous on 127.0.0.1) write one run folder, equal to
    a single-process run: the rehearsal of a cluster with a shared filesystem."""
    data = write_json(tmp_path / "d.json", records(9))
    out = tmp_path / "run"
    endpoint = f"127.0.0.1:{free_port()}"
    args = ["compute", str(data), "--out", str(out), "--model", str(tiny_llama_dir), "--template", "plain"]
    args += ["--max-length", "64", "--no-progress", "--device", "cpu", "--batch-tokens", "64"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    node = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
            f"--rdzv-endpoint={endpoint}", "--rdzv-id=gradspec-rehearsal", "-m", "gradspec", *args]  # fmt: skip
    procs = [subprocess.Popen(node, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in (0, 1)]
    results = [(p.wait(timeout=600), p.communicate()[1]) for p in procs]
    assert all(code == 0 for code, _ in results), [err[-1500:] for _, err in results]
    run = open_run(out)
    assert {p.name.split("-")[1] for p in (out / "samples").glob("*.parquet")} == {"r000", "r001"}
    assert run.manifest["options"]["world_size"] == 2 and run.manifest["counts"]["total"] == 9
    assert_equals_one_process(run, data, tmp_path / "single", tiny_llama_dir)
