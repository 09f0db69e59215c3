"""``gradspec experiment``: a grid end to end on a tiny model, resumed, and bad files refused."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from gradspec.cli.main import app
from gradspec.config.selection import Size
from gradspec.errors import ConfigError
from gradspec.experiment import load_experiment, run_experiment
from gradspec.experiment.config import Experiment
from gradspec.experiment.entries import Ref, SelectionEntry, spec_of

from conftest import write_json

SHIPPED = Path(__file__).resolve().parents[1] / "configs" / "experiments"


def make_data(root: Path) -> None:
    for split, words in (("low", 2), ("high", 6)):
        for pool in ("p1", "p2"):
            recs = [
                {"instruction": f"{pool} question {i}", "output": " ".join(["word"] * (words + i))} for i in range(4)
            ]
            write_json(root / f"{pool}_{split}.json", recs)
    write_json(root / "long.json", [{"instruction": "a long question " * 5, "output": "yes"}])
    write_json(root / "pool.json", [{"instruction": f"pool {i}", "output": "yes " * (1 + i)} for i in range(10)])


def config(tmp: Path, model: Path) -> Path:
    spec = {
        "name": "tiny",
        "data_root": "data",
        "model": str(model),
        "template": "plain",
        "max_length": 64,
        "limit": 3,
        "device": "cpu",
        "grid": {"pool": ["p1", "p2"], "split": ["low", "high"]},
        "selections": [
            {"name": "ifd", "data": "pool.json", "score": ["ifd", "length"], "by": "ifd", "top": 3, "bottom": 3}
        ],
        "runs": [
            {"name": "{pool}-{split}", "data": "{pool}_{split}.json"},
            {"name": "ifd-high", "data": "@ifd/highest"},
            {"name": "ifd-low", "data": "@ifd/lowest"},
            {"name": "none", "data": "long.json", "max_length": 8},  # every prompt fills it: nothing to compare
        ],
        "comparisons": [
            {"name": "{pool}", "runs": ["{pool}-low", "{pool}-high"], "labels": ["low", "high"]},
            {"name": "pooled", "runs": [["p1-low", "p2-low"], ["p1-high", "p2-high"]], "labels": ["low", "high"]},
            {"name": "ifd", "runs": ["ifd-low", "ifd-high"]},
            {"name": "empty", "runs": ["p1-low", "none"]},
        ],
        "correlations": [{"name": "ifd", "run": "ifd-high", "scored": "@ifd/scored"}],
        "report": {"title": "tiny experiment"},
    }
    (tmp / "data").mkdir()
    make_data(tmp / "data")
    path = tmp / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_stage_is_fingerprinted_as_gradspec_0_2_wrote_it() -> None:
    """Typed sizes and renamed references leave the fingerprint's text as it was: a folder made by 0.2
    resumes without redoing a stage."""
    options = {"by": "reward", "top": Size.parse("16000 tokens"), "bottom": Size.parse(64)}
    entry = SelectionEntry("top", Ref("pool", "scored"), ("length",), options)
    assert spec_of(entry) == {
        "name": "top",
        "data": {"step": "pool", "part": "scored"},
        "score": ["length"],
        "options": {"by": "reward", "top": "16000 tokens", "bottom": 64},
    }


@pytest.mark.slow
def test_experiment_runs_end_to_end_and_resumes(tmp_path: Path, tiny_llama_dir: Path) -> None:
    exp = load_experiment(config(tmp_path, tiny_llama_dir))
    assert [r.name for r in exp.runs][:4] == ["p1-low", "p1-high", "p2-low", "p2-high"]
    out = tmp_path / "out"
    first = run_experiment(exp, out, say=lambda _: None)
    assert first["stages"]["report"] == "done" and (out / "report.html").exists()
    # A comparison that cannot be made is recorded as failed; the other stages and the report go on.
    why = first["stages"].pop("compare-empty")
    assert why.startswith("failed: ") and "no ok samples" in why
    assert "Comparison: empty" not in (out / "report.html").read_text()
    assert all(v == "done" for v in first["stages"].values())
    pooled = json.loads((out / "comparisons/pooled/comparison.json").read_text())
    assert [len(g["runs"]) for g in pooled["groups"]] == [2, 2]
    assert len(json.loads((out / "selections/ifd/sel_highest_3.json").read_text())) == 3
    assert (out / "correlations/ifd/correlations.csv").exists()
    # Again, from a folder whose markers are where 0.2 kept them: nothing is recomputed or rewritten.
    report_time = (out / "report.html").stat().st_mtime_ns
    (out / ".stages").rename(out / ".steps")
    second = run_experiment(load_experiment(tmp_path / "exp.yaml"), out, say=lambda _: None)
    assert (out / ".stages").is_dir() and not (out / ".steps").exists()
    skipped = {k for k, v in second["stages"].items() if v == "skipped"}
    assert {"select-ifd", "compare-p1", "compare-pooled", "correlate-ifd", "report"} <= skipped
    assert (out / "report.html").stat().st_mtime_ns == report_time
    from gradspec.store import open_run

    assert open_run(out / "runs/p1-low").manifest["counts"]["total"] == 3


def test_bad_experiment_files_are_refused(tmp_path: Path) -> None:
    cases = {
        "name: x\nruns: [{name: a, data: d.json}]\ncomparisons: [{name: c, runs: [a, b]}]\n": "no run named 'b'",
        "name: x\nruns: [{name: '{v}', data: d.json}]\n": "not a grid variable",
        "name: x\nruns: [{name: a, data: d.json, colour: red}]\n": "bad2.yaml: run 'a': unknown key 'colour'; "
        "valid keys: name, data, .*max_length",
        "name: x\nruns: [{name: a, data: d.json, max_length: many}]\n": "bad3.yaml: run 'a': key 'max_length': "
        "--max-length expects an integer, got str 'many'",
        "name: x\ncolour: red\nruns: [{name: a, data: d.json}]\n": "bad4.yaml: unknown key 'colour'; valid keys: ",
        "name: x\nruns: [{name: a, data: d.json}]\ncomparisons: [{name: c, runs: [a, a], n_boot: 0}]\n": "n_boot",
        "name: x\nruns: [{name: a, data: d.json}, {name: a, data: e.json}]\n": "used twice",
        "name: x\nruns: [{name: a\n": "not valid YAML",
        "- just a list\n": "a YAML mapping",
        "name: x\nruns: [{name: a, data: '@nope/highest'}]\n": "run 'a': @nope/highest names no earlier selection",
        "name: x\nruns: [{name: a, data: '@nope'}]\n": "run 'a': @nope names no pool",
        "name: x\nselections: [{name: s, data: d.json, score: [length]}]\nruns: [{name: a, data: '@s/highest'}]\n": (
            r"@s/highest: selection s makes no such output \(it makes @s/scored\)"
        ),
        "name: x\nselections: [{name: s, data: '@s/scored', score: [length]}]\nruns: [{name: a, data: d.json}]\n": (
            "selection 's': @s/scored names no earlier selection"
        ),
        "name: x\nruns: [{name: a, data: d.json}]\ncomparisons: [{name: c, runs: [a, a], windows: [0]}]\n": "windows",
        "name: x\nruns: [{name: a, data: d.json}]\ntrainings: [{name: summary, data: d.json}]\n"
        "evaluation: {instruction: [h.json]}\n": "the name is taken",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message) as info:
            load_experiment(path)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["quality", "reasoning", "fast_slow", "models"])
def test_shipped_configs_are_valid(name: str) -> None:
    small, full = load_experiment(SHIPPED / f"{name}.yaml"), load_experiment(SHIPPED / f"{name}.yaml", full=True)

    def limits(exp: Experiment) -> set[int]:
        """Sample counts of the runs read from files (a run from a selection has the selection's)."""
        return {
            int(run.options.get("limit", exp.defaults.get("limit", 0)))
            for run in exp.runs
            if isinstance(run.data, Path)
        }

    assert 0 < max(limits(small)) < min(limits(full))
    # Larger at full: longer samples, or (at equal positions) more of each sample's positions.
    if "response_tokens" in full.defaults:
        fixed = [(e.defaults["prompt_tokens"], e.defaults["response_tokens"]) for e in (small, full)]
        assert fixed[0][0] < fixed[1][0] and fixed[0][1] < fixed[1][1]
    else:
        assert full.defaults["max_length"] == 2048
    assert small.runs and small.comparisons


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_experiment_loads_small_and_full(path: Path) -> None:
    small, full = load_experiment(path), load_experiment(path, full=True)
    assert small.runs or small.trainings
    assert small.defaults != full.defaults  # --full changes something


def test_experiment_cli_says_what_is_wrong(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["experiment", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "missing.yaml: no such file" in result.output


@pytest.mark.slow
def test_equal_length_designs_and_trainings_run_end_to_end(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """A pool from two files, scored once; truncation-matched groups computed with their windows;
    a comparison at two windows with its length curve; fine-tunes summarised against random."""
    root = tmp_path / "data"
    root.mkdir()
    rng = __import__("random").Random(0)
    for name in ("a", "b"):
        recs = [{"instruction": f"{name} task {i}", "output": " ".join(["w"] * rng.randint(3, 40)), "reward": i % 7}
                for i in range(20)]  # fmt: skip
        write_json(root / f"{name}.json", recs)
    write_json(root / "held.json", [{"instruction": f"held {i}", "output": "yes it is"} for i in range(4)])
    tasks = [{"instruction": f"Is {i} even?", "output": "yes" if i % 2 == 0 else "no"} for i in range(4)]
    write_json(root / "task_no_cot.json", tasks)
    judged = [{"instruction": f"judge {i}", "output": "yes it is " * q, "prompt_id": i, "win": q}
              for i in range(3) for q in (1, 2, 3)]  # fmt: skip
    write_json(root / "judged.json", judged)
    spec = {
        "name": "designs", "data_root": "data", "model": str(tiny_llama_dir), "template": "plain", "max_length": 96,
        "device": "cpu", "progress": False, "grid": {"seed": [0, 1]},
        "pools": [{"name": "pool", "data": ["a.json", "b.json", "a.json"], "sample": 30, "seed": 0}],
        "selections": [
            {"name": "scored", "data": "@pool", "score": ["length"]},
            {"name": "matched", "data": "@scored/scored", "by": "reward", "top": 6, "bottom": 6,
             "match_length": "truncate"},
            {"name": "top", "data": "@scored/scored", "by": "reward", "top": 6},
            {"name": "random-{seed}", "data": "@scored/scored", "by": "random", "top": 6, "seed": "{seed}"},
        ],
        "runs": [{"name": "low", "data": "@matched/lowest"}, {"name": "high", "data": "@matched/highest"}],
        "comparisons": [{"name": "raw", "runs": ["low", "high"], "windows": [2, 4], "n_boot": 50}],
        "evaluation": {"instruction": ["held.json"], "reasoning": ["task_no_cot.json"], "judged": ["judged.json"],
                       "baseline": "random"},
        "eval_limit": 4, "eval_response_tokens": 2, "eval_judged_quality": "win",
        "trainings": [
            {"name": "top-s{seed}", "method": "top", "data": "@top/highest", "seed": "{seed}"},
            {"name": "random-s{seed}", "method": "random", "data": "@random-{seed}/highest", "seed": "{seed}"},
            # A second learning rate has a summary of its own (its draws are not the main rate's).
            {"name": "top-check", "method": "top", "data": "@top/highest", "learning_rate": 5e-4},
            {"name": "random-check-s{seed}", "method": "random", "data": "@random-{seed}/highest", "seed": "{seed}",
             "learning_rate": 5e-4},
            # The untrained model was made by no rate: it stands beside every rate's methods.
            {"name": "base", "method": "base", "data": "@top/highest", "epochs": 0},
        ],
        "epochs": 1, "batch_size": 3, "learning_rate": 1e-3,
    }  # fmt: skip
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = run_experiment(load_experiment(path), tmp_path / "out", say=lambda _: None)
    failed = {k: v for k, v in result["stages"].items() if v.startswith("failed")}
    assert not failed, failed
    out = tmp_path / "out"
    pool = json.loads((out / "pools/pool.json").read_text())
    assert len(pool) == 30  # a.json twice counts once: 40 distinct, 30 drawn
    from gradspec.store import open_run

    low, high = (open_run(out / "runs" / n) for n in ("low", "high"))
    assert low.manifest["config"]["record_windows"] is True
    lengths = [sorted(r.df("samples").query("status == 'ok'")["n_response_tokens"]) for r in (low, high)]
    assert lengths[0] == lengths[1]  # truncation-matched: the same lengths token for token
    summary = pd.read_csv(out / "comparisons/raw/summary.csv")
    assert set(summary.design) == {"equal length: matched pairs"}
    at_two = pd.read_csv(out / "comparisons/raw@2/summary.csv")
    assert set(at_two.design) == {"equal length: one window"}
    assert at_two.length_control.str.startswith("equal length by design").all()
    curve = pd.read_csv(out / "comparisons/raw-length-curve/length_curve.csv")
    assert sorted(set(curve.window)) == [2, 4]
    results = pd.read_csv(out / "trainings/summary/selection_results.csv")
    assert set(results.method) == {"top", "random", "base"} and (results[results.method != "base"].seeds == 2).all()
    assert "diff_vs_random" in results and results[results.method == "top"].verdict.notna().all()
    assert {"response_loss", "accuracy", "preference_accuracy", "quality_gap"} <= set(results.measure)
    from gradspec.artifacts import SELECTION_RESULTS

    read = lambda name: json.loads(SELECTION_RESULTS.marker_path(out / "trainings" / name).read_text())  # noqa: E731
    assert (
        len(read("summary")["config"]["trainings"]) == 5 and len(read("summary-lr0.0005")["config"]["trainings"]) == 4
    )
    assert read("summary")["config"]["learning_rates"] == [1e-3] and read("summary-lr0.0005")["config"][
        "learning_rates"
    ] == [5e-4]
    check = pd.read_csv(out / "trainings/summary-lr0.0005/selection_results.csv")
    assert dict(zip(check.method, check.seeds)) == {"top": 1, "random": 2, "base": 1}
    untrained = [t.set_index(["set", "measure"]).query("method == 'base'")["mean"] for t in (results, check)]
    pd.testing.assert_series_equal(untrained[0], untrained[1])  # the same folder read twice
    assert not check.set_index("method")["mean"].equals(results.set_index("method")["mean"])
    again = run_experiment(load_experiment(path), tmp_path / "out", say=lambda _: None)
    assert all(v == "skipped" for v in again["stages"].values()), again["stages"]


def test_a_pool_takes_the_records_that_match_where_before_its_limit(tmp_path: Path) -> None:
    from gradspec.experiment.pools import build_pool

    recs = [{"instruction": f"p{i % 5}", "output": f"answer {i}", "generator": "ab"[i // 5]} for i in range(10)]
    data = write_json(tmp_path / "d.json", recs)
    out = tmp_path / "pool.json"
    build_pool([data], None, 0, out, limit=3, where={"generator": "b"})
    taken = json.loads(out.read_text())
    assert [r["output"] for r in taken] == ["answer 5", "answer 6", "answer 7"]
    # skip passes over the first matching records, so a target is disjoint from a held-out set.
    build_pool([data], None, 0, out, limit=2, where={"generator": "b"}, skip=2)
    assert [r["output"] for r in json.loads(out.read_text())] == ["answer 7", "answer 8"]
    build_pool([data], None, 0, out, limit=3, skip=8)
    assert [r["output"] for r in json.loads(out.read_text())] == ["answer 8", "answer 9"]
    build_pool([data], None, 0, out, where={"generator": ["a", "b"], "instruction": "p1"})
    assert [r["output"] for r in json.loads(out.read_text())] == ["answer 1", "answer 6"]
    # A range, with ids written as numbers or as text (the natural pool has both).
    ids = [{"instruction": f"q{i}", "output": "a", "prompt_id": i if i % 2 else str(i)} for i in range(8)]
    build_pool([write_json(tmp_path / "ids.json", ids)], None, 0, out, where={"prompt_id": {"min": 2, "max": 5}})
    assert [r["instruction"] for r in json.loads(out.read_text())] == ["q2", "q3", "q4", "q5"]


def test_a_bad_range_is_refused_by_pool(tmp_path: Path) -> None:
    text = "name: x\npools:\n  - {name: p, data: [d.json], where: {prompt_id: {min: 0, upto: 3}}}\n"
    (tmp_path / "x.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"pool 'p': where prompt_id: a range is \{min: NUMBER, max: NUMBER\}"):
        load_experiment(tmp_path / "x.yaml")


def test_an_empty_grid_variable_leaves_its_entries_out_until_full_gives_it_values(tmp_path: Path) -> None:
    text = (
        "name: x\ngrid: {extra: []}\nfull: {grid: {extra: [-more]}}\n"
        "runs:\n  - {name: a, data: d.json}\n  - {name: 'b{extra}', data: d.json}\n"
    )
    (tmp_path / "x.yaml").write_text(text)
    assert [r.name for r in load_experiment(tmp_path / "x.yaml").runs] == ["a"]
    assert [r.name for r in load_experiment(tmp_path / "x.yaml", full=True).runs] == ["a", "b-more"]
    # A held-out file that uses the variable is left out too (an evaluation only --full can afford).
    text = (
        "name: z\ngrid: {tasks: []}\nfull: {grid: {tasks: [cot_500, cot_1k]}}\n"
        "pools:\n  - {name: p, data: [d.json]}\n"
        "evaluation: {instruction: [held.json], reasoning: ['{tasks}/creak.json']}\n"
        "trainings:\n  - {name: t, data: '@p'}\n"
    )
    (tmp_path / "z.yaml").write_text(text)
    assert [f.name for f in load_experiment(tmp_path / "z.yaml").evaluation["reasoning"]] == []
    full = load_experiment(tmp_path / "z.yaml", full=True).evaluation["reasoning"]
    assert [(f.parent.name, f.name) for f in full] == [("cot_500", "creak.json"), ("cot_1k", "creak.json")]
    (tmp_path / "y.yaml").write_text("name: y\ngrid: {extra: 3}\nruns: []\n")
    with pytest.raises(ConfigError, match="grid maps each variable to a list of values"):
        load_experiment(tmp_path / "y.yaml")
