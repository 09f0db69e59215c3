"""A run folder says only what it holds: parts of another run, forged parts and manifests,
impossible statistics, killed and live runs, orphans of other ranks, changed data files.

Every file is made here, at test time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from gradspec import compute, open_run
from gradspec.cli.main import app
from gradspec.errors import DamagedError
from gradspec.files import WriterLock
from gradspec.store.verify import verify

from cli_checks import cfg, one_line_error
from conftest import write_json

runner = CliRunner()
GOOD = [{"instruction": f"Question {i}?", "output": f"Answer number {i}."} for i in range(6)]


@pytest.fixture
def run_dir(tmp_path: Path, tiny_llama_dir: Path) -> Path:
    data = write_json(tmp_path / "d.json", GOOD)
    out = tmp_path / "run"
    compute(cfg(data, out, tiny_llama_dir, flush_every=1, batch_tokens=16))  # one part per sample
    return out


def rewrite(part: Path, change) -> None:  # noqa: ANN001
    """Rewrite one part with ``change(table)`` applied, keeping its footer metadata."""
    table = pq.read_table(part)
    pq.write_table(change(table), part)


# Parts of another run ----------------------------------------------------------------------------------


def test_parts_copied_in_from_another_run_are_refused_and_left_out(
    tmp_path: Path, tiny_llama_dir: Path, run_dir: Path
) -> None:
    other_data = write_json(tmp_path / "o.json", [{"instruction": f"Other {i}", "output": "x y z"} for i in range(9)])
    other = tmp_path / "other"
    compute(cfg(other_data, other, tiny_llama_dir))
    for table in ("samples", "layer_stats", "similarity"):
        for part in (other / table).glob("*.parquet"):
            shutil.copy(part, run_dir / table / part.name)
    run = open_run(run_dir)
    assert run.counts()["total"] == 6 and any("another run" in w for w in run.read_warnings())
    problems = verify(run_dir)
    assert any("belongs to another run" in p for p in problems), problems
    result = runner.invoke(app, ["verify", str(run_dir)])
    assert result.exit_code == 1 and "verified" not in result.output
    again = runner.invoke(
        app, ["compute", str(tmp_path / "d.json"), "-o", str(run_dir), "--model", str(tiny_llama_dir),
              "--template", "plain", "--max-length", "64", "--no-progress"],
    )  # fmt: skip
    one_line_error(again, "part(s) of another run")
    assert json.loads((run_dir / "run.json").read_text())["counts"]["total"] == 6


def test_every_part_names_its_run(run_dir: Path) -> None:
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    for part in run_dir.glob("*/*.parquet"):
        assert pq.read_schema(part).metadata[b"gradspec.run_id"].decode() == run_id


# Forged parts and manifests -----------------------------------------------------------------------------


def test_a_part_with_other_columns_is_left_out_by_every_reader(tmp_path: Path, run_dir: Path) -> None:
    part = sorted((run_dir / "layer_stats").glob("*.parquet"))[0]
    pq.write_table(pa.table({"sample_id": ["x"], "colour": ["red"]}), part)
    for args in (["show", str(run_dir)], ["show", str(run_dir), "--json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    compared = runner.invoke(app, ["compare", str(run_dir), str(run_dir), "-o", str(tmp_path / "c"), "--labels", "a,b"])
    assert "Traceback" not in compared.output and compared.exit_code in (0, 2), compared.output
    assert any("is not a part of this table" in p for p in verify(run_dir))


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda m: m["model"].update(num_layers="abc"), "model.num_layers"),
        (lambda m: m.update(model="str"), "model is str"),
        (lambda m: m.update(counts=[]), "counts is list"),
        (lambda m: m["counts"].update(ok=-3), "counts are not whole numbers"),
    ],
)
def test_a_forged_manifest_is_one_line_for_every_reader(run_dir: Path, tmp_path: Path, change, field: str) -> None:  # noqa: ANN001
    manifest = json.loads((run_dir / "run.json").read_text())
    change(manifest)
    (run_dir / "run.json").write_text(json.dumps(manifest))
    compare = ["compare", str(run_dir), str(run_dir), "-o", str(tmp_path / "c"), "--labels", "a,b"]
    for args in (["show", str(run_dir)], compare):
        one_line_error(runner.invoke(app, args), "run.json", field)
    result = runner.invoke(app, ["verify", str(run_dir)])
    assert result.exit_code == 1 and field in result.output and "Traceback" not in result.output


def test_a_manifest_holding_only_its_kind_does_not_verify(tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "run.json").write_text('{"kind": "gradspec-run"}')
    problems = verify(folder)
    assert any("run.json lacks config, model, data, modules, counts" in p for p in problems), problems


@pytest.mark.parametrize(
    "column, value, what",
    [
        ("nuclear_norm", float("nan"), "not finite or negative"),
        ("nuclear_norm", -5.0, "not finite or negative"),
        ("frobenius_norm", float("inf"), "not finite or negative"),
        ("effective_rank", 1e9, "rank below 1 or above"),
        ("effective_rank", 0.2, "rank below 1 or above"),
        ("stable_rank", float("nan"), "rank below 1 or above"),
    ],
)
def test_verify_finds_impossible_statistics(run_dir: Path, column: str, value: float, what: str) -> None:
    part = sorted((run_dir / "layer_stats").glob("*.parquet"))[0]

    def forge(table: pa.Table) -> pa.Table:
        values = table.column(column).to_pylist()
        values[0] = value
        return table.set_column(table.schema.get_field_index(column), column, pa.array(values, pa.float64()))

    rewrite(part, forge)
    problems = verify(run_dir)
    assert any(what in p for p in problems), problems


@pytest.mark.parametrize("value", [7.5, float("nan"), -1.2])
def test_verify_finds_impossible_cosines(run_dir: Path, value: float) -> None:
    part = sorted((run_dir / "similarity").glob("*.parquet"))[0]

    def forge(table: pa.Table) -> pa.Table:
        values = table.column("cosine").to_pylist()
        values[0] = value
        return table.set_column(table.schema.get_field_index("cosine"), "cosine", pa.array(values, pa.float64()))

    rewrite(part, forge)
    assert any("cosines that are not finite or beyond 1" in p for p in verify(run_dir))


def test_a_clean_run_verifies(run_dir: Path) -> None:
    assert verify(run_dir) == []
    result = runner.invoke(app, ["verify", str(run_dir)])
    assert result.exit_code == 0 and "verified: 6 samples" in result.output


# Killed, live and changed runs ---------------------------------------------------------------------------


def test_a_killed_run_is_not_called_verified(run_dir: Path) -> None:
    for last in sorted((run_dir / "samples").glob("*.parquet"))[-2:]:
        for table in ("samples", "layer_stats", "similarity"):
            (run_dir / table / last.name).unlink(missing_ok=True)
    manifest = json.loads((run_dir / "run.json").read_text())
    manifest["counts"] = {}  # a run killed before its counts were written
    (run_dir / "run.json").write_text(json.dumps(manifest))
    problems = verify(run_dir)
    assert any(p.startswith("incomplete: 4 of 6 records have a row") for p in problems), problems


def test_a_run_being_written_is_not_called_verified(run_dir: Path) -> None:
    with WriterLock(run_dir / ".lock-r000", "busy"):
        problems = verify(run_dir)
    assert any("being written by a gradspec process now" in p for p in problems), problems


def test_samples_that_are_not_records_of_the_data_file_are_found(tmp_path: Path, run_dir: Path) -> None:
    part = sorted((run_dir / "samples").glob("*.parquet"))[0]

    def forge(table: pa.Table) -> pa.Table:
        ids = table.column("sample_id").to_pylist()
        ids[0] = "0123456789abcdef"
        return table.set_column(0, "sample_id", pa.array(ids, pa.string()))

    rewrite(part, forge)
    assert any("are not records of" in p for p in verify(run_dir))


# Orphans of other ranks -------------------------------------------------------------------------------


def test_a_resume_with_one_process_removes_orphans_of_every_idle_rank(
    tmp_path: Path, tiny_llama_dir: Path, run_dir: Path
) -> None:
    parts = sorted((run_dir / "layer_stats").glob("*.parquet"))
    orphan = run_dir / "layer_stats" / parts[0].name.replace("part-r000", "part-r003")
    shutil.copy(parts[0], orphan)  # rank 3 was killed between its layer_stats and its samples part
    temp = run_dir / "similarity" / f".{parts[1].name.replace('part-r000', 'part-r002')}.0a1b2c3d.tmp"
    temp.write_bytes(b"half")
    busy = run_dir / "layer_stats" / parts[1].name.replace("part-r000", "part-r005")
    shutil.copy(parts[1], busy)  # rank 5 is still writing: its lock is held
    before = open_run(run_dir).scalar("select avg(nuclear_norm) from layer_stats")
    with WriterLock(run_dir / ".lock-r005", "busy"):
        compute(cfg(tmp_path / "d.json", run_dir, tiny_llama_dir, flush_every=2))
    assert not orphan.exists() and not temp.exists() and busy.exists()
    busy.unlink()
    after = open_run(run_dir).scalar("select avg(nuclear_norm) from layer_stats")
    assert after == pytest.approx(before, rel=1e-12)
    assert verify(run_dir) == []


def test_a_changed_data_file_never_pairs_gradients_with_other_text(tmp_path: Path, run_dir: Path) -> None:
    from gradspec.report.explore import samples_data

    shuffled = list(reversed(GOOD[:3])) + [{"instruction": "New question", "output": "New answer."}]
    write_json(tmp_path / "d.json", shuffled)
    rows = {r["index"]: r for r in samples_data(open_run(run_dir))["samples"]}
    for i, record in enumerate(GOOD):
        shown = rows[i]
        assert shown["response"] in ("", record["output"]), (i, shown["response"])
    assert rows[0]["response"] == GOOD[0]["output"]  # still in the file, elsewhere: found by its id
    assert rows[5]["response"] == ""  # no longer in the file


def test_show_counts_what_the_folder_holds(run_dir: Path) -> None:
    manifest = json.loads((run_dir / "run.json").read_text())
    manifest["counts"] = {"ok": 99, "skipped": 0, "error": 0, "total": 99}
    (run_dir / "run.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["show", str(run_dir)])
    assert result.exit_code == 0 and "6 ok" in result.output and "99" not in result.output


def test_run_ids_are_kept_on_resume_and_given_to_older_runs(
    tmp_path: Path, tiny_llama_dir: Path, run_dir: Path
) -> None:
    first = json.loads((run_dir / "run.json").read_text())["run_id"]
    compute(cfg(tmp_path / "d.json", run_dir, tiny_llama_dir, flush_every=2))
    assert json.loads((run_dir / "run.json").read_text())["run_id"] == first
    manifest = json.loads((run_dir / "run.json").read_text())
    del manifest["run_id"]  # a run written before ids: neither its manifest nor its parts name one
    (run_dir / "run.json").write_text(json.dumps(manifest))
    for part in run_dir.glob("*/*.parquet"):
        rewrite(part, lambda t: t.replace_schema_metadata(None))
    assert verify(run_dir) == []
    compute(cfg(tmp_path / "d.json", run_dir, tiny_llama_dir, flush_every=2))
    assert isinstance(json.loads((run_dir / "run.json").read_text())["run_id"], str)
    assert verify(run_dir) == []


def test_forged_report_inputs_are_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "cmp"
    folder.mkdir()
    (folder / "comparison.json").write_text("{broken")
    result = runner.invoke(app, ["report", str(folder), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "damaged" in result.output and "Traceback" not in result.output
    with pytest.raises(DamagedError):
        from gradspec.report import write_report

        write_report([folder], tmp_path / "r.html")
