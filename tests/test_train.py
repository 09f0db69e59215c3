"""``gradspec train``: a tiny model fine-tuned for a few steps, its loss, its seed, and the held-out
measures against a direct computation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from gradspec.config.fields import flatten
from gradspec.config.train import TrainConfig
from gradspec.data import Message, Record
from gradspec.errors import ConfigError
from gradspec.model import load_model
from gradspec.prompting import Encoded, PromptConfig, encode
from gradspec.train import train
from gradspec.train.evaluate import choices, pair_measures, reasoning
from gradspec.train.examples import IGNORE, collate, labels_of

from conftest import write_json
from helpers import RefusingTokenizer

TRAIN = [{"instruction": f"Repeat the word {w}.", "output": f"{w} {w} {w}"} for w in ("cat", "dog", "sun", "sea")] * 2
HELD_OUT = [{"instruction": f"Repeat the word {w}.", "output": f"{w} {w} {w}"} for w in ("owl", "elk")]
PROBLEMS = [
    {"instruction": "Pick one.\\nOptions:\\n(A) red\\n(B) blue", "output": "(B)"},
    {"instruction": "Which?\\nOptions:\\n- a tree\\n- a rock\\n- a cloud", "output": "a rock"},
    {"instruction": "Is the sky green?", "output": "no"},
    {"instruction": "What is 2 + 3?", "output": "5"},
]


def config(tmp: Path, model: Path, **recipe) -> TrainConfig:
    tmp.mkdir(parents=True, exist_ok=True)
    data = write_json(tmp / "selection.json", TRAIN)
    held = write_json(tmp / "held_out.json", HELD_OUT)
    tasks = write_json(tmp / "tasks_no_cot.json", PROBLEMS)
    recipe = {"epochs": 3, "learning_rate": 5e-3, "batch_size": 4, "warmup_ratio": 0.0, **recipe}
    return TrainConfig.of(
        data=data, out=tmp / "out", model=str(model), device="cpu", template="plain", max_length=64,
        eval_instruction=(held,), eval_reasoning=(tasks,), progress=False, **recipe,
    )  # fmt: skip


def test_training_lowers_the_loss_and_the_same_seed_gives_the_same_numbers(
    tmp_path: Path, tiny_llama_dir: Path
) -> None:
    first = train(config(tmp_path / "a", tiny_llama_dir))
    losses = [s["loss"] for s in first["losses"]]
    assert first["steps"] == 6 and len(losses) == 6
    assert sum(losses[-2:]) < sum(losses[:2])  # it learns
    again = train(config(tmp_path / "b", tiny_llama_dir))
    # The same seed in the same process runs the same kernels on the same shapes: bit for bit.
    assert [s["loss"] for s in again["losses"]] == losses
    assert [r["value"] for r in again["results"]] == [r["value"] for r in first["results"]]
    other = train(config(tmp_path / "c", tiny_llama_dir, seed=1))
    assert [s["loss"] for s in other["losses"]] != losses  # the seed changes the training order
    stored = json.loads((tmp_path / "a/out/train.json").read_text())
    assert stored["recipe"]["learning_rate"] == 5e-3 and stored["selection"]["trained_on"] == 8
    assert stored["selection"]["sha256"] and stored["model"]["architecture"] == "LlamaForCausalLM"
    assert len(pd.read_csv(tmp_path / "a/out/loss_curve.csv")) == 6 and not (tmp_path / "a/out/model").exists()


def test_lora_adapters_learn(tmp_path: Path, tiny_llama_dir: Path) -> None:
    pytest.importorskip("peft")  # the train extra (pip install 'gradspec[train]'); the test extra has it
    result = train(config(tmp_path, tiny_llama_dir, lora=True, learning_rate=5e-2))
    losses = [s["loss"] for s in result["losses"]]
    assert sum(losses[-2:]) < sum(losses[:2])
    assert result["recipe"]["lora"] is True and not (tmp_path / "out" / "model").exists()


def test_the_loss_is_taken_on_response_tokens_only(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """One batch of everything, learning rate 0: the first step's loss is the mean cross entropy
    over the response tokens of every record, computed directly."""
    result = train(config(tmp_path, tiny_llama_dir, epochs=1, batch_size=len(TRAIN), learning_rate=0.0))
    loaded = load_model(str(tiny_llama_dir), device="cpu")
    total, count = 0.0, 0
    for r in TRAIN:
        prompt = r["instruction"] + "\n"
        ids = loaded.tokenizer(prompt + r["output"])["input_ids"]
        n_prompt = len(loaded.tokenizer(prompt)["input_ids"])
        logits = loaded.model(input_ids=torch.tensor([ids])).logits[0]
        nll = F.cross_entropy(logits[n_prompt - 1 : -1], torch.tensor(ids[n_prompt:]), reduction="sum")
        total, count = total + float(nll), count + len(ids) - n_prompt
    assert result["losses"][0]["loss"] == pytest.approx(total / count, rel=1e-4)
    record = Record(0, "x", (Message("user", "Say it."),), "it")
    enc = encode(record, loaded.tokenizer, PromptConfig("plain"))
    assert labels_of(enc) == [IGNORE] * enc.n_prompt_tokens + enc.input_ids[enc.n_prompt_tokens :]
    batch = collate([{"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7]}, {"input_ids": [5], "labels": [IGNORE]}], 0)
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [IGNORE, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_held_out_measures_equal_a_direct_computation(tmp_path: Path, tiny_llama_dir: Path) -> None:
    result = train(config(tmp_path, tiny_llama_dir, epochs=0))  # the model as it is
    loaded = load_model(str(tiny_llama_dir), device="cpu")
    tok, model = loaded.tokenizer, loaded.model

    def nll(prompt: str, answer: str) -> tuple[float, int]:
        ids = tok(prompt + answer)["input_ids"]
        n = len(tok(prompt)["input_ids"])
        logits = model(input_ids=torch.tensor([ids])).logits[0]
        return float(F.cross_entropy(logits[n - 1 : -1], torch.tensor(ids[n:]), reduction="sum")), len(ids) - n

    losses = [nll(r["instruction"] + "\n", r["output"]) for r in HELD_OUT]
    want_loss = sum(s / n for s, n in losses) / len(losses)
    got = {(r["set"], r["measure"]): r for r in result["results"]}
    assert got[("held_out", "response_loss")]["value"] == pytest.approx(want_loss, rel=1e-5)
    correct = []
    for p in PROBLEMS[:3]:
        options = choices(p["instruction"], p["output"])
        scores = [-nll(p["instruction"] + "\n", o)[0] for o in options]
        correct.append(options[scores.index(max(scores))] == p["output"])
    assert got[("tasks_no_cot", "accuracy")]["value"] == pytest.approx(sum(correct) / 3)
    assert got[("tasks_no_cot", "accuracy")]["n"] == 3
    s, n = nll(PROBLEMS[3]["instruction"] + "\n", "5")
    assert got[("tasks_no_cot", "answer_loss")]["value"] == pytest.approx(s / n, rel=1e-5)
    assert result["steps"] == 0 and result["losses"] == []


def test_choices_come_from_the_problem_text() -> None:
    assert choices("Q\\nOptions:\\n(A) 22\\n(B) 27", "(B)") == ["(A)", "(B)"]
    assert choices("Q?\\nOptions:\\n- bleeding\\n- have fun", "have fun") == ["bleeding", "have fun"]
    assert choices('Q\\nOptions:\\n- Sentence A: "x"\\n- Sentence B: "y"', "Sentence B") == ["Sentence A", "Sentence B"]
    assert choices("Is it?", "yes") == ["yes", "no"] and choices("How many?", "20") is None


def test_a_problem_is_scored_only_when_every_choice_is_measured(tiny_llama_dir: Path) -> None:
    """A choice cut by max_length (summed over fewer tokens, so favoured) or one the tokenizer refuses
    would decide the problem by default: that problem is counted as skipped, the rest are scored as alone."""
    loaded = load_model(str(tiny_llama_dir), device="cpu")
    tok = RefusingTokenizer(loaded.tokenizer)
    prompt = PromptConfig("plain", max_length=64)
    problems = [
        Record(0, "fine", (Message("user", "Pick one.\\nOptions:\\n(A) red\\n(B) blue"),), "(B)"),
        Record(1, "long", (Message("user", "Which?\\nOptions:\\n- a\\n- " + "b" * 20),), "a"),
        Record(2, "nul", (Message("user", "Which?\\nOptions:\\n- x\\n- y\x00"),), "x"),
        Record(3, "yes", (Message("user", "Is the sky green?"),), "no"),
        Record(4, "sum", (Message("user", "What is 2 + 3?"),), "5"),
        Record(5, "bad sum", (Message("user", "What is \x00?"),), "5"),
    ]
    accuracy, answers = reasoning(loaded.model, tok, problems, prompt, 256, "tasks")
    assert sorted(accuracy.items) == [0, 3] and accuracy.skipped == 2
    (alone,) = reasoning(loaded.model, tok, [problems[0], problems[3]], prompt, 256, "tasks")  # no answer loss
    assert alone.items == accuracy.items
    assert list(answers.items) == [4] and answers.skipped == 1


def test_held_out_data_the_selection_could_have_seen_is_refused(tmp_path: Path, tiny_llama_dir: Path) -> None:
    cfg = config(tmp_path, tiny_llama_dir)
    write_json(Path(cfg.evaluation.eval_instruction[0]), [*HELD_OUT, TRAIN[0]])
    with pytest.raises(ConfigError, match="also in the training selection"):
        train(cfg)
    assert not (tmp_path / "out").exists()


def fake_training(folder: Path, values: list[float], tokens: float) -> Path:
    """A finished training folder as `gradspec train` writes it, with chosen held-out item values."""
    folder.mkdir(parents=True)
    (folder / "train.json").write_text(json.dumps({"selection": {"mean_response_tokens": tokens}}))
    items = pd.DataFrame({"set": "held", "measure": "response_loss", "item": range(len(values)), "value": values})
    items.to_csv(folder / "eval_items.csv", index=False)
    return folder


def test_selection_summary_finds_the_better_method_and_adjusts_for_many(tmp_path: Path) -> None:
    from gradspec.train.results import Training, findings, summarize

    rng = np.random.default_rng(0)
    base = rng.uniform(1.0, 2.0, 40)
    trainings = []
    # A fine-tune's seed moves every item together: seed shifts of -0.02, 0, +0.02 for every method but
    # "lucky", whose seeds happened to land at -0.03, -0.01, +0.01 (a mean 0.01 below random's, seed noise).
    # Random is drawn twelve times, its draws spread as widely as the seeds.
    for seed, shift in enumerate(np.linspace(-0.025, 0.025, 12)):
        wide = shift + rng.normal(0, 0.01, 40)
        trainings.append(Training("random", seed, fake_training(tmp_path / f"r{seed}", list(base + wide), 50)))
    for seed, shift in enumerate((-0.02, 0.0, 0.02)):
        noise = lambda shift=shift: shift + rng.normal(0, 0.01, 40)  # noqa: E731
        trainings.append(Training("good", seed, fake_training(tmp_path / f"g{seed}", list(base - 0.1 + noise()), 90)))
        lucky = base - 0.01 + noise()
        trainings.append(Training("lucky", seed, fake_training(tmp_path / f"l{seed}", list(lucky), 70)))
        for k in range(6):  # six methods no different from random
            folder = fake_training(tmp_path / f"n{k}-{seed}", list(base + noise()), 60 + k)
            trainings.append(Training(f"null{k}", seed, folder))
    rows = pd.DataFrame(summarize(trainings, "random", tmp_path / "summary", n_boot=200)["rows"])
    assert rows["method"].iloc[0] == "good" and rows["mean"].is_monotonic_increasing  # best (lowest loss) first
    assert pd.read_csv(tmp_path / "summary" / "selection_results.csv")["method"].tolist() == rows["method"].tolist()
    rows = rows.set_index("method")
    assert rows.loc["good", "verdict"] == "better than random"
    # Every item agrees that lucky is lower, but another seed would not: no finding.
    assert rows.loc["lucky", "q_items"] < 0.05 and rows.loc["lucky", "q_seeds"] > 0.05
    assert rows.loc["lucky", "verdict"] == "no different from random"
    assert rows.loc["good", "diff_vs_random"] == pytest.approx(-0.1, abs=0.01)
    # Read against the draws: good beats all twelve, lucky is inside their spread.
    assert rows.loc["good", "percentile"] == 1.0 and 0.3 < rows.loc["lucky", "percentile"] < 1.0
    assert rows.loc["good", "draws_sd"] == pytest.approx(np.linspace(-0.025, 0.025, 12).std(ddof=1), abs=0.004)
    assert -0.11 < rows.loc["good", "diff_ci_low"] < rows.loc["good", "diff_ci_high"] < -0.09
    nulls = rows.drop(index=["good", "random", "lucky"])
    assert (nulls["q_items"] >= nulls["p_items"] - 1e-12).all()
    assert (nulls["verdict"] == "no different from random").sum() >= 5
    assert pd.isna(rows.loc["random", "verdict"]) and rows.loc["good", "selection_tokens"] == 90
    assert (tmp_path / "summary" / "selection_vs_length_held_response_loss.png").exists()
    # The report's sentence names the better method with its difference and the tokens it trains on.
    (said,) = findings(rows.reset_index())
    assert said.startswith("response loss on held, against random (50 tokens a record): better: good (-0.099")
    assert "better than 100% of the draws; 90 tokens a record)" in said and "lucky" not in said
    # At a token budget the tokens trained on in all are said too (equal for every method).
    (budgeted,) = findings(rows.reset_index().assign(tokens_trained=2500.0))
    assert "(50 tokens a record, 2500 in all)" in budgeted and "90 tokens a record, 2500 in all)" in budgeted
    no_different = int((rows["verdict"] == "no different from random").sum())
    assert said.endswith(f"worse: none; no different: {no_different} method{'' if no_different == 1 else 's'}.")
    null = nulls.index[nulls["verdict"] == "no different from random"][0]
    (one,) = findings(rows.loc[["random", "good", null]].reset_index())
    assert one.endswith("worse: none; no different: 1 method."), one


def test_the_results_table_ranks_each_measure_best_first() -> None:
    from gradspec.train.results import best_first

    table = pd.DataFrame({
        "method": ["a", "b", "c", "a", "b", "c"], "set": "held",
        "measure": ["response_loss"] * 3 + ["accuracy"] * 3, "mean": [2.0, 1.0, 3.0, 0.5, 0.7, 0.6],
    })  # fmt: skip
    ranked = best_first(table)
    by_measure = ranked.groupby("measure", sort=True)["method"].agg(list).to_dict()
    assert by_measure == {"accuracy": ["b", "c", "a"], "response_loss": ["b", "a", "c"]}  # higher / lower is better
    assert ranked["measure"].tolist() == ["accuracy"] * 3 + ["response_loss"] * 3


def test_optimizer_steps_share_tokens_evenly_and_the_curve_is_measured(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from gradspec.train.examples import token_steps

    lengths = [5, 40, 12, 30, 7, 22, 18, 9, 35, 14]
    samples = [
        Encoded(f"s{i}", i, list(range(n + 2)), [False, False] + [True] * n, 2, False) for i, n in enumerate(lengths)
    ]
    runs = token_steps(samples, 4, seed=3)
    assert sorted(s.index for r in runs for s in r) == list(range(10))  # every sample once
    tokens = [sum(s.n_response_tokens for s in r) for r in runs]
    assert len(runs) == 4 and max(tokens) - min(tokens) <= max(lengths)  # equal shares, up to one sample
    assert [[s.index for s in r] for r in token_steps(samples, 4, seed=3)] == [[s.index for s in r] for r in runs]
    result = train(config(tmp_path / "a", tiny_llama_dir, optimizer_steps=3, eval_at=(1, 2), eval_response_tokens=2))
    assert result["steps"] == 3 and len(result["losses"]) == 3
    assert result["tokens_trained"] == sum(len(r["output"]) for r in TRAIN)  # one pass, every response byte
    curve = pd.read_csv(tmp_path / "a/out/curve.csv")
    assert sorted(curve["step"].unique()) == [1, 2, 3]
    assert set(curve[curve.step < 3].measure) == {"response_loss"}  # the curve between: held-out loss only
    assert set(curve[curve.step == 3].measure) == {"response_loss", "accuracy", "answer_loss"}
    final = curve[(curve["step"] == 3) & (curve["measure"] == "response_loss")]["value"].item()
    got = {(r["set"], r["measure"]): r["value"] for r in result["results"]}
    assert final == got[("held_out", "response_loss")]
    # The held-out loss is over the first 2 response tokens only: the same as a direct computation.
    base = train(config(tmp_path / "b", tiny_llama_dir, epochs=0, optimizer_steps=3, eval_response_tokens=2))
    assert base["tokens_trained"] == 0 and base["steps"] == 0
    loaded = load_model(str(tiny_llama_dir), device="cpu")
    want = []
    for r in HELD_OUT:
        prompt_ids = loaded.tokenizer(r["instruction"] + "\n")["input_ids"]
        ids = loaded.tokenizer(r["instruction"] + "\n" + r["output"])["input_ids"][: len(prompt_ids) + 2]
        logits = loaded.model(input_ids=torch.tensor([ids])).logits[0]
        n = len(prompt_ids)
        want.append(float(F.cross_entropy(logits[n - 1 : -1], torch.tensor(ids[n:]))))
    held = {(r["set"], r["measure"]): r["value"] for r in base["results"]}[("held_out", "response_loss")]
    assert held == pytest.approx(sum(want) / len(want), rel=1e-5)


def test_learning_curves_start_at_the_untrained_model(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from gradspec.train.results import Training, summarize

    base = tmp_path / "base/out"
    train(config(tmp_path / "base", tiny_llama_dir, epochs=0))
    trained = []
    for seed in (0, 1):
        train(config(tmp_path / f"r{seed}", tiny_llama_dir, optimizer_steps=3, eval_at=(1, 2), seed=seed))
        trained.append(Training("random", seed, tmp_path / f"r{seed}/out"))
    summarize([Training("base", 0, base), *trained], "random", tmp_path / "summary", n_boot=50)
    curves = pd.read_csv(tmp_path / "summary/learning_curves.csv")
    assert sorted(curves.step.unique()) == [0, 1, 2, 3] and set(curves.method) == {"random"}
    start = pd.read_csv(base / "eval.csv").query("measure == 'response_loss'")["value"].item()
    assert (curves[curves.step == 0].value == start).all()
    assert curves.groupby("seed").size().tolist() == [4, 4]
    assert (tmp_path / "summary/learning_curve_held_out.png").exists()
    # The summary records the rate its fine-tunes ran at, and the report's heading says it.
    from gradspec.report.html import selection_section

    rate = json.loads((tmp_path / "r0/out/train.json").read_text())["config"]["learning_rate"]
    marker = json.loads((tmp_path / "summary/selection_results.json").read_text())
    assert marker["config"]["learning_rates"] == [rate]
    assert f"<h2>Selection that pays at learning rate {rate:g}: summary</h2>" in selection_section(tmp_path / "summary")


def test_the_command_says_what_it_trained_and_no_first_to_last_loss(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """Each step's training loss is on that step's own records: the command reports their mean and the
    tokens trained, never a 'first -> last' pair that reads like a curve or a divergence."""
    from click.testing import CliRunner

    from gradspec.cli.main import app

    c = config(tmp_path, tiny_llama_dir)
    args = ["train", str(c.source.data), "-o", str(tmp_path / "cli"), "--model", str(tiny_llama_dir), "--device",
            "cpu", "--template", "plain", "--max-length", "64", "--optimizer-steps", "2",
            "--eval-instruction", str(tmp_path / "held_out.json"), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 optimiser steps on" in result.output and "mean training loss" in result.output
    assert "->" not in result.output


JUDGED = [  # two prompts; on each, answers of three qualities (the win rate written as text once), listed
    # model by model as AlpacaEval's outputs are, then a third prompt that --eval-limit 2 leaves out
    {"instruction": f"Name a {thing}.", "output": answers[m][0], "prompt_id": p, "generator_lc_winrate": answers[m][1]}
    for m in range(3)
    for p, thing, answers in (
        (7, "colour", [("red red red blue", 60.0), ("blue green red red", "30.5"), ("x y z w v", 2.0)]),
        (9, "fruit", [("apple pear plum fig", 50.0), ("fig fig fig fig", 10.0), ("plum", 5.0)]),
        (4, "tree", [("oak oak ash elm", 50.0), ("elm elm elm elm", 10.0), ("ash ash ash ash", 5.0)]),
    )
]


def test_judged_measures_equal_a_direct_computation(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """Preference accuracy and the quality gap from each answer's loss over its first K tokens, by
    hand: an answer shorter than K ("plum") is left out of its prompt's pairs."""
    cfg = config(tmp_path, tiny_llama_dir, epochs=0)
    judged = write_json(tmp_path / "judged.json", JUDGED)
    k = 3
    cfg = TrainConfig.of(**{**flatten(cfg), "eval_judged": (judged,), "eval_response_tokens": k, "eval_limit": 2})
    result = train(cfg)
    loaded = load_model(str(tiny_llama_dir), device="cpu")
    tok, model = loaded.tokenizer, loaded.model

    def first_k_loss(prompt: str, answer: str) -> float | None:
        n = len(tok(prompt)["input_ids"])
        ids = tok(prompt + answer)["input_ids"]
        if len(ids) - n < k:
            return None
        logits = model(input_ids=torch.tensor([ids[: n + k]])).logits[0]
        return float(F.cross_entropy(logits[n - 1 : -1], torch.tensor(ids[n : n + k])))

    accuracies, gaps = [], []
    for p in (7, 9):
        answers = [(float(r["generator_lc_winrate"]), first_k_loss(r["instruction"] + "\n", r["output"]))
                   for r in JUDGED if r["prompt_id"] == p]  # fmt: skip
        answers = [(q, loss) for q, loss in answers if loss is not None]
        pairs = [(a, b) for a in answers for b in answers if a[0] > b[0]]
        accuracies.append(np.mean([good[1] < bad[1] for good, bad in pairs]))
        middle = np.median([q for q, _ in answers])
        gaps.append(np.mean([v for q, v in answers if q > middle]) - np.mean([v for q, v in answers if q < middle]))
    got = {(r["set"], r["measure"]): r for r in result["results"]}
    assert got[("judged", "preference_accuracy")]["value"] == pytest.approx(np.mean(accuracies))
    assert got[("judged", "quality_gap")]["value"] == pytest.approx(np.mean(gaps), rel=1e-4)
    assert got[("judged", "quality_gap")]["n"] == 2
    items = pd.read_csv(tmp_path / "out" / "eval_items.csv")
    assert len(items[items.measure == "preference_accuracy"]) == 2
    # Each answer's loss is kept, named by its place in the file: enough to measure again on a subset.
    answers = pd.read_csv(tmp_path / "out" / "eval_answers.csv")
    assert len(answers) == 6 and set(answers.prompt) == {7, 9}
    for a in answers.itertuples():
        r = JUDGED[a.index]
        expected = first_k_loss(r["instruction"] + "\n", r["output"])
        assert r["prompt_id"] == a.prompt and float(r["generator_lc_winrate"]) == a.quality
        assert np.isnan(a.loss) if expected is None else a.loss == pytest.approx(expected, rel=1e-4)
    by_prompt = {p: list(zip(d.quality, d.loss)) for p, d in answers.dropna(subset=["loss"]).groupby("item")}
    again = {m.measure: m.items for m in pair_measures(by_prompt, "judged")}
    for measure, values in again.items():
        kept = items[items.measure == measure].set_index("item")["value"]
        assert values == pytest.approx(kept.to_dict(), rel=1e-6)


def test_pair_measures_count_a_prompt_without_two_qualities_as_skipped() -> None:
    accuracy, gap = pair_measures({"a": [(2.0, 1.0), (1.0, 3.0)], "b": [(5.0, 1.0), (5.0, 2.0)], "c": []}, "set")
    assert accuracy.items == {0: 1.0} and accuracy.skipped == 2
    assert gap.items == {0: -2.0} and gap.skipped == 2
    worse, _ = pair_measures({"a": [(3.0, 2.0), (2.0, 1.0), (1.0, 1.5)]}, "set")
    assert worse.items == {0: pytest.approx(1 / 3)}  # of (3,2), (3,1), (2,1): only 2 beats 1


def test_judged_sets_need_a_fixed_k_and_name_the_fields_they_miss(tmp_path: Path, tiny_llama_dir: Path) -> None:
    cfg = config(tmp_path, tiny_llama_dir, epochs=0)
    judged = write_json(tmp_path / "judged.json", [{k: v for k, v in r.items() if k != "prompt_id"} for r in JUDGED])
    with pytest.raises(ConfigError, match="--eval-response-tokens"):
        TrainConfig.of(**{**flatten(cfg), "eval_judged": (judged,)})
    cfg = TrainConfig.of(**{**flatten(cfg), "eval_judged": (judged,), "eval_response_tokens": 2})
    with pytest.raises(ConfigError, match=r"judged.json: no answer has both a prompt \(prompt_id\)"):
        train(cfg)


def test_the_detectable_difference_is_where_the_draws_test_reaches_alpha() -> None:
    from gradspec.train.results import against_draws, detectable

    draws = [1.0, 1.2, 0.9, 1.1, 1.05, 0.95]
    sd = float(np.std(draws, ddof=1))
    edge = detectable(sd, len(draws), 3)
    for step, significant in ((0.99, False), (1.01, True)):
        own = np.mean(draws) - step * edge + np.array([-0.01, 0.0, 0.01])  # three seeds, that mean
        rows = [("random", v) for v in draws] + [("m", v) for v in own]
        per_seed = pd.DataFrame([{"method": m, "set": "s", "measure": "response_loss", "value": v} for m, v in rows])
        p = against_draws(per_seed, "m", "random", "s", "response_loss")["p_seeds"]
        assert (p < 0.05) is significant, (step, p)
    assert np.isnan(detectable(sd, 1, 3)) and detectable(2 * sd, 6, 3) == pytest.approx(2 * edge)


def test_an_untrained_model_joins_every_rates_summary() -> None:
    from gradspec.train.results import Training, by_rate

    a, b, base = (Training(m, 0, Path(m)) for m in ("a", "b", "base"))
    assert by_rate([(1e-5, a), (None, base), (3e-5, b)]) == {1e-5: [a, base], 3e-5: [b, base]}
    assert by_rate([(None, base)]) == {0.0: [base]}  # alone, it still has a summary
    assert by_rate([(1e-5, a), (1e-5, b)]) == {1e-5: [a, b]}


def test_across_rates_says_whether_a_method_pays_at_every_rate_some_or_none() -> None:
    from gradspec.train.results import across_rates

    def table(verdicts: dict[str, str | None]) -> pd.DataFrame:
        return pd.DataFrame([{"method": m, "set": "h", "measure": "response_loss", "verdict": v}
                             for m, v in verdicts.items()])  # fmt: skip

    read = across_rates({
        1e-5: table({"a": "better than random", "b": "no different from random", "random": None}),
        3e-5: table({"a": "better than random", "b": "better than random", "c": "worse than random", "random": None}),
        1e-4: table({"a": "better than random", "b": "worse than random", "c": "no different from random"}),
    }).set_index("method")  # fmt: skip
    assert set(read.index) == {"a", "b", "c"}  # the baseline has no verdict
    assert read.loc["a", "pays"] == "at every rate" and read.loc["a", "worse at"] == "none"
    assert read.loc["b", "pays"] == "at 3e-05" and read.loc["b", "worse at"] == "0.0001"
    assert read.loc["b", "at 1e-05"] == "no different" and read.loc["c", "at 1e-05"] == "not trained"
    assert read.loc["c", "pays"] == "at none so far (2 of 3 rates trained)"
    planned = across_rates({3e-5: table({"a": "better than random"})}, planned=(1e-5, 3e-5)).set_index("method")
    assert (  # one rate of two that pays is not "every rate"
        planned.loc["a", "pays"] == "at 3e-05 so far (1 of 2 rates trained)"
        and planned.loc["a", "at 1e-05"] == "not trained"
    )
