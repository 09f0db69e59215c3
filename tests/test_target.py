"""Targeted selection scores: ``target_similarity`` against ``.grad`` inner products of batch-of-one
gradients (every tiny architecture, the default model on real data), ``rds`` against a plain
forward pass, and ``tfidf`` against TF-IDF weights counted by hand."""

from __future__ import annotations

import json
import math
import re
import sys
from collections import Counter
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
import torch

from gradspec import PromptConfig
from gradspec.capture import run_batch
from gradspec.data import Record, load_dataset
from gradspec.errors import ConfigError, DamagedError
from gradspec.model import find_projections, load_model
from gradspec.prompting import Encoded, encode
from gradspec.score import ScoreConfig, score
from gradspec.spectra.precision import COSINE_ATOL
from gradspec.spectra.target import TargetGradient, target_cosines

from conftest import write_json
from helpers import random_samples
from oracles import oracle_cosine, oracle_gradients
from tiny_models import tiny_model


def oracle_cosines(
    model: torch.nn.Module, targets, samples, target_samples
) -> list[tuple[dict[tuple[int, str], float], float]]:
    """Per sample: ({(layer, module): cosine}, overall cosine) from each sample's own ``.grad`` and the
    plain mean of the targets' ``.grad``, flattened."""
    grads = [oracle_gradients(model, targets, s) for s in target_samples]
    mean = {k: sum(g[k] for g in grads) / len(grads) for k in grads[0]}
    out = []
    for s in samples:
        g = oracle_gradients(model, targets, s)
        per = {k: oracle_cosine(g[k], mean[k]) for k in g}
        flat = torch.cat([g[k].reshape(-1) for k in g])
        flat_mean = torch.cat([mean[k].reshape(-1) for k in g])
        out.append((per, float(flat @ flat_mean / (flat.norm() * flat_mean.norm()))))
    return out


def measured(model, targets, samples, target_samples):
    n_layers = model.config.num_hidden_layers
    mean = TargetGradient()
    for f in run_batch(model, targets, target_samples):  # one padded batch for the targets
        mean.add(f)
    gbar = mean.mean()
    norms = {k: float(g.norm()) for k, g in gbar.items()}
    return [target_cosines(f, gbar, norms, n_layers) for f in run_batch(model, targets, samples)]


def test_target_similarity_equals_grad_dot_products(arch: str) -> None:
    model = tiny_model(arch, seed=3)
    targets = find_projections(model, None)  # every projection the architecture has
    samples = random_samples([17, 30, 9], seed=2)
    target_samples = random_samples([25, 12, 20, 31], seed=8)
    want = oracle_cosines(model, targets, samples, target_samples)
    got = measured(model, targets, samples, target_samples)
    failures = []
    for b, ((per, overall), cos) in enumerate(zip(want, got)):
        for (layer, module), w in per.items():
            ours = cos.layers[module][layer]
            if abs(ours - w) > COSINE_ATOL:
                failures.append(f"sample {b} layer {layer} {module}: ours {ours:.8f} oracle {w:.8f}")
        if abs(cos.overall - overall) > COSINE_ATOL:
            failures.append(f"sample {b} overall: ours {cos.overall:.8f} oracle {overall:.8f}")
    assert not failures, "\n".join(failures)
    # The per-module cosine pools the layers: with one module it is the overall one.
    only_q = measured(model, [t for t in targets if t.name == "q"], samples, target_samples)
    for a, full in zip(only_q, got):
        assert a.overall == pytest.approx(full.modules["q"], abs=1e-12)


def test_a_sample_in_the_target_alone_has_cosine_one() -> None:
    model = tiny_model("llama", seed=1)
    targets = find_projections(model, ["q", "v"])
    s = random_samples([22], seed=5)
    (cos,) = measured(model, targets, s, s)
    assert cos.overall == pytest.approx(1.0, abs=1e-9)
    assert all(c == pytest.approx(1.0, abs=1e-9) for layers in cos.layers.values() for c in layers)


def test_an_empty_target_is_refused() -> None:
    with pytest.raises(ValueError, match="no target record"):
        TargetGradient().mean()


RECORDS = [
    {"instruction": "Add two and two.", "output": "Two and two make four."},
    {"instruction": "Name a colour.", "output": "Blue."},
    {"instruction": "Say nothing.", "output": ""},
    {"instruction": "Count to five.", "output": "One, two, three, four, five."},
]
TARGET = [
    {"instruction": "What is three plus one?", "output": "Three plus one is four."},
    {"instruction": "What is five minus two?", "output": "It is three."},
]


def test_score_writes_target_similarity_and_rds(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", RECORDS)
    target = write_json(tmp_path / "t.json", TARGET)
    prompt = PromptConfig("plain", max_length=64)
    cfg = ScoreConfig.of(data=data, out=tmp_path / "s.jsonl", metrics=("target_similarity", "rds"), target=target,
                         model=str(tiny_llama_dir), prompt=prompt, progress=False)  # fmt: skip
    summary = score(cfg)
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert summary["metrics"]["target_similarity"]["failed"] == 1 and rows[2]["target_similarity"] is None
    assert "output" in rows[2]["score_errors"]["target_similarity"]
    loaded = load_model(str(tiny_llama_dir), device="cpu")
    targets = find_projections(loaded.model, ["q", "k", "v", "o"])

    def enc(path: Path) -> list[Encoded]:
        items = [r for r in load_dataset(path).items if isinstance(r, Record)]
        return [e for e in (encode(r, loaded.tokenizer, prompt) for r in items) if isinstance(e, Encoded)]

    samples, target_samples = enc(data), enc(target)
    want = oracle_cosines(loaded.model, targets, samples, target_samples)
    for row, (per, overall) in zip([rows[0], rows[1], rows[3]], want):
        assert row["target_similarity"] == pytest.approx(overall, abs=COSINE_ATOL)
        for (layer, module), w in per.items():
            assert row["target_similarity_layers"][module][layer] == pytest.approx(w, abs=COSINE_ATOL)
        assert set(row["target_similarity_modules"]) == {"q", "k", "v", "o"}
    # RDS+: the cosine of mean-pooled last hidden states with the targets' mean.
    with torch.no_grad():

        def pooled(e: Encoded) -> torch.Tensor:
            out = loaded.model(input_ids=torch.tensor([e.input_ids]), output_hidden_states=True)
            return out.hidden_states[-1][0].double().mean(0)

        centre = torch.stack([pooled(e) for e in target_samples]).mean(0)
        for row, e in zip([rows[0], rows[1], rows[3]], samples):
            want_rds = float(torch.nn.functional.cosine_similarity(pooled(e), centre, dim=0))
            assert row["rds"] == pytest.approx(want_rds, abs=COSINE_ATOL)  # batched against one at a time
    assert rows[2]["rds"] is None


def test_an_interrupted_target_similarity_resumes_within_the_metric(
    tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A per-record metric keeps each finished part: after an interruption the next score computes
    only the records no part holds, and the target's mean gradient once for all its parts, and
    writes what one uninterrupted score writes (within the cosines' round-off: parts batch
    records otherwise)."""
    import gradspec.score.run as score_run
    import gradspec.score.target as score_target
    from gradspec.score import SCORERS

    words = ["red", "green", "blue", "stone", "river", "cloud", "seven", "apple", "quiet"]
    records = [*RECORDS, *({"instruction": f"Use the word {w}.", "output": f"The {w} one is {w}."} for w in words)]
    data, target = write_json(tmp_path / "d.json", records), write_json(tmp_path / "t.json", TARGET)
    base = dict(data=data, metrics=("target_similarity",), target=target, model=str(tiny_llama_dir),
                prompt=PromptConfig("plain", max_length=64), progress=False)  # fmt: skip
    score(ScoreConfig.of(**base, out=tmp_path / "whole.jsonl"))
    whole = [json.loads(line) for line in (tmp_path / "whole.jsonl").read_text().splitlines()]

    original, builds, calls = SCORERS["target_similarity"], [], []
    make = score_target.target_gradient
    monkeypatch.setattr(score_target, "target_gradient", lambda *a: builds.append(1) or make(*a))
    monkeypatch.setattr(score_run, "FIRST_PART", 2)

    def cut(ctx, items, at: int | None = 2):
        calls.append([r.index for r in items])
        if len(calls) == at:
            raise RuntimeError("the machine went away")
        return original.score(ctx, items)

    monkeypatch.setitem(SCORERS, "target_similarity", replace(original, score=cut))
    cfg = ScoreConfig.of(**base, out=tmp_path / "s.jsonl")
    with pytest.raises(RuntimeError, match="went away"):
        score(cfg)
    state = tmp_path / "s.jsonl.score"
    assert [p.name for p in state.glob("target_similarity*.jsonl")] == ["target_similarity.part1.jsonl"]
    kept = {json.loads(line)["index"] for line in (state / "target_similarity.part1.jsonl").read_text().splitlines()}
    assert kept == {0, 1} and builds == [1]
    part = (state / "target_similarity.part1.jsonl").read_text()
    (state / "target_similarity.part1.jsonl").write_text(part[:-9])  # damaged by hand: a clear refusal
    with pytest.raises(DamagedError, match=r"target_similarity.part1.jsonl: damaged .* --overwrite"):
        score(cfg)
    (state / "target_similarity.part1.jsonl").write_text(part)
    calls.clear()
    monkeypatch.setitem(SCORERS, "target_similarity", replace(original, score=partial(cut, at=None)))
    score(cfg)
    again = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    done_again = sorted(i for part in calls for i in part)
    assert done_again == [i for i in range(len(records)) if i not in kept and i != 2] and len(calls) >= 2
    assert builds == [1, 1]  # once in the resumed score, for all of its parts
    assert [p.name for p in state.glob("target_similarity*.jsonl")] == ["target_similarity.jsonl"]
    for a, b in zip(whole, again, strict=True):
        assert (a["target_similarity"] is None) == (b["target_similarity"] is None), a["sample_id"]
        if a["target_similarity"] is not None:
            assert b["target_similarity"] == pytest.approx(a["target_similarity"], abs=COSINE_ATOL)


def hand_tfidf(texts: list[str]) -> list[dict[str, float]]:
    """Unit TF-IDF vectors as sklearn defines its smoothed, sublinear weights: words of two or more
    letters, lower-cased, and their bigrams; tf 1 + ln(count); idf ln((1 + n) / (1 + df)) + 1."""
    grams = []
    for text in texts:
        words = re.findall(r"(?u)\b\w\w+\b", text.lower())
        grams.append(Counter(words + [f"{a} {b}" for a, b in zip(words, words[1:])]))
    n = len(texts)
    df = Counter(g for c in grams for g in c)
    out = []
    for c in grams:
        w = {g: (1 + math.log(k)) * (math.log((1 + n) / (1 + df[g])) + 1) for g, k in c.items()}
        norm = math.sqrt(sum(v * v for v in w.values()))
        out.append({g: v / norm for g, v in w.items()})
    return out


def test_tfidf_similarity_equals_weights_counted_by_hand(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", RECORDS)
    target = write_json(tmp_path / "t.json", TARGET)
    cfg = ScoreConfig.of(data=data, out=tmp_path / "s.jsonl", metrics=("tfidf",), target=target, progress=False)
    score(cfg)
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    usable = [r for r in RECORDS if r["output"]]  # the record with no response is not scored (nor fitted)
    texts = [f"{r['instruction']}\n{r['output']}" for r in [*usable, *TARGET]]
    vectors = hand_tfidf(texts)
    centre: Counter[str] = Counter()
    for v in vectors[len(usable) :]:
        centre.update({g: x / len(TARGET) for g, x in v.items()})
    norm = math.sqrt(sum(x * x for x in centre.values()))
    for row, v in zip([rows[0], rows[1], rows[3]], vectors):
        want = sum(x * centre[g] for g, x in v.items()) / norm
        assert row["tfidf_similarity"] == pytest.approx(want, abs=1e-9)
    assert rows[2]["tfidf_similarity"] is None and "output" in rows[2]["score_errors"]["tfidf"]
    assert rows[0]["tfidf_similarity"] > rows[1]["tfidf_similarity"] == 0.0  # shares "four"; "blue" shares nothing


def test_tfidf_names_the_extra_when_scikit_learn_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.feature_extraction.text", None)
    data = write_json(tmp_path / "d.json", RECORDS)
    target = write_json(tmp_path / "t.json", TARGET)
    cfg = ScoreConfig.of(data=data, out=tmp_path / "s.jsonl", metrics=("tfidf",), target=target, progress=False)
    with pytest.raises(ConfigError, match=r"needs the sklearn package: pip install 'gradspec\[lexical\]'"):
        score(cfg)


def test_targeted_metrics_need_a_target(tmp_path: Path) -> None:
    data = write_json(tmp_path / "d.json", RECORDS)
    for metric in ("target_similarity", "rds", "tfidf"):
        with pytest.raises(ConfigError, match="needs --target"):
            ScoreConfig.of(data=data, out=tmp_path / "s.json", metrics=(metric,)).check()


@pytest.mark.real_model
@pytest.mark.shared_data
def test_target_similarity_on_real_answers_equals_grad(shared_data: Path, default_model) -> None:
    """Natural-pool answers to one set of prompts against the reference answers to other prompts."""
    rows = json.loads((shared_data / "natural/alpaca_eval_outputs_600.json").read_text())
    pool = [r for r in rows if str(r["prompt_id"]) in ("3", "4") and r["generator"] in ("alpaca-7b", "tulu-2-dpo-70b")]
    aims = [r for r in rows if str(r["prompt_id"]) in ("500", "501", "502") and r["generator"] == "gpt4_1106_preview"]
    prompt = PromptConfig("chat", None, 160)
    loaded = default_model
    targets = find_projections(loaded.model, ["q", "k", "v", "o"])

    def enc(recs) -> list[Encoded]:
        out = []
        for i, r in enumerate(recs):
            from gradspec.data.records import Message

            rec = Record(i, f"r{i}", (Message("user", r["instruction"]),), r["output"])
            e = encode(rec, loaded.tokenizer, prompt)
            assert isinstance(e, Encoded)
            out.append(e)
        return out

    samples, target_samples = enc(pool), enc(aims)
    want = oracle_cosines(loaded.model, targets, samples, target_samples)
    got = measured(loaded.model, targets, samples, target_samples)
    worst = max(max(abs(c.layers[m][layer] - w) for (layer, m), w in per.items()) for (per, _), c in zip(want, got))
    assert worst <= COSINE_ATOL, worst
    assert all(abs(c.overall - o) <= COSINE_ATOL and math.isfinite(c.overall) for (_, o), c in zip(want, got))


def test_a_target_that_failed_can_be_corrected_in_place_and_scored(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", RECORDS)
    target = write_json(tmp_path / "t.json", [{"instruction": "an empty answer", "output": ""}])
    cfg = ScoreConfig.of(
        data=data, out=tmp_path / "s.jsonl", metrics=("target_similarity",), target=target,
        model=str(tiny_llama_dir), prompt=PromptConfig("plain", max_length=64), progress=False,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="no record can be measured"):
        score(cfg)
    write_json(target, TARGET)  # the same command, the target file fixed: nothing was scored to resume from
    assert score(cfg)["metrics"]["target_similarity"]["scored"] >= 1
