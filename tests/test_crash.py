"""A real run process killed with SIGKILL at several points, then started again, ends with
every sample exactly once, every part readable, and the numbers of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gradspec import ComputeConfig, PromptConfig, compute

from conftest import write_json

SCRIPT = """
import sys
from gradspec import ComputeConfig, PromptConfig, compute
compute(ComputeConfig.of(data=sys.argv[1], out=sys.argv[2], model=sys.argv[3], device="cpu", progress=False,
                      prompt=PromptConfig("plain", max_length=64), flush_every=1, batch_tokens=1))
"""


def config(data: Path, out: Path, model: Path) -> ComputeConfig:
    return ComputeConfig.of(
        data=data, out=out, model=str(model), device="cpu", progress=False,
        prompt=PromptConfig("plain", max_length=64), flush_every=1, batch_tokens=1,
    )  # fmt: skip


def n_parts(run: Path) -> int:
    return len(list((run / "samples").glob("*.parquet"))) if (run / "samples").is_dir() else 0


def start(data: Path, out: Path, model: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(data), str(out), str(model)], env=env)


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume(tmp_path: Path, tiny_llama_dir: Path) -> None:
    records = [{"instruction": f"Question {i}: what is {i} plus {i}?", "output": f"It is {2 * i}. " * (1 + i % 4)}
               for i in range(36)]  # fmt: skip
    records[5]["output"] = None  # an error row must survive the kills too
    data = write_json(tmp_path / "data.json", records)
    reference = compute(config(data, tmp_path / "reference", tiny_llama_dir))

    out = tmp_path / "run"
    kills = 0
    for threshold in (0, 3, 9, 20):
        proc = start(data, out, tiny_llama_dir)
        deadline = time.monotonic() + 120
        while proc.poll() is None and n_parts(out) < threshold and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            if threshold == 0:
                time.sleep(1.0)  # somewhere in start-up or the first parts
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 3, "the run finished before it could be killed; make it longer"
    final = start(data, out, tiny_llama_dir)
    assert final.wait(timeout=300) == 0

    for part in out.rglob("*.parquet"):
        pq.read_table(part)  # every part readable
    assert not list(out.rglob("*.tmp"))
    run = compute(config(data, out, tiny_llama_dir))  # opening again recomputes nothing
    samples = run.df("samples")
    assert len(samples) == 36 and samples["sample_id"].is_unique
    assert sorted(samples["index"]) == list(range(36))
    assert (samples.set_index("index").loc[5, "status"]) == "error"
    keys = ["sample_id", "layer", "module"]
    for table, cols in (("layer_stats", ["nuclear_norm", "effective_rank"]), ("similarity", ["cosine"])):
        got, want = run.df(table), reference.df(table)
        key = keys if table == "layer_stats" else ["sample_id", "kind", "module", "layer"]
        assert len(got) == len(want) and not got.duplicated(key).any()
        merged = got.merge(want, on=key, suffixes=("", "_ref"))
        assert len(merged) == len(want)
        for c in cols:
            assert ((merged[c] - merged[f"{c}_ref"]).abs() <= 1e-9 * merged[f"{c}_ref"].abs().clip(lower=1e-12)).all()
