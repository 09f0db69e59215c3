"""Every output folder carries a marker that names its kind: ``gradspec show`` names it, the report
takes any kind it can show through the registry, a newer format is refused in one line, and
folders written before markers still open."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gradspec import __version__
from gradspec.artifacts import KINDS, identify
from gradspec.cli.main import app
from gradspec.errors import ConfigError
from gradspec.experiment import load_experiment, run_experiment

from conftest import write_json

runner = CliRunner()


@pytest.fixture(scope="module")
def experiment_out(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    """One small experiment with a step of every kind: pool, selections, runs at two windows,
    comparisons, a length curve, a correlation, trainings and their summary."""
    tmp = tmp_path_factory.mktemp("kinds")
    root = tmp / "data"
    root.mkdir()
    recs = [{"instruction": f"task {i}", "output": " ".join(["w"] * (4 + i % 9)), "reward": i % 5} for i in range(16)]
    write_json(root / "a.json", recs)
    write_json(root / "held.json", [{"instruction": f"held {i}", "output": "yes it is"} for i in range(3)])
    spec = {
        "name": "kinds", "data_root": "data", "model": str(tiny_llama_dir), "template": "plain", "max_length": 64,
        "device": "cpu", "progress": False, "eval_limit": 3, "epochs": 0,
        "pools": [{"name": "pool", "data": ["a.json"]}],
        "selections": [
            {"name": "scored", "data": "@pool", "score": ["length"]},
            {"name": "split", "data": "@scored/scored", "by": "reward", "top": 4, "bottom": 4},
        ],
        "runs": [{"name": "low", "data": "@split/lowest"}, {"name": "high", "data": "@split/highest"}],
        "comparisons": [{"name": "c", "runs": ["low", "high"], "windows": [2, 3], "n_boot": 20}],
        "correlations": [{"name": "r", "run": "high", "scored": "@scored/scored", "fields": ["reward"]}],
        "evaluation": {"instruction": ["held.json"], "baseline": "base"},
        "trainings": [{"name": "base", "data": "@split/highest"}, {"name": "other", "data": "@split/lowest"}],
    }  # fmt: skip
    (tmp / "exp.yaml").write_text(yaml.safe_dump(spec))
    result = run_experiment(load_experiment(tmp / "exp.yaml"), tmp / "out", say=lambda _: None)
    assert not [k for k, v in result["stages"].items() if v.startswith("failed")], result["stages"]
    return tmp / "out"


@pytest.mark.slow
def test_every_output_folder_names_its_kind(experiment_out: Path) -> None:
    out = experiment_out
    expected = {
        out: "experiment", out / "runs/high": "run", out / "comparisons/c": "comparison",
        out / "comparisons/c-length-curve": "length-curve", out / "correlations/r": "correlation",
        out / "selections/split": "selection", out / "selections/scored/scored.jsonl": "score-state",
        out / "trainings/base": "training", out / "trainings/summary": "selection-results",
    }  # fmt: skip
    for folder, kind in expected.items():
        found = identify(folder)
        assert found.kind.name == kind and not found.legacy, folder
        assert found.marker.get("gradspec_version") == __version__ or kind == "score-state"
        shown = runner.invoke(app, ["show", str(folder)])
        assert shown.exit_code == 0, shown.output
        assert f"{'an' if kind == 'experiment' else 'a'} {kind}:" in shown.output, shown.output
    as_json = json.loads(runner.invoke(app, ["show", str(out / "comparisons/c"), "--json"]).output)
    assert as_json["kind"] == "comparison" and [g["label"] for g in as_json["groups"]] == ["low", "high"]
    assert set(KINDS) - {"training-spectra"} == set(expected.values())  # the callback's: tests/test_integrations.py


@pytest.mark.slow
def test_the_report_takes_every_kind_it_can_show_and_names_the_rest(experiment_out: Path, tmp_path: Path) -> None:
    out = experiment_out
    folders = ["runs/high", "comparisons/c", "comparisons/c-length-curve", "correlations/r", "trainings/summary",
               "trainings/other"]  # fmt: skip
    page = tmp_path / "r.html"
    result = runner.invoke(app, ["report", *(str(out / f) for f in folders), "--out", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    for heading in ("Comparison: c", "Length-response curve", "Quality scores and gradients", "Selection that pays",
                    "Fine-tune: other"):  # fmt: skip
        assert heading in text
    # An experiment folder is its findings: comparisons, correlations and training summaries, in that order.
    whole = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "e.html")])
    assert whole.exit_code == 0, whole.output
    sections = (tmp_path / "e.html").read_text()
    assert (
        sections.index("Comparison: c")
        < sections.index("Quality scores and gradients")
        < sections.index("Selection that pays")
    )
    refused = runner.invoke(app, ["report", str(out / "selections/split"), "--out", str(tmp_path / "s.html")])
    assert refused.exit_code == 2 and "a selection, not a run or comparison" in refused.output
    verify_other = runner.invoke(app, ["verify", str(out / "comparisons/c")])
    assert verify_other.exit_code == 2 and "a comparison, not a run" in verify_other.output


def test_a_newer_format_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "cmp"
    folder.mkdir()
    (folder / "comparison.json").write_text(json.dumps({"kind": "gradspec-comparison", "format": 99}))
    result = runner.invoke(app, ["show", str(folder)])
    assert result.exit_code == 2 and "format 99" in result.output and "upgrade gradspec" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_folders_written_before_markers_still_open(tmp_path: Path) -> None:
    curve = tmp_path / "curve"
    curve.mkdir()
    (curve / "length_curve.csv").write_text("window,a,b\n")
    old_comparison = tmp_path / "cmp"
    old_comparison.mkdir()
    (old_comparison / "comparison.json").write_text(json.dumps({"format": 1, "kind": "comparison", "groups": []}))
    assert identify(curve).kind.name == "length-curve" and identify(curve).legacy
    assert identify(old_comparison).kind.name == "comparison"
    shown = runner.invoke(app, ["show", str(curve)])
    assert shown.exit_code == 0 and "written before output folders carried markers" in shown.output


def test_a_folder_of_no_kind_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a gradspec output folder"):
        identify(tmp_path)
    result = runner.invoke(app, ["show", str(tmp_path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
