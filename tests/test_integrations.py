"""GradspecCallback in a real Trainer loop on a tiny model: spectra of a probe set over steps,
written as run folders and into the logs, drawn by the report, and never touching the training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradspec.artifacts import identify
from gradspec.cli.main import app
from gradspec.config.train import RecipeConfig
from gradspec.data import load_dataset
from gradspec.integrations import GradspecCallback
from gradspec.model import load_model
from gradspec.prompting import Encoded, PromptConfig, encode
from gradspec.report import write_report
from gradspec.train.fine_tune import fine_tune

from conftest import write_json

TRAIN = [{"instruction": f"Repeat {w}.", "output": f"{w} {w} {w}"} for w in ("cat", "dog", "sun", "sea")] * 2
PROBE = [{"instruction": f"Repeat {w}.", "output": f"{w} {w}"} for w in ("owl", "elk", "bee")]


def samples(model_dir: Path, tmp: Path) -> tuple[object, list[Encoded]]:
    loaded = load_model(str(model_dir), device="cpu")
    data = load_dataset(write_json(tmp / "train.json", TRAIN)).items
    return loaded, [encode(r, loaded.tokenizer, PromptConfig("plain", max_length=64)) for r in data]


def test_the_callback_writes_spectra_over_steps_and_changes_nothing(
    tmp_path: Path, tiny_llama_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    recipe = RecipeConfig(epochs=2, learning_rate=5e-3, batch_size=4, warmup_ratio=0.0)
    loaded, encoded = samples(tiny_llama_dir, tmp_path)
    plain = fine_tune(loaded.model, 0, encoded, recipe, progress=False)
    loaded, encoded = samples(tiny_llama_dir, tmp_path)
    probe = write_json(tmp_path / "probe.json", PROBE)
    callback = GradspecCallback(probe, tmp_path / "spectra", loaded.tokenizer, every=2,
                                prompt=PromptConfig("plain", max_length=64))  # fmt: skip
    watched = fine_tune(loaded.model, 0, encoded, recipe, progress=False, callbacks=[callback])
    assert [h["loss"] for h in watched.losses] == pytest.approx([h["loss"] for h in plain.losses], rel=1e-6)
    assert plain.steps == watched.steps == 4
    assert capfd.readouterr().err.count("gradspec: template plain") <= 1  # said once, not at each of 3 measurements
    found = identify(tmp_path / "spectra")
    assert found.kind.name == "training-spectra" and found.marker["steps"] == [0, 2, 4]
    nuclear = {}
    for step in (0, 2, 4):
        run = identify(tmp_path / "spectra" / f"step-{step:06d}")
        assert run.kind.name == "run" and run.marker["counts"]["ok"] == 3
        from gradspec.store import open_run

        nuclear[step] = open_run(run.path).scalar("select avg(nuclear_norm) from layer_stats")
    assert len(set(nuclear.values())) == 3  # the weights moved, and the spectra with them
    page = write_report([tmp_path / "spectra"], tmp_path / "r.html")
    assert "Spectra over training" in page.read_text() and page.read_text().count("<img") == 1


def test_the_headline_numbers_reach_the_logs(tmp_path: Path, tiny_llama_dir: Path) -> None:
    loaded, encoded = samples(tiny_llama_dir, tmp_path)
    probe = write_json(tmp_path / "probe.json", PROBE)
    callback = GradspecCallback(
        probe, tmp_path / "s", loaded.tokenizer, every=1, prompt=PromptConfig("plain", max_length=64)
    )
    logs: dict[str, float] = {}
    callback.measure(loaded.model, 0)
    callback.on_log(None, None, None, logs=logs)
    assert set(logs) == {f"gradspec/{m}_{p}" for m in ("nuclear_norm", "effective_rank") for p in "qkvo"}
    assert all(value > 0 for value in logs.values())
    assert not any(p.requires_grad for p in loaded.model.parameters())  # as it found them (frozen by loading)
    assert json.loads(json.dumps(logs)) == logs  # plain numbers, as a reporter takes them


def test_the_callback_writes_only_its_own_folder_and_its_marker_lists_every_step(
    tmp_path: Path, tiny_llama_dir: Path
) -> None:
    from gradspec.errors import OutputError

    loaded, _ = samples(tiny_llama_dir, tmp_path)
    probe = write_json(tmp_path / "probe.json", PROBE)

    def callback(out: Path) -> GradspecCallback:
        return GradspecCallback(probe, out, loaded.tokenizer, every=2, prompt=PromptConfig("plain", max_length=64))

    first = callback(tmp_path / "s")
    first.measure(loaded.model, 0)
    first.measure(loaded.model, 2)
    resumed = callback(tmp_path / "s")  # a training resumed from its checkpoint: a new callback, the same folder
    resumed.measure(loaded.model, 4)
    assert identify(tmp_path / "s").marker["steps"] == [0, 2, 4]
    shown = CliRunner().invoke(app, ["show", str(tmp_path / "s")])
    assert shown.exit_code == 0 and "a training-spectra:" in shown.output and "measured: 0, 2, 4" in shown.output
    for taken in (tmp_path / "s" / "step-000000", tmp_path):  # a run folder; a folder of other files
        with pytest.raises(OutputError, match="not a folder of training spectra"):
            callback(taken).measure(loaded.model, 6)
    assert not (tmp_path / "s" / "step-000000" / "step-000006").exists()
