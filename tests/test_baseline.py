"""``gradspec baseline``: a selection and random draws of its token budget, trained alike and read against
each other, from the command line, resumable, and readable by show and report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml
from click.testing import CliRunner

from gradspec.cli.main import app

from conftest import write_json

runner = CliRunner()
WORDS = ["cat", "dog", "sun", "sea", "owl", "elk", "fox", "bee", "ant", "cow", "pig", "hen"]


def test_a_selection_is_read_against_random_draws_of_its_budget(tmp_path: Path, tiny_llama_dir: Path) -> None:
    pool = [
        {"instruction": f"Repeat the word {w}.", "output": " ".join([w] * (1 + i % 5))} for i, w in enumerate(WORDS)
    ]
    data = write_json(tmp_path / "pool.json", pool)
    held = write_json(tmp_path / "held.json", [{"instruction": "Repeat the word yak.", "output": "yak yak"}] * 3)
    model = ["--model", str(tiny_llama_dir), "--device", "cpu"]
    scored = tmp_path / "scored.jsonl"
    done = runner.invoke(app, ["score", str(data), "--metrics", "length", "-o", str(scored), "--template", "plain",
                               "--no-progress", *model])  # fmt: skip
    assert done.exit_code == 0, done.output
    picked = runner.invoke(app, ["select", str(scored), "--by", "n_response_tokens", "--top", "30 tokens",
                                 "--max-length", "64", "-o", str(tmp_path / "sel"), "--name", "longest"])  # fmt: skip
    assert picked.exit_code == 0, picked.output
    selection = tmp_path / "sel" / "longest_highest_30tokens.json"
    chosen = json.loads(selection.read_text())
    budget = sum(r["n_response_tokens"] for r in chosen)  # short records: every token fits in 64
    out = tmp_path / "base"
    args = ["baseline", str(selection), "--pool", str(scored), "--draws", "3", "-o", str(out), "--template", "plain",
            "--max-length", "64", "--optimizer-steps", "2", "--learning-rate", "1e-3", "--eval-instruction", str(held),
            "--eval-limit", "3", "--method", "longest", "--no-progress", *model]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    plan = yaml.safe_load((out / "baseline.yaml").read_text())
    assert plan["selections"][0]["top"] == f"{budget} tokens" and plan["grid"]["draw"] == [0, 1, 2]
    for draw in range(3):  # each draw holds at most the selection's budget, from the pool
        drawn = json.loads(next((out / "selections" / f"random-{draw}").glob("*_random_*.json")).read_text())
        assert 0 < sum(r["n_response_tokens"] for r in drawn) <= budget
    table = pd.read_csv(out / "trainings" / "summary" / "selection_results.csv")
    row = table[table.method == "longest"].iloc[0]
    assert row.seeds == 1 and 0 <= row.percentile <= 1 and not pd.isna(row.draws_sd)
    assert table[table.method == "random"].seeds.iloc[0] == 3
    assert "training longest: response_loss on held" in result.output and "of the draws" in result.output
    again = runner.invoke(app, args)  # resumes: nothing is trained twice
    assert again.exit_code == 0 and "0 stages run" in again.output, again.output
    shown = runner.invoke(app, ["show", str(out)])
    assert shown.exit_code == 0 and "experiment" in shown.output, shown.output
    no_lengths = runner.invoke(app, [*args[:2], "--pool", str(data), *args[4:]])
    assert no_lengths.exit_code == 2 and "pool.json: no record has n_response_tokens" in no_lengths.output
