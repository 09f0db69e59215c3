"""Hostile inputs, concurrent writers and damaged run folders: each ends as an error row or one
line with exit code 2, never a traceback, and loses nothing else.

Every file is made here, at test time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from gradspec import PromptConfig, compute, open_run
from gradspec.cli.main import app
from gradspec.data import BadRecord, load_dataset
from gradspec.errors import DataFileError, ModelError, OutputError
from gradspec.prompting import Encoded, encode
from gradspec.score import ScoreConfig, score
from gradspec.store.verify import verify

from cli_checks import cfg, one_line_error
from conftest import byte_tokenizer, save_tiny, write_json
from judge_server import judge_server
from tiny_models import tiny_model

GOOD = [{"instruction": f"Question {i}?", "output": f"Answer number {i}."} for i in range(4)]
runner = CliRunner()


def statuses(run) -> dict[int, str]:
    return dict(run.sql("select index, status from samples").fetchall())


# --overwrite deletes only what gradspec wrote -----------------------------------------------


def test_overwrite_never_deletes_a_folder_gradspec_did_not_write(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", GOOD)
    d = tmp_path / "d"
    d.mkdir()
    (d / "important.txt").write_text("keep")
    (d / "run.json").write_text('{"lr": 0.1}')
    args = ["compute", str(data), "--out", str(d), "--model", str(tiny_llama_dir), "--overwrite", "--no-progress"]
    one_line_error(runner.invoke(app, args), "not a gradspec run manifest")
    assert (d / "important.txt").read_text() == "keep" and (d / "run.json").read_text() == '{"lr": 0.1}'


def test_overwrite_keeps_a_users_files_inside_a_real_run(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", GOOD)
    out = tmp_path / "run"
    compute(cfg(data, out, tiny_llama_dir))
    (out / "NOTES.md").write_text("my notes")
    (out / "extra").mkdir()
    with pytest.raises(OutputError, match=r"files gradspec did not write \(NOTES.md, extra/\)") as info:
        compute(cfg(data, out, tiny_llama_dir, max_length=32, overwrite=True))
    assert "\n" not in str(info.value)
    assert (out / "NOTES.md").read_text() == "my notes" and (out / "extra").is_dir()
    (out / "NOTES.md").unlink()
    (out / "extra").rmdir()
    run = compute(cfg(data, out, tiny_llama_dir, max_length=32, overwrite=True))  # now only gradspec's files
    assert run.manifest["config"]["max_length"] == 32 and run.manifest["counts"]["total"] == 4


# One writer per run folder ------------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_on_one_out_one_refuses_and_nothing_is_written_twice(
    tmp_path: Path, tiny_llama_dir: Path
) -> None:
    data = write_json(tmp_path / "d.json", [{"instruction": f"Q{i}", "output": "word " * 40} for i in range(40)])
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    cmd = [sys.executable, "-m", "gradspec", "compute", str(data), "--out", str(out), "--model", str(tiny_llama_dir)]
    cmd += ["--template", "plain", "--max-length", "64", "--device", "cpu", "--no-progress", "--flush-every", "1"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in (0, 1)]
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "being written by another gradspec process" in refused and "Traceback" not in refused
    run = open_run(out)
    samples = run.df("samples")
    assert len(samples) == 40 and samples["sample_id"].is_unique and run.manifest["counts"]["total"] == 40
    assert verify(out) == []


def test_a_second_writer_in_one_process_is_refused_at_once(tmp_path: Path) -> None:
    from gradspec.store import RunFolder

    first = RunFolder.claim(tmp_path / "r")
    with pytest.raises(OutputError, match="being written by another gradspec process"):
        RunFolder.claim(tmp_path / "r")
    first.release()
    RunFolder.claim(tmp_path / "r").release()  # free again once the first lets go


# Text no tokenizer can take ------------------------------------------------------------------


def test_a_lone_surrogate_is_an_error_row_for_that_record_only(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text(json.dumps(GOOD)[:-1] + ', {"instruction": "hi", "output": "b \\ud800"}]')
    run = compute(cfg(data, tmp_path / "run", tiny_llama_dir))
    got = statuses(run)
    assert got == {0: "ok", 1: "ok", 2: "ok", 3: "ok", 4: "error"}
    reason = run.scalar("select reason from samples where index = 4")
    assert "field 'output' holds text that is not valid Unicode" in reason


# Nesting depth --------------------------------------------------------------------------------


def test_a_file_nested_ten_thousand_deep_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 10_000 + "]" * 10_000)
    with pytest.raises(DataFileError, match="nested too deeply") as info:
        load_dataset(deep)
    assert "\n" not in str(info.value)
    lines = tmp_path / "deep.jsonl"
    lines.write_text(json.dumps(GOOD[0]) + "\n" + "[" * 10_000 + "]" * 10_000 + "\n" + json.dumps(GOOD[1]) + "\n")
    items = load_dataset(lines).items
    assert [type(i).__name__ for i in items] == ["Record", "BadRecord", "Record"]
    assert "nested too deeply" in items[1].reason
    nested: object = "x"
    for _ in range(150):
        nested = [nested]
    within = write_json(tmp_path / "within.json", [GOOD[0], {**GOOD[1], "extra": nested}])
    bad = load_dataset(within).items[1]
    assert isinstance(bad, BadRecord) and "nested deeper than 100 levels" in bad.reason


def test_a_judge_reply_nested_five_thousand_deep_fails_that_record_only(tmp_path: Path) -> None:
    data = write_json(
        tmp_path / "d.json", [{"instruction": "ok question", "output": "a"}, {"instruction": "[DEEP]", "output": "b"}]
    )
    with judge_server() as (url, _):
        summary = score(ScoreConfig.of(
            data=data, out=tmp_path / "s.jsonl", metrics=("difficulty",), judge="openai:t", judge_base_url=url,
            judge_cache=tmp_path / "c.sqlite", judge_retries=0, judge_timeout=5, progress=False,
        ))  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert rows[0]["difficulty"] == 3 and rows[1]["difficulty"] is None
    assert "malformed reply (RecursionError)" in rows[1]["score_errors"]["difficulty"]
    assert summary["metrics"]["difficulty"]["failed"] == 1


# Text after a JSON document -----------------------------------------------------------------


def test_a_stray_bracket_after_a_json_list_is_an_error_naming_line_and_column(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text(json.dumps(GOOD, indent=2) + "\n]\n")
    lines = data.read_text().count("\n")
    with pytest.raises(DataFileError, match=rf"d.json:{lines}:1: unexpected text after the JSON list ends"):
        load_dataset(data)
    jsonl_in_json = tmp_path / "lines.json"  # objects one per line stay accepted in a .json file
    jsonl_in_json.write_text("\n".join(json.dumps(r) for r in GOOD) + "\n")
    assert len(load_dataset(jsonl_in_json).items) == 4


# Damaged parts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["samples", "layer_stats", "similarity"])
def test_a_truncated_part_is_skipped_by_readers_and_repaired_by_resume(
    tmp_path: Path, tiny_llama_dir: Path, table: str
) -> None:
    data = write_json(tmp_path / "d.json", GOOD)
    out = tmp_path / "run"
    reference = compute(cfg(data, tmp_path / "reference", tiny_llama_dir)).df("layer_stats")
    compute(cfg(data, out, tiny_llama_dir, flush_every=1, batch_tokens=16))
    part = sorted((out / table).glob("*.parquet"))[1]
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])  # a disk that lost the end

    shown = runner.invoke(app, ["show", str(out)])
    assert shown.exit_code == 0 and "1 damaged part(s) left out" in shown.output, shown.output
    assert open_run(out).scalar("select count(*) from samples") == 3  # the damaged part's sample is left out
    problems = verify(out)
    assert len(problems) == 1 and f"part {part.stem} does not read" in problems[0]
    other = compute(cfg(data, tmp_path / "other", tiny_llama_dir))
    compared = runner.invoke(app, ["compare", str(out), str(other.path), "-o", str(tmp_path / "cmp"), "--n-boot", "20"])
    assert compared.exit_code == 0 and "damaged part(s) left out" in compared.output, compared.output

    run = compute(cfg(data, out, tiny_llama_dir, flush_every=1, batch_tokens=16))  # resume repairs it
    assert (out / "quarantine" / table / part.name).exists() and not part.exists()
    assert verify(out) == []
    got = run.df("layer_stats").sort_values(["sample_id", "layer", "module"]).reset_index(drop=True)
    want = reference.sort_values(["sample_id", "layer", "module"]).reset_index(drop=True)
    assert len(got) == len(want) and (got["nuclear_norm"] - want["nuclear_norm"]).abs().max() < 1e-9


def test_verify_names_every_kind_of_problem(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", GOOD)
    out = tmp_path / "run"
    compute(cfg(data, out, tiny_llama_dir, flush_every=1, batch_tokens=16))
    ok = runner.invoke(app, ["verify", str(out)])
    assert ok.exit_code == 0 and "verified: 4 samples (4 ok, 0 skipped, 0 error)" in ok.output
    samples = sorted((out / "samples").glob("*.parquet"))
    (out / "samples" / samples[0].name.replace("part-r000", "part-r001")).write_bytes(samples[0].read_bytes())
    (out / "layer_stats" / "stray.csv").write_text("x")
    manifest = json.loads((out / "run.json").read_text())
    manifest["counts"]["ok"] = 9
    (out / "run.json").write_text(json.dumps(manifest))
    bad = runner.invoke(app, ["verify", str(out)])
    assert bad.exit_code == 1
    assert "has 2 rows in samples" in bad.output and "layer_stats/stray.csv: not written by gradspec" in bad.output
    assert "run.json counts 9 ok samples, the folder holds 5" in bad.output
    refused = runner.invoke(app, ["compare", str(out), str(out), "-o", str(tmp_path / "c"), "--labels", "a,b"])
    one_line_error(refused, "appear more than once", "gradspec verify")


# Tracebacks that became one line ---------------------------------------------------------------


def test_all_zero_gradients_do_not_break_the_summary(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", GOOD)
    args = ["compute", str(data), "--out", str(tmp_path / "r"), "--model", str(tiny_llama_dir), "--template", "plain"]
    result = runner.invoke(app, [*args, "--max-length", "2", "--truncation", "prompt_start", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "4 ok" in result.output and "mean effective rank undefined" in result.output


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"kind": "something-else"}'])
def test_a_corrupt_manifest_is_one_line_for_every_command(tmp_path: Path, tiny_llama_dir: Path, content: str) -> None:
    data = write_json(tmp_path / "d.json", GOOD)
    out = tmp_path / "r"
    compute(cfg(data, out, tiny_llama_dir))
    (out / "run.json").write_text(content)
    for args in (
        ["show", str(out)],
        ["verify", str(out)],
        ["compute", str(data), "-o", str(out), "--model", str(tiny_llama_dir)],
    ):
        result = runner.invoke(app, args)
        if args[0] == "verify":
            assert result.exit_code == 1 and "run.json" in result.output and "Traceback" not in result.output
        else:
            one_line_error(result, "run.json")
    assert (out / "samples").is_dir()  # nothing was deleted


def test_bad_out_paths_are_refused_before_the_model_loads(
    tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gradspec.computation.run as computation

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr(computation, "load", no_loading)
    data = write_json(tmp_path / "d.json", GOOD)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    cases = [
        ([str(a_file)], "is a file, not a folder"),
        ([str(a_file / "run")], "is a file, so nothing can be made under it"),
        ([str(link), "--overwrite"], "is a symbolic link"),
    ]
    for out, message in cases:
        one_line_error(runner.invoke(app, ["compute", str(data), "--model", str(tiny_llama_dir), "-o", *out]), message)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root may write anywhere
            result = runner.invoke(app, ["compute", str(data), "--model", str(tiny_llama_dir), "-o", str(locked / "r")])
            one_line_error(result, "is not writable")
    finally:
        locked.chmod(0o700)


def test_a_crafted_gguf_header_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 12)  # a version, then counts that lie
    result = runner.invoke(app, ["compute", str(tmp_path / "missing.json"), "-o", str(tmp_path / "r")])
    assert result.exit_code == 2  # the data file is checked first
    from gradspec.model import load_model

    with pytest.raises(ModelError, match="not a GGUF file gradspec can read") as info:
        load_model(str(fake), device="cpu")
    assert "\n" not in str(info.value)


# The rest -------------------------------------------------------------------------------------


def test_a_huge_record_is_cut_in_characters_and_keeps_the_exact_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradspec.data import Message, Record

    tok = byte_tokenizer()
    seen: list[int] = []  # the length of every text the tokenizer is handed
    tokenize_text = type(tok).__call__

    def spy(self, text, *args, **kwargs):  # noqa: ANN001, ANN202 (the tokenizer's own signature)
        seen.append(len(text) if isinstance(text, str) else 0)
        return tokenize_text(self, text, *args, **kwargs)

    words = " ".join(f"w{i}" for i in range(400_000))  # about 2.8 MB
    huge = Record(0, "h", (Message("user", "Say many words."),), words)
    long_prompt = Record(1, "p", (Message("user", words),), "short answer")
    for record, truncation in ((huge, "end"), (huge, "prompt_start"), (long_prompt, "prompt_start")):
        prompt = record.messages[0].content + "\n"
        full = tok(prompt + record.response)["input_ids"]  # the whole text, tokenised the slow way
        n_prompt = len(tok(prompt)["input_ids"])
        if truncation == "end":
            want = full[:64]
        else:  # the prompt's start is dropped, at least one prompt token is kept
            first = min(len(full) - 64, n_prompt - 1)
            want = full[first : first + 64]
        seen.clear()
        with monkeypatch.context() as m:
            m.setattr(type(tok), "__call__", spy)
            got = encode(record, tok, PromptConfig("plain", max_length=64, truncation=truncation))
        assert isinstance(got, Encoded) and got.truncated
        assert got.input_ids == want, (record.index, truncation)
        assert seen and max(seen) < 10_000, f"a {max(seen)}-character text was tokenised, not a cut"


def _judge(tmp_path: Path, url: str, prompts: list[str], **kw) -> list[dict]:
    data = write_json(tmp_path / "d.json", [{"instruction": p, "output": "x"} for p in prompts])
    score(ScoreConfig.of(
        data=data, out=tmp_path / "s.jsonl", metrics=("difficulty",), judge="openai:t", judge_base_url=url,
        judge_cache=tmp_path / "c.sqlite", judge_retries=0, progress=False, **kw,
    ))  # fmt: skip
    return [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]


def test_the_judge_timeout_is_a_deadline_for_the_whole_reply(tmp_path: Path) -> None:
    with judge_server() as (url, _):
        started = time.perf_counter()
        rows = _judge(tmp_path, url, ["[TRICKLE] slow one"], judge_timeout=1.0)
        seconds = time.perf_counter() - started
    assert rows[0]["difficulty"] is None and "no whole reply within 1 s" in rows[0]["score_errors"]["difficulty"]
    assert seconds < 8, f"{seconds:.1f} s: the trickling server held the request (its whole reply takes 15 s)"


def test_replies_are_stored_capped(tmp_path: Path) -> None:
    from gradspec.score.judge.parse import MAX_REPLY_CHARS

    with judge_server() as (url, _):
        rows = _judge(tmp_path, url, ["[HUGE] long one"], judge_timeout=20)
    assert rows[0]["difficulty"] == 3  # the rating on the first line still reads
    assert len(rows[0]["raw_diff"]) < MAX_REPLY_CHARS + 100 and "reply cut at" in rows[0]["raw_diff"]
    import sqlite3

    stored = sqlite3.connect(tmp_path / "c.sqlite").execute("select reply from replies").fetchall()
    assert all(len(r) < MAX_REPLY_CHARS + 100 for (r,) in stored)


def test_a_key_the_server_echoes_is_redacted_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-echo-this-secret-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with judge_server() as (url, _):
        records = [{"instruction": "[ECHOKEY] q", "output": "x"}, {"instruction": "q", "output": "x"}]
        data = write_json(tmp_path / "d.json", records)  # one parses, so the run succeeds with one failure
        args = ["score", str(data), "-o", str(tmp_path / "s.jsonl"), "--metrics", "difficulty", "--judge", "openai:t"]
        args += ["--judge-base-url", url, "--judge-cache", str(tmp_path / "c.sqlite"), "--no-progress"]
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = (tmp_path / "s.jsonl").read_text()
    assert "HTTP 400" in out and "[redacted]" in out and "1 failed" in result.output
    assert key not in out and key not in result.output and "echo-this-secret" not in out


def test_float16_gradients_that_underflow_are_an_error_not_a_zero(tmp_path: Path) -> None:
    model = tiny_model("llama")
    with torch.no_grad():
        model.lm_head.weight.mul_(1e-6)  # gradients of ~1e-8: zero in float16, fine in float32
    model.save_pretrained(tmp_path / "m", safe_serialization=True)
    byte_tokenizer().save_pretrained(tmp_path / "m")
    data = write_json(tmp_path / "d.json", GOOD)
    half = compute(cfg(data, tmp_path / "half", tmp_path / "m", dtype="float16"))
    assert set(statuses(half).values()) == {"error"} and len(half.df("layer_stats")) == 0
    assert "gradient underflow in float16" in half.scalar("select reason from samples limit 1")
    full = compute(cfg(data, tmp_path / "full", tmp_path / "m"))
    assert set(statuses(full).values()) == {"ok"}


def test_invalid_utf8_on_one_jsonl_line_is_an_error_row(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = tmp_path / "d.jsonl"
    lines = [json.dumps(r).encode() for r in GOOD]
    lines.insert(2, b'{"instruction": "bad \xff\xfe bytes", "output": "x"}')
    data.write_bytes(b"\n".join(lines) + b"\n")
    run = compute(cfg(data, tmp_path / "run", tiny_llama_dir))
    assert statuses(run) == {0: "ok", 1: "ok", 2: "error", 3: "ok", 4: "ok"}
    assert "d.jsonl:3: not valid UTF-8" in run.scalar("select reason from samples where index = 2")


def test_hostile_model_folder_is_still_refused(tmp_path: Path) -> None:
    """Pickle weights stay refused without being unpickled."""
    folder = save_tiny(tmp_path / "m")
    for f in folder.glob("*.safetensors"):
        f.unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")
    from gradspec.model import load_model

    with pytest.raises(ModelError, match="pickle files"):
        load_model(str(folder), device="cpu")
