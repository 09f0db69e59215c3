"""The command line: every command has help, compute and demo run, errors are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gradspec.analysis.findings import counted
from gradspec.cli.main import app
from gradspec.data import load_dataset
from gradspec.demo import DEMO_GROUPS, demo_data

from conftest import write_json

runner = CliRunner()
COMMANDS = sorted(app.commands)  # taken from the app, not a hand-kept list


def test_the_app_has_the_pipeline_verbs() -> None:
    assert {"compute", "demo", "show", "score", "select"} <= set(COMMANDS)


def test_score_cli_scores_and_fails_in_one_line(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", [{"instruction": "Hi", "output": "Hello there"}])
    out = tmp_path / "s.jsonl"
    ok = runner.invoke(app, ["score", str(data), "-o", str(out), "--model", str(tiny_llama_dir), "--no-progress"])
    assert ok.exit_code == 0, ok.output
    assert "ifd: 1 scored, 0 failed" in ok.output and out.exists()
    bad = runner.invoke(app, ["score", str(data), "-o", str(out), "--metric", "reward"])
    assert bad.exit_code == 2 and bad.output.strip().count("\n") == 0 and "--reward-model" in bad.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_compute_and_show(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.jsonl", [])
    data.write_text('{"prompt": "Hi", "response": "Hello there"}\n\n{"prompt": "Bye", "response": "See you"}\n')
    out = tmp_path / "run"
    args = [
        "compute",
        str(data),
        "--out",
        str(out),
        "--model",
        str(tiny_llama_dir),
        "--template",
        "chat",
        "--system-prompt",
        "Be kind.",
        "--max-length",
        "64",
        "--modules",
        "all",
        "--device",
        "cpu",
        "--spectra",
        "--no-progress",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 ok, 0 skipped, 0 error" in result.output
    assert (out / "spectra").is_dir() and list((out / "spectra").glob("*.parquet"))
    shown = runner.invoke(app, ["show", str(out)])
    assert shown.exit_code == 0 and "gate" in shown.output
    assert shown.output.startswith(f"{out}: a run: per-sample gradient spectra")  # names its kind, as for others
    changed = runner.invoke(app, args[:-2] + ["--max-length", "32", "--no-progress"])
    assert changed.exit_code == 2
    assert "max_length: run has 64, this command has 32" in changed.output and "Traceback" not in changed.output


@pytest.mark.parametrize(
    ("content", "expect"),
    [(None, "no such file"), ('[{"q": "a", "a": "b"}]', "found ['a', 'q']"), ("[1, 2", "invalid JSON")],
)
def test_bad_files_exit_with_one_line(tmp_path: Path, tiny_llama_dir: Path, content: str | None, expect: str) -> None:
    data = tmp_path / "bad.json"
    if content is not None:
        data.write_text(content)
    result = runner.invoke(app, ["compute", str(data), "--out", str(tmp_path / "r"), "--model", str(tiny_llama_dir)])
    assert result.exit_code == 2
    assert expect in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "expect"),
    [
        (["--modules", "q,attn"], "unknown attn"),
        (["--dtype", "float8"], "--dtype must be one of float32, bfloat16, float16"),
        (["--template", "fancy"], "--template must be one of auto, plain, chat, got 'fancy'"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--field-map", "output"], "must look like canonical=source"),
    ],
)
def test_bad_options_are_clear_errors(tmp_path: Path, option: list[str], expect: str) -> None:
    data = write_json(tmp_path / "d.json", [{"prompt": "a", "response": "b"}])
    result = runner.invoke(app, ["compute", str(data), "--out", str(tmp_path / "r"), *option])
    assert result.exit_code == 2 and expect in result.output and "Traceback" not in result.output


def test_demo_data_pairs_good_and_poor_answers() -> None:
    good, poor = (load_dataset(demo_data(g)).items for g in DEMO_GROUPS)
    assert len(good) == len(poor) == 24
    assert [g.messages for g in good] == [p.messages for p in poor]
    assert sum(len(g.response) for g in good) > 5 * sum(len(p.response) for p in poor)


def test_demo_writes_runs_and_figure(tmp_path: Path, tiny_llama_dir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "demo",
            "--out",
            str(tmp_path / "demo"),
            "--model",
            str(tiny_llama_dir),
            "--max-length",
            "256",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    for group in DEMO_GROUPS:
        assert "24 ok" in result.output
        assert (tmp_path / "demo" / group / "run.json").exists()
    png = tmp_path / "demo" / "layerwise.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    # The raw reading and the equal-length one, side by side, and what equal length changed.
    assert "raw:" in result.output and "equal length:" in result.output
    windowed = [p for p in (tmp_path / "demo").iterdir() if p.name.startswith("good@")]
    assert len(windowed) == 1 and (tmp_path / "demo" / f"compare-equal-length@{windowed[0].name[5:]}").is_dir()
    window = int(windowed[0].name[5:])
    said = f"What equal length changes: with every response cut to its first {counted(window, 'token')}, the"
    assert said in result.output
    assert (tmp_path / "demo" / "layerwise.svg").read_text().count("<path") > 20
    # The same 24 instructions answered twice: read pair by pair too, at both lengths.
    assert result.output.count("Paired by prompt (24 pairs") >= 2


def test_the_demo_counts_verdicts_in_words_a_reader_can_say() -> None:
    from gradspec.demo.run import verdict_counts

    said = verdict_counts(["disappears", "holds", "disappears", "inconclusive", "equivalent to zero", "disappears"])
    assert said == "the difference disappears in 3, holds in 1, is inconclusive in 1, is equivalent to zero in 1"
    assert verdict_counts([]) == "none"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", [{"prompt": "a", "response": "b"}])
    result = runner.invoke(
        app, ["compute", str(data), "--out", str(tmp_path / "r"), "--model", str(tiny_llama_dir), "--device", "cuda"]
    )
    assert result.exit_code == 2 and "no CUDA device is available; use --device cpu" in result.output


def test_workers_option_is_removed_before_torchrun_relaunches() -> None:
    from gradspec.cli.main import without_option

    args = ["compute", "d.json", "--workers", "2", "--out", "r", "--workers=3", "--no-progress"]
    assert without_option(args, "--workers") == ["compute", "d.json", "--out", "r", "--no-progress"]


@pytest.mark.slow
def test_the_gpu_check_rehearses_every_part_on_the_cpu(tmp_path: Path) -> None:
    """benchmarks/gpu_check.py --dry-run: every part at tiny sizes on the CPU, as CI runs it."""
    import json
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, str(script), "--dry-run", "--out", str(out)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["dry_run"] and result["contract"]["within"]
    assert set(result["eigen"]["fastest"]) == {"16", "32"} and result["nccl"]["returncode"] == 0
    assert len(result["wide"]["rows"]) == 4 and all(
        r["seconds_per_sample"]["gradspec"] > 0 for r in result["wide"]["rows"]
    )


def test_a_bug_is_one_line_that_says_so_and_debug_shows_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import gradspec.artifacts

    def broken(_path: object) -> None:
        raise TypeError("unsupported operand")

    monkeypatch.setattr(gradspec.artifacts, "identify", broken)
    result = runner.invoke(app, ["show", "anything"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "internal error (a bug in gradspec" in result.output and "TypeError: unsupported operand" in result.output
    debug = runner.invoke(app, ["show", "anything", "--debug"])
    assert isinstance(debug.exception, TypeError)
