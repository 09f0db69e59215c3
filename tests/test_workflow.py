"""A curator's workflow ends in a decision: scores written back and resumed, selections that
take shares and ranges, comparisons and correlations that warn, reports that say what they
found, and a command line with one style."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from gradspec import ComputeConfig, PromptConfig, compute
from gradspec.analysis.findings import counted, sentences
from gradspec.analysis.length import ONE_WINDOW
from gradspec.cli.main import app
from gradspec.errors import ConfigError, OutputError
from gradspec.score import SCORERS, ScoreConfig, score

from conftest import write_json

runner = CliRunner()
WORDS = ["a", "b", "c", "d", "e", "f"]
RECORDS = [{"instruction": f"Say {w} {i} times.", "output": " ".join([w] * (3 + i))} for i, w in enumerate(WORDS)]


def run_of(tmp: Path, name: str, records: list[dict], model: Path, **options) -> Path:
    data = write_json(tmp / f"{name}.json", records)
    prompt = PromptConfig(options.pop("template", "plain"), max_length=options.pop("max_length", 64))
    compute(ComputeConfig.of(data=data, out=tmp / name, model=str(model), prompt=prompt, device="cpu", progress=False,
                             **options))  # fmt: skip
    return tmp / name


def test_score_writes_gradient_columns_and_resumes(
    tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_json(tmp_path / "pool.json", [*RECORDS, {"instruction": "no answer"}])
    out = tmp_path / "scored.jsonl"
    cfg = ScoreConfig.of(data=data, out=out, metrics=("length", "gradient", "grad_quality"), model=str(tiny_llama_dir),
                         template="plain", max_length=64, progress=False)  # fmt: skip
    summary = score(cfg)
    (reason,) = summary["metrics"]["grad_quality"]["reasons"]  # the real record, one "record" prefix
    assert reason.startswith("pool.json: record 6: no known layout") and reason.count("record") == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(isinstance(r["grad_quality"], float) and r["nuclear_norm"] > 0 for r in rows[:6])
    assert {"erank_z_q", "nuclear_z_q", "grad_quality_rank", "grad_quality_norm"} <= set(rows[0])
    assert rows[6]["grad_quality"] is None and "output" in rows[6]["score_errors"]["grad_quality"]
    assert (tmp_path / "scored.run" / "run.json").exists()  # the run it computed, beside the output
    # Again: every metric is read back, none computed.
    calls: list[str] = []
    for name, metric in list(SCORERS.items()):
        monkeypatch.setitem(SCORERS, name, replace(metric, score=lambda ctx, records, n=name: calls.append(n) or {}))
    score(cfg)
    assert calls == []
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows
    with pytest.raises(ConfigError, match="scored with other options.*max_length: run has 64, this command has 32"):
        score(ScoreConfig.of(data=data, out=out, metrics=("length",), model=str(tiny_llama_dir), template="plain",
                             max_length=32, progress=False))  # fmt: skip
    (tmp_path / "other.jsonl").write_text("{}\n")
    with pytest.raises(OutputError, match="exists and was not written by a score that can resume"):
        score(ScoreConfig.of(data=data, out=tmp_path / "other.jsonl", metrics=("length",), model=str(tiny_llama_dir)))


def test_compare_warns_about_small_groups_and_mismatched_settings(tmp_path: Path, tiny_llama_dir: Path) -> None:
    a = run_of(tmp_path, "a", RECORDS[:3], tiny_llama_dir)
    b = run_of(tmp_path, "b", RECORDS[3:], tiny_llama_dir, template="chat", max_length=96)
    result = runner.invoke(app, ["compare", str(a), str(b), "-o", str(tmp_path / "cmp"), "--n-boot", "20", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output[result.output.index("{") :])
    warnings = " | ".join(document["warnings"])
    assert "small group: a has 3 ok samples" in warnings
    assert "different template (a: plain; b: chat)" in warnings and "different max_length (a: 64; b: 96)" in warnings
    assert document["findings"] and document["headline"] and "q_value" in document["headline"][0]
    one = run_of(tmp_path, "one", RECORDS[:1], tiny_llama_dir)
    refused = runner.invoke(app, ["compare", str(one), str(a), "-o", str(tmp_path / "c2")])
    assert refused.exit_code == 2 and "one ok sample only" in refused.output


def test_a_length_clause_counts_the_significant_modules_and_one_token_is_singular() -> None:
    """Three of four modules differ and the length verdict holds in those three: the clause must not read
    'all three modules' beside '3 of 4 modules'; a one-token window reads '1 response token each'."""
    rows = []
    for module, q in (("q", 0.01), ("k", 0.01), ("v", 0.01), ("o", 0.5)):
        rows.append({"a": "low", "b": "high", "metric": "nuclear_norm", "module": module, "mean_a": 1.0,
                     "mean_b": 0.8, "diff": -0.2, "design_diff": -0.2, "q_value": q, "n_a": 12, "n_b": 12,
                     "design": ONE_WINDOW, "length_control": "equal length by design: holds"})  # fmt: skip
    groups = [{"label": "low", "response_tokens": 1}, {"label": "high", "response_tokens": 1}]
    (nuclear,) = sentences(pd.DataFrame(rows), {"groups": groups}, metrics=("nuclear_norm",))
    assert "(q=0.01, 3 of 4 modules)" in nuclear
    assert "against natural lengths it holds (all 3 significant modules)" in nuclear
    assert "(1 response token each; 12 and 12 samples)" in nuclear
    assert (counted(1, "token"), counted(3, "token")) == ("1 token", "3 tokens")


def test_findings_say_what_differs_how_much_and_what_length_does() -> None:
    rows = []
    for module in ("q", "k", "v", "o"):
        rows.append({"a": "low", "b": "high", "metric": "nuclear_norm", "module": module, "mean_a": 1.0, "mean_b": 0.73,
                     "diff": -0.27, "q_value": 0.004, "design": "natural length", "n_a": 12, "n_b": 12,
                     "length_control": "length control not possible: the groups' lengths barely overlap"})  # fmt: skip
        rows.append({"a": "low", "b": "high", "metric": "effective_rank", "module": module, "mean_a": 10.0,
                     "mean_b": 10.1, "diff": 0.1, "q_value": 0.6, "design": "natural length", "n_a": 12, "n_b": 12,
                     "length_control": "no difference"})  # fmt: skip
    groups = [{"label": "low", "median_response_tokens": 115}, {"label": "high", "median_response_tokens": 310}]
    manifest = {"groups": groups}
    nuclear, rank = sentences(pd.DataFrame(rows), manifest)
    assert nuclear.startswith("high has 27% lower nuclear norms than low (q=0.004, all four modules)")
    assert "but high's responses are 2.7x as long as low's (median 310 vs 115 tokens)" in nuclear
    assert "length cannot be held fixed here" in nuclear
    assert rank.startswith(
        "high and low show no significant difference in effective ranks at their natural lengths (smallest q=0.6)"
    )


def test_correlate_adjusts_for_many_tests_and_warns_at_small_n(tmp_path: Path, tiny_llama_dir: Path) -> None:
    scored = write_json(tmp_path / "scored.json", [{**r, "reward": float(i)} for i, r in enumerate(RECORDS)])
    run = run_of(tmp_path, "run", json.loads(scored.read_text()), tiny_llama_dir)
    result = runner.invoke(app, ["correlate", str(run), "--scored", str(scored), "-o", str(tmp_path / "corr")])
    assert result.exit_code == 0 and "q_value" in result.output and "only 6 samples joined" in result.output
    table = pd.read_csv(tmp_path / "corr" / "correlations.csv")
    assert (table["q_value"] >= table["p"] - 1e-12).all() and set(table["quality"]) == {"reward"}


def test_compute_warns_and_counts_what_needs_a_second_look(tmp_path: Path, tiny_llama_dir: Path) -> None:
    records = [*RECORDS, {"instruction": "x" * 300, "output": "long prompt"}, {"instruction": "y"}]
    run = run_of(tmp_path, "run", records, tiny_llama_dir)
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["checks"]["short_response"] == 2  # "a a a" and "b b b b": 5 and 7 byte tokens
    assert any("2 of 8 samples (25%) were not computed" in w for w in manifest["checks"]["warnings"])
    assert manifest["prompt"]["layout"] == "{instruction}\n{response}"
    assert manifest["prompt"]["injected_system_prompt"] is None


def test_inspect_shows_the_template_and_the_loss_boundary(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", RECORDS)
    result = runner.invoke(app, ["inspect", str(data), "--model", str(tiny_llama_dir), "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["template"] == "chat" and len(report["records"]) == 2
    first = report["records"][0]
    assert first["prompt"].endswith("<|assistant|>\n") and first["response"] == "a a a"
    text = runner.invoke(app, ["inspect", str(data), "--model", str(tiny_llama_dir), "--template", "plain"]).output
    assert "--- response (loss on these tokens) ---" in text and "record 2" in text


def test_a_chat_template_that_injects_a_system_prompt_is_named(tmp_path: Path) -> None:
    from gradspec.prompting.templates import injected_system_prompt

    from conftest import byte_tokenizer

    tok = byte_tokenizer()
    tok.chat_template = (
        "{% if messages[0]['role'] != 'system' %}<|system|>\nYou are Bob.</s>\n{% endif %}"
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    assert injected_system_prompt(tok, PromptConfig("chat")) == "You are Bob."
    assert injected_system_prompt(tok, PromptConfig("chat", system_prompt="Be brief.")) is None
    assert injected_system_prompt(tok, PromptConfig("plain")) is None


def test_one_cli_style_version_debug_anywhere_and_json(tmp_path: Path, tiny_llama_dir: Path) -> None:
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("gradspec ")
    usage = runner.invoke(app, ["compute", str(tmp_path / "d.json")])  # --out missing
    assert usage.exit_code == 2 and usage.output.strip().startswith("gradspec: error:")
    assert len(usage.output.strip().splitlines()) == 1
    missing = runner.invoke(app, ["show", str(tmp_path / "nope"), "--debug"])  # --debug after the verb
    assert missing.exit_code != 0 and isinstance(missing.exception, Exception)
    assert "no such file or folder" in str(missing.exception)
    run = run_of(tmp_path, "run", RECORDS, tiny_llama_dir)
    shown = json.loads(runner.invoke(app, ["show", str(run), "--json"]).output)
    assert shown["counts"]["ok"] == 6 and {m["module"] for m in shown["means"]} == {"q", "k", "v", "o"}
    for command in ("compute", "score", "select", "compare", "train", "explore"):
        help_text = runner.invoke(app, [command, "--help"]).output
        assert "[default:" in help_text and not re.search(r" \.(\s|$)", help_text)  # no dropped default


def test_no_progress_silences_the_weight_loading_bar(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", RECORDS)
    args = ["compute", str(data), "-o", str(tmp_path / "r"), "--model", str(tiny_llama_dir), "--device", "cpu"]
    quiet = runner.invoke(app, [*args, "--no-progress"])
    assert quiet.exit_code == 0 and "Loading weights" not in quiet.output and "gradients" not in quiet.output


def test_hub_dataset_ids_go_through_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    from gradspec.data import load_dataset
    from gradspec.errors import DataFileError

    asked: list[tuple[str, str]] = []

    def fake_load(name: str, split: str) -> object:
        asked.append((name, split))
        if name == "nobody/missing":
            raise ConnectionError("the hub is not reachable")
        return datasets.Dataset.from_list(RECORDS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    loaded = load_dataset("tatsu-lab/alpaca")
    assert len(loaded.items) == 6 and asked == [("tatsu-lab/alpaca", "train")] and len(loaded.sha256) == 64
    assert len(load_dataset("tatsu-lab/alpaca:test").items) == 6 and asked[-1] == ("tatsu-lab/alpaca", "test")
    with pytest.raises(DataFileError, match="could not be loaded as a hub dataset.*ConnectionError") as info:
        load_dataset("nobody/missing")
    assert "\n" not in str(info.value)


def test_findings_at_equal_length_name_the_design_once() -> None:
    def rows(design: str, q: float, control: str) -> list[dict]:
        return [{"a": "low", "b": "high", "metric": "nuclear_norm", "module": m, "mean_a": 1.0, "mean_b": 0.6,
                 "diff": -0.4, "design_diff": -0.37, "q_value": q, "design": design, "n_a": 4, "n_b": 12,
                 "length_control": control} for m in ("q", "k", "v", "o")]  # fmt: skip

    groups = {"groups": [{"label": "low", "response_tokens": 32}, {"label": "high", "response_tokens": 32}]}
    (window,) = sentences(pd.DataFrame(rows("equal length: one window", 0.4, "x")), groups, ("nuclear_norm",))
    assert window == (
        "high and low show no significant difference in nuclear norms (smallest q=0.4), at equal length by design "
        "(32 response tokens each; 4 and 12 samples)."
    )
    # With the equivalence columns, a non-difference is either equivalence or inconclusive, said so.
    read = [{**r, "sesoi": 0.1, "equivalent": m != "o"} for r, m in zip(rows("equal length: one window", 0.4, "x"),
                                                                       "qkvo")]  # fmt: skip
    (unsure,) = sentences(pd.DataFrame(read), groups, ("nuclear_norm",))
    assert (
        "but that is inconclusive, not equivalence: the 90% intervals reach beyond ±10% of low's mean in 1 of" in unsure
    )
    (same,) = sentences(pd.DataFrame([{**r, "equivalent": True} for r in read]), groups, ("nuclear_norm",))
    assert same.startswith("high and low are equivalent in nuclear norms: the 90% interval of every module's")
    control = "equal length by design: holds"
    (pairs,) = sentences(pd.DataFrame(rows("equal length: matched pairs", 0.01, control)), {}, ("nuclear_norm",))
    assert pairs.startswith("high has 37% lower nuclear norms than low (q=0.01, all four modules), at equal length")
    assert "(4 pairs of the same response length)" in pairs and pairs.count("equal length") == 1


def test_correlate_relates_the_scores_to_each_other(tmp_path: Path, tiny_llama_dir: Path) -> None:
    recs = [{**r, "reward": float(i), "ifd": 1.0 / (i + 1), "instag": i % 2} for i, r in enumerate(RECORDS)]
    scored = write_json(tmp_path / "scored.json", recs)
    run = run_of(tmp_path, "run", recs, tiny_llama_dir)
    args = ["correlate", str(run), "--scored", str(scored), "-o", str(tmp_path / "corr"), "--scores"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "the scores against each other" in result.output, result.output
    pairs = pd.read_csv(tmp_path / "corr" / "score_correlations.csv").set_index(["a", "b"])
    assert pairs.loc[("ifd", "reward"), "rho"] == pytest.approx(-1.0) and pairs.loc[("ifd", "reward"), "n"] == 6
    assert set(pairs.index) == {("ifd", "reward"), ("ifd", "instag"), ("reward", "instag")}
