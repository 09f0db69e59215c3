"""Nothing is written outside its place, nothing gradspec did not write is deleted or overwritten,
and the judge's key reaches no output: names that are paths, echoed keys, foreign files beside
gradspec's own, pages written over other files, two writers of one output, system errors.

Every file is made here, at test time.
"""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gradspec.cli.main import app
from gradspec.config.analysis import CorrelateConfig
from gradspec.config.names import segment
from gradspec.config.selection import SelectConfig
from gradspec.errors import ConfigError
from gradspec.experiment import load_experiment
from gradspec.files import WriterLock
from gradspec.score import ScoreConfig, score
from gradspec.secrets import redact

from cli_checks import one_line_error
from conftest import write_json
from judge_server import judge_server

runner = CliRunner()
GOOD = [{"instruction": f"Question {i}?", "output": f"Answer number {i}.", "reward": float(i)} for i in range(6)]


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# Names that become paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../x", "/abs/settings", "a/b", "..", ".steps", ".stages", "", "a\\b", "tab\there", "x" * 300,
             "evil\u202egnp.exe", "a\u2066b", "c1\x85"]
)  # fmt: skip
def test_a_name_that_is_not_one_path_segment_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="is not a plain name"):
        segment(name, "name")


@pytest.mark.parametrize("kind", ["pools", "selections", "runs", "comparisons", "correlations", "trainings"])
def test_experiment_names_that_are_paths_write_nothing(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "settings.json").write_text('{"mine": true}')
    entry = {"name": str(victim / "settings"), "data": "d.json"}
    spec: dict = {"name": "x", "runs": [{"name": "r", "data": "d.json"}]}
    extra = {
        "pools": entry,
        "selections": {**entry, "score": ["length"]},
        "runs": entry,
        "comparisons": {"name": "../../c", "runs": ["r", "r"]},
        "correlations": {"name": "../c", "run": "r", "scored": "d.json"},
        "trainings": {**entry, "data": "d.json"},
    }[kind]
    spec[kind] = [*spec.get(kind, []), extra]
    if kind == "trainings":
        spec["evaluation"] = {"instruction": ["d.json"]}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    before = tree(tmp_path)
    result = runner.invoke(app, ["experiment", str(path), "--out", str(tmp_path / "out")])
    one_line_error(result, "is not a plain name")
    assert tree(tmp_path) == before and json.loads((victim / "settings.json").read_text()) == {"mine": True}


def test_the_experiments_own_name_is_a_plain_name(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": "../../escape", "runs": [{"name": "r", "data": "d.json"}]}))
    with pytest.raises(ConfigError, match="is not a plain name"):
        load_experiment(path)


def test_a_grid_value_used_alone_as_a_name_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "grid": {"n": [1, 2]}, "runs": [{"name": "{n}", "data": "d.json"}]}))
    assert [r.name for r in load_experiment(path).runs] == ["1", "2"]


@pytest.mark.parametrize("name", ["../../x", "/tmp/elsewhere", "sub/x"])
def test_select_name_that_is_a_path_is_refused_before_any_file(tmp_path: Path, name: str) -> None:
    data = write_json(tmp_path / "d.json", GOOD)
    before = tree(tmp_path)
    result = runner.invoke(
        app, ["select", str(data), "--by", "reward", "--top", "2", "-o", str(tmp_path / "o"), "--name", name]
    )
    one_line_error(result, "--name", "is not a plain name")
    assert tree(tmp_path) == before
    with pytest.raises(ConfigError):
        SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "o", top=2, name=name)


def test_select_quantiles_are_bounded(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at most 100"):
        SelectConfig.of(data=tmp_path / "d.json", by="reward", out_dir=tmp_path / "o", quantiles=100_000)


def test_correlate_fields_that_are_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a plain name"):
        CorrelateConfig.of(run=tmp_path, scored=tmp_path / "s.jsonl", out=tmp_path / "c", fields=("ifd", "../../x"))


def test_selection_files_are_named_relative_to_their_folder(tmp_path: Path) -> None:
    from gradspec.selection import select

    data = write_json(tmp_path / "d.json", GOOD)
    summary = select(SelectConfig.of(data=data, by="reward", out_dir=tmp_path / "o", top=2, keep_column=True))
    assert summary["files"] == {"highest": "d_highest_2.json", "kept": "d_kept.jsonl"}
    stored = json.loads((tmp_path / "o" / "d_selection.json").read_text())
    assert stored["files"] == summary["files"] and all((tmp_path / "o" / f).exists() for f in stored["files"].values())


# The judge's key -------------------------------------------------------------------------------------


def test_redaction_removes_keys_tokens_and_header_values() -> None:
    key = "sk-live-0123456789abcdef"
    text = f'{{"error": "bad key Bearer {key}", "api-key": "zz9", "Authorization": "Basic qq"}} plain {key} Bearer sk-S'
    clean = redact(text, key)
    assert key not in clean and "zz9" not in clean and "qq" not in clean and "sk-S" not in clean
    assert clean.count("[redacted]") == 5 and "plain" in clean


def test_a_key_echoed_in_good_replies_reaches_no_output_state_cache_or_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-echo-this-secret-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    data = write_json(
        tmp_path / "d.json",
        [{"instruction": "[ECHO200] q", "output": "x"}, {"instruction": "[ECHOKEY] r", "output": "y"}],
    )
    with judge_server() as (url, state):
        args = ["score", str(data), "-o", str(tmp_path / "s.jsonl"), "--metrics", "instag,difficulty"]
        args += ["--judge", "openai:t", "--judge-base-url", url, "--judge-cache", str(tmp_path / "c.sqlite")]
        result = runner.invoke(app, [*args, "--no-progress", "--judge-retries", "0"])
    assert result.exit_code == 0, result.output
    assert f"Bearer {key}" in state.auth  # the server did get the key, and echoed it
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert rows[0]["difficulty"] == 4 and rows[0]["instag"] == 1  # echoed replies still parse
    assert "[redacted]" in rows[0]["raw_instag"] and "[redacted]" in rows[0]["raw_diff"]
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".sqlite"]
    assert any(p.parent.name == "s.jsonl.score" for p in written)
    for path in written:
        text = path.read_text(errors="replace")
        assert key not in text and "echo-this-secret" not in text and "sk-echo" not in text, path
    cached = sqlite3.connect(tmp_path / "c.sqlite").execute("select reply from replies").fetchall()
    assert cached and all(key not in reply and "echo-this" not in reply for (reply,) in cached)
    assert key not in result.output and "echo-this" not in result.output


def test_writers_remove_the_key_from_anything_they_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gradspec.files import write_json_atomic, write_records

    key = "sk-writer-check-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    records = [{"note": f"the key is {key}", key: 1}]
    for name in ("a.json", "b.jsonl", "c.parquet"):
        write_records(tmp_path / name, records)
    write_json_atomic(tmp_path / "d.json", {"nested": [{"k": key}]})
    for path in tmp_path.iterdir():
        assert key.encode() not in path.read_bytes(), path


# score --overwrite and two scorers -----------------------------------------------------------------


def test_score_overwrite_never_deletes_files_it_did_not_write(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", GOOD)
    out = tmp_path / "results.jsonl"
    state = tmp_path / "results.jsonl.score"
    state.mkdir()
    (state / "thesis").mkdir()
    (state / "thesis" / "chapter1.tex").write_text("years of work")
    args = ["score", str(data), "-o", str(out), "--metrics", "difficulty", "--reuse-raw", "--no-progress"]
    one_line_error(runner.invoke(app, [*args, "--overwrite"]), "did not write", "thesis")
    one_line_error(runner.invoke(app, args), "did not write", "thesis")
    assert (state / "thesis" / "chapter1.tex").read_text() == "years of work" and not out.exists()


def test_score_overwrite_replaces_its_own_state(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", GOOD)
    out = tmp_path / "s.jsonl"
    base = dict(data=data, out=out, metrics=("difficulty",), reuse_raw=True, progress=False)
    score(ScoreConfig.of(**base))
    assert (tmp_path / "s.jsonl.score" / "difficulty.jsonl").exists()
    score(ScoreConfig.of(**base, overwrite=True))
    names = sorted(p.name for p in (tmp_path / "s.jsonl.score").iterdir())
    assert names == [".lock", "difficulty.jsonl", "identity.json"]
    assert json.loads((tmp_path / "s.jsonl.score" / "identity.json").read_text())["kind"] == "gradspec-score-state"


def test_a_second_scorer_of_one_output_is_refused(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", GOOD)
    out = tmp_path / "s.jsonl"
    (tmp_path / "s.jsonl.score").mkdir()
    with WriterLock(tmp_path / "s.jsonl.score" / ".lock", "held"):  # as a first scorer holds it
        result = runner.invoke(app, ["score", str(data), "-o", str(out), "--metrics", "length", "--no-progress"])
    one_line_error(result, "being scored by another gradspec process")
    assert not out.exists()


@pytest.mark.parametrize("kind", ["folder", "data file"])
def test_a_judge_cache_that_is_not_one_is_one_line(tmp_path: Path, kind: str) -> None:
    data = write_json(tmp_path / "d.json", GOOD)
    cache = tmp_path / "cache"
    if kind == "folder":
        cache.mkdir()
    else:
        cache.write_text(json.dumps(GOOD))
    args = ["score", str(data), "-o", str(tmp_path / "s.jsonl"), "--metrics", "difficulty", "--judge", "openai:t"]
    result = runner.invoke(app, [*args, "--judge-base-url", "http://127.0.0.1:9", "--judge-cache", str(cache)])
    one_line_error(result, "--judge-cache", str(cache))
    assert kind == "folder" or json.loads(cache.read_text()) == GOOD


# Pages and trainings written over other files --------------------------------------------------------


def test_report_and_explore_never_replace_a_file_they_did_not_write(tmp_path: Path) -> None:
    from gradspec.report.page import GENERATOR, check_page_out

    victim = write_json(tmp_path / "data.json", GOOD)
    for args in (["report", str(tmp_path), "--out", str(victim)], ["explore", str(tmp_path), "--out", str(victim)]):
        one_line_error(runner.invoke(app, args), "not a page gradspec wrote")
    assert json.loads(victim.read_text()) == GOOD
    ours = tmp_path / "old.html"
    ours.write_text(f"<!DOCTYPE html><html><head>{GENERATOR}</head></html>")
    assert check_page_out(ours) == ours


def test_a_written_report_carries_its_marker(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from gradspec import ComputeConfig, PromptConfig, compute
    from gradspec.report import write_report
    from gradspec.report.page import GENERATOR

    data = write_json(tmp_path / "d.json", GOOD)
    config = ComputeConfig.of(
        data=data,
        out=tmp_path / "run",
        model=str(tiny_llama_dir),
        progress=False,
        prompt=PromptConfig("plain", max_length=64),
    )
    compute(config)
    page = write_report([tmp_path / "run"], tmp_path / "r.html")
    assert GENERATOR in page.read_text()[:4096]
    write_report([tmp_path / "run"], tmp_path / "r.html")  # its own page is replaced
    one_line_error(runner.invoke(app, ["explore", str(tmp_path / "run"), "--out", str(tmp_path / "run/run.json")]))
    assert json.loads((tmp_path / "run/run.json").read_text())["kind"] == "gradspec-run"


def test_train_refuses_an_out_it_cannot_use_before_loading_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gradspec.train.run as training

    monkeypatch.setattr(training, "load", lambda *a, **k: pytest.fail("the model loaded before --out was checked"))
    data = write_json(tmp_path / "d.json", GOOD)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "train.json").write_text('{"lr": 1}')
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "eval.csv").write_text("a,b\n")
    held = write_json(tmp_path / "held.json", [{"instruction": "other", "output": "x"}])
    for out, message in ((a_file, "is a file"), (foreign, "not a results file gradspec wrote"), (theirs, "eval.csv")):
        args = ["train", str(data), "--out", str(out), "--eval-instruction", str(held), "--epochs", "0"]
        one_line_error(runner.invoke(app, args), message)
    assert (foreign / "train.json").read_text() == '{"lr": 1}' and (theirs / "eval.csv").read_text() == "a,b\n"


# System errors -------------------------------------------------------------------------------------


def test_a_full_disk_is_one_line_naming_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gradspec.files as files

    def full(path: Path, write):  # noqa: ANN001
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "atomic_write", full)
    data = write_json(tmp_path / "d.json", GOOD)
    result = runner.invoke(app, ["select", str(data), "--by", "reward", "--top", "2", "-o", str(tmp_path / "o")])
    one_line_error(result, "No space left on device", "d_highest_2.json")


def test_an_unwritable_run_folder_is_refused_before_the_model_loads(
    tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import gradspec.computation.run as computation
    import gradspec.store.folder as folder
    from gradspec import ComputeConfig, PromptConfig, compute

    data = write_json(tmp_path / "d.json", GOOD)
    out = tmp_path / "run"
    compute(
        ComputeConfig.of(
            data=data, out=out, model=str(tiny_llama_dir), progress=False, prompt=PromptConfig("plain", max_length=64)
        )
    )
    real_access = os.access
    # Tests may run as root, who may write anywhere: the folder is made read-only to gradspec's check.
    monkeypatch.setattr(folder.os, "access", lambda p, mode: False if Path(p) == out else real_access(p, mode))
    monkeypatch.setattr(computation, "load", lambda *a, **k: pytest.fail("the model loaded first"))
    args = ["compute", str(data), "-o", str(out), "--model", str(tiny_llama_dir), "--template", "plain"]
    one_line_error(runner.invoke(app, [*args, "--max-length", "64", "--no-progress"]), "is not writable")
