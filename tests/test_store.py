"""Run folder: atomic parts, resume bookkeeping, orphan removal and the configuration check."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gradspec.errors import ConfigError, GradspecError, OutputError
from gradspec.store import SCHEMAS, RunFolder, open_run
from gradspec.store.rows import sample_row


def manifest(config: dict) -> dict:
    """A manifest as gradspec writes it (the kind marks a folder as a gradspec run)."""
    return {"kind": "gradspec-run", "format": 2, "config": config, "counts": {}}


def started(path: Path, config: dict) -> None:
    """A run folder as rank 0 leaves it before other ranks start (compute's barrier): its manifest
    holds the run's id; without it each rank would mint its own id and take the others' parts for
    copies."""
    with RunFolder.open(path, config) as first:
        first.write_manifest({**manifest(config), "run_id": first.run_id})


def stat_row(sid: str) -> dict:
    return {
        "sample_id": sid,
        "layer": 0,
        "module": "q",
        "nuclear_norm": 1.0,
        "effective_rank": None,
        "frobenius_norm": 1.0,
        "spectral_norm": 1.0,
        "stable_rank": None,
    }


def test_parts_and_done_ids(tmp_path: Path) -> None:
    run = RunFolder.open(tmp_path / "r", {"a": 1})
    run.write_manifest(manifest({"a": 1}))
    run.write_part({"samples": [sample_row("x", 0, "ok")], "layer_stats": [stat_row("x")]})
    run.write_part({"samples": [sample_row("y", 1, "skipped", "too long")]})
    assert run.done_ids() == {"x", "y"}
    assert set(p.name for p in (tmp_path / "r").iterdir()) == set(SCHEMAS) | {"run.json", ".lock-r000"}
    assert not list((tmp_path / "r").rglob("*.tmp"))
    read = open_run(tmp_path / "r")
    assert read.df("layer_stats")["effective_rank"].isna().all()  # null stays null
    assert read.scalar("select count(*) from samples") == 2
    assert len(read.df("similarity")) == 0 and list(read.df("spectra").columns) == SCHEMAS["spectra"].names


def test_orphans_of_a_crash_are_removed_on_resume(tmp_path: Path) -> None:
    run = RunFolder.open(tmp_path / "r", {"a": 1})
    run.write_manifest(manifest({"a": 1}))
    name = run.write_part({"samples": [sample_row("x", 0, "ok")], "layer_stats": [stat_row("x")]})
    # A crash after layer_stats was written but before samples: simulate by removing samples.
    (tmp_path / "r" / "samples" / f"{name}.parquet").unlink()
    (tmp_path / "r" / "samples" / f".{name}.parquet.0123abcd.tmp").write_text("half")
    run.release()
    resumed = RunFolder.open(tmp_path / "r", {"a": 1})
    assert resumed.done_ids() == set()
    assert not list((tmp_path / "r").rglob("*.parquet")) and not list((tmp_path / "r").rglob("*.tmp"))


def test_other_ranks_parts_are_left_alone(tmp_path: Path) -> None:
    RunFolder.open(tmp_path / "r", {"a": 1}).write_manifest(manifest({"a": 1}))
    other = RunFolder.claim(tmp_path / "r", rank=1)  # rank 1 is running: it holds its lock
    name = other.write_part({"samples": [sample_row("x", 0, "ok")], "layer_stats": [stat_row("x")]})
    (tmp_path / "r" / "samples" / f"{name}.parquet").unlink()  # and is mid-write
    RunFolder.open(tmp_path / "r", {"a": 1}, rank=0)
    assert (tmp_path / "r" / "layer_stats" / f"{name}.parquet").exists()


def test_other_options_are_refused_unless_overwrite(tmp_path: Path) -> None:
    run = RunFolder.open(tmp_path / "r", {"max_length": 512})
    run.write_manifest(manifest({"max_length": 512}))
    run.write_part({"samples": [sample_row("x", 0, "ok")]})
    run.release()
    with pytest.raises(ConfigError, match="max_length: run has 512, this command has 256.*--overwrite"):
        RunFolder.open(tmp_path / "r", {"max_length": 256})
    fresh = RunFolder.open(tmp_path / "r", {"max_length": 256}, overwrite=True)
    assert fresh.done_ids() == set() and not (tmp_path / "r" / "run.json").exists()


def test_never_writes_into_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(OutputError, match="not a gradspec run"):
        RunFolder.open(tmp_path, {"a": 1}, overwrite=True)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_parts_match_the_contract_schema(tmp_path: Path) -> None:
    run = RunFolder.open(tmp_path / "r", {})
    name = run.write_part({"samples": [sample_row("x", 0, "ok", loss=float("nan"))]})
    table = pq.read_table(tmp_path / "r" / "samples" / f"{name}.parquet")
    assert table.schema.remove_metadata().equals(SCHEMAS["samples"])
    assert table.column("loss").to_pylist() == [None]  # NaN is never stored as a number


def test_concurrent_ranks_do_not_clash(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    started(tmp_path / "r", {"a": 1})

    def writer(rank: int) -> None:
        run = RunFolder.open(tmp_path / "r", {"a": 1}, rank=rank)  # each rank cleans only its own orphans
        for i in range(15):
            sid = f"r{rank}-{i}"
            run.write_part({"samples": [sample_row(sid, i, "ok")], "layer_stats": [stat_row(sid)]})

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(writer, range(3)))
    read = open_run(tmp_path / "r")
    assert read.scalar("select count(distinct sample_id) from samples") == 45
    assert read.scalar("select count(*) from layer_stats") == 45
    assert len(list((tmp_path / "r" / "samples").glob("*.parquet"))) == 45


def test_a_rank_that_starts_late_keeps_the_earlier_ranks_parts(tmp_path: Path) -> None:
    started(tmp_path / "r", {"a": 1})
    early = RunFolder.open(tmp_path / "r", {"a": 1}, rank=1)
    early.write_part({"samples": [sample_row("x", 0, "ok")], "layer_stats": [stat_row("x")]})
    late = RunFolder.open(tmp_path / "r", {"a": 1}, rank=0)  # rank 0 checks every part: x is this run's
    assert late.run_id == early.run_id and late.done_ids() == {"x"} and not late.quarantined


def test_a_rank_cannot_start_before_rank_0_has_given_the_run_its_id(tmp_path: Path) -> None:
    RunFolder.open(tmp_path / "r", {"a": 1}).write_manifest(manifest({"a": 1}))  # no run_id yet
    with pytest.raises(GradspecError, match="rank 2 started before rank 0 wrote the run's id"):
        RunFolder.open(tmp_path / "r", {"a": 1}, rank=2)


def test_spectra_are_stored_bit_for_bit_and_byte_stream_split(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    values = [np.sort(rng.lognormal(-3, 3, n)).astype(np.float32)[::-1] for n in (7, 300, 0)]
    rows = [{"sample_id": "x", "layer": i, "module": "q", "singular_values": v.tolist()} for i, v in enumerate(values)]
    run = RunFolder.open(tmp_path / "r", {})
    name = run.write_part({"samples": [sample_row("x", 0, "ok")], "spectra": rows})
    path = tmp_path / "r" / "spectra" / f"{name}.parquet"
    back = pq.read_table(path).column("singular_values").to_pylist()
    for got, want in zip(back, values):
        assert np.array_equal(np.asarray(got, dtype=np.float32), want)  # lossless, every bit
    column = pq.ParquetFile(path).metadata.row_group(0).column(3)
    assert "BYTE_STREAM_SPLIT" in column.encodings and column.compression == "ZSTD"


def test_background_writer_lands_every_part_and_reraises_a_failed_one(tmp_path: Path) -> None:
    from gradspec.store.background import BackgroundWriter

    run = RunFolder.open(tmp_path / "r", {})
    with BackgroundWriter(run) as writer:
        for i in range(3):
            writer.submit({"samples": [sample_row(f"s{i}", i, "ok")], "layer_stats": [stat_row(f"s{i}")]})
    assert run.done_ids() == {"s0", "s1", "s2"}  # all on disk once the block is left
    bad = {"samples": [sample_row("s3", 3, "ok")], "layer_stats": [stat_row("s3") | {"layer": "first"}]}
    with pytest.raises((TypeError, ValueError, ArithmeticError)), BackgroundWriter(run) as writer:
        writer.submit(bad)
    assert run.done_ids() == {"s0", "s1", "s2"}  # the failed part never counts as done
