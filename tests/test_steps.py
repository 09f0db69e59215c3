"""Step-level spectra (``compute --steps``): how responses split into steps, each step's gradient
against the batch-of-one ``.grad`` of its own share of the loss, and the steps adding up."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gradspec import ComputeConfig, PromptConfig, compute
from gradspec.capture import run_batch, run_batch_steps
from gradspec.config.capture import parse_steps
from gradspec.data.records import Message, Record
from gradspec.errors import ConfigError
from gradspec.model import find_projections, load_model
from gradspec.prompting import encode, with_steps
from gradspec.prompting.steps import Step, char_spans, token_steps
from gradspec.spectra import sample_spectra
from gradspec.spectra.precision import BOUNDS
from gradspec.store import open_run
from gradspec.store.verify import verify

from conftest import write_json
from helpers import LOSS_RTOL, compare_to_oracle, random_samples
from oracles import oracle_gradients
from tiny_models import tiny_model

TEXT = "First line. Still the first line!\nSecond line?\n\nA new paragraph.  Its second sentence."


def pieces(text: str, rule: str) -> list[str]:
    return [text[a:b] for a, b in char_spans(text, rule)]


def test_rules_split_where_they_say() -> None:
    assert pieces(TEXT, "newline") == ["First line. Still the first line!", "Second line?",
                                       "A new paragraph.  Its second sentence."]  # fmt: skip
    assert pieces(TEXT, "sentence") == ["First line.", "Still the first line!", "Second line?", "A new paragraph.",
                                        "Its second sentence."]  # fmt: skip
    assert pieces(TEXT, "paragraph") == ["First line. Still the first line!\nSecond line?",
                                         "A new paragraph.  Its second sentence."]  # fmt: skip
    assert pieces("a; b;;c", ";+") == ["a", " b", "c"]  # a regular expression of the separators
    assert pieces("pi is 3.14 exactly.", "sentence") == ["pi is 3.14 exactly."]  # a point inside a number
    assert pieces("\n\n  \n", "newline") == []


def test_a_bad_rule_is_refused_by_name() -> None:
    assert parse_steps("sentence") == "sentence" and parse_steps(r"\n\n") == r"\n\n"
    with pytest.raises(ValueError, match="neither newline, sentence, paragraph nor a regular expression"):
        parse_steps("([")


def record(response: str, prompt: str = "Solve it.") -> Record:
    return Record(0, "r0", (Message("user", prompt),), response)


@pytest.mark.parametrize("rule", ["newline", "sentence", "paragraph"])
def test_steps_partition_the_response_tokens(tokenizer, rule: str) -> None:
    enc = encode(record(TEXT), tokenizer, PromptConfig("plain", max_length=512))
    steps = with_steps(enc, TEXT, rule).steps
    assert len(steps) == len(char_spans(TEXT, rule))
    covered = [t for s in steps for t in range(s.token_start, s.token_end)]
    assert covered == [t for t, m in enumerate(enc.loss_mask) if m]  # each response token once, in order
    for s in steps:  # each step's tokens spell its text (byte tokens; a separator joins the step before)
        spelt = tokenizer.decode(enc.input_ids[s.token_start : s.token_end])
        assert TEXT[s.char_start : s.char_end] in spelt
        assert not spelt.replace(TEXT[s.char_start : s.char_end], "").strip()


def test_truncation_keeps_the_steps_it_reaches(tokenizer) -> None:
    enc = encode(record(TEXT), tokenizer, PromptConfig("plain", max_length=30))
    steps = with_steps(enc, TEXT, "sentence").steps
    assert [TEXT[s.char_start : s.char_end] for s in steps] == ["First line.", "Still the first line!"]
    assert steps[-1].token_end == enc.n_tokens  # the cut step ends where the kept tokens do


def test_a_token_across_the_prompt_joins_the_first_step() -> None:
    # offsets of five tokens: two prompt, one across the prompt's end at 10, two response
    steps = token_steps([(0, 3), (4, 8)], [(0, 5), (5, 9), (9, 12), (12, 14), (15, 18)], 10,
                        [False, False, True, True, True])  # fmt: skip
    assert steps == [Step(0, 3, 2, 4), Step(4, 8, 4, 5)]


def with_chunks(samples, n_steps: int):
    """Each sample's response tokens cut into ``n_steps`` near-equal steps (a sample with fewer
    response tokens gets one step a token)."""
    out = []
    for s in samples:
        tokens = [t for t, m in enumerate(s.loss_mask) if m]
        k = min(n_steps, len(tokens))
        cuts = [tokens[0] + round(i * len(tokens) / k) for i in range(k + 1)]
        out.append(dataclasses.replace(s, steps=tuple(Step(0, 0, a, b) for a, b in zip(cuts, cuts[1:]))))
    return out


def test_each_step_equals_the_oracle_of_its_own_loss(arch: str) -> None:
    """Steps measured in one padded batch, against .grad of each step's share of the loss, one sample
    at a time; the whole sample as run_batch gives it."""
    model = tiny_model(arch, seed=5)
    targets = find_projections(model, None)
    modules = list(dict.fromkeys(t.name for t in targets))
    n_layers = model.config.num_hidden_layers
    samples = with_chunks(random_samples([21, 9, 33], seed=4), 3)
    samples[1] = dataclasses.replace(samples[1], steps=samples[1].steps[:2] + (samples[1].steps[2],))
    rounds = list(run_batch_steps(model, targets, samples))
    assert [j for j, _ in rounds] == [-1, 0, 1, 2]
    whole = run_batch(model, targets, samples)
    failures = []
    for b, s in enumerate(samples):
        assert rounds[0][1][b].loss == pytest.approx(whole[b].loss, rel=1e-12)
        total = 0.0
        for j, step in enumerate(s.steps):
            part = rounds[j + 1][1][b]
            total += part.loss
            spectra = sample_spectra(part.first(step.token_end - 1), modules, n_layers, similarity=False)
            grads = oracle_gradients(model, targets, s, range(step.token_start, step.token_end))
            failures += [f"{s.sample_id} step {j} {line}" for line in compare_to_oracle(spectra, grads, BOUNDS)]
        assert total == pytest.approx(whole[b].loss, rel=1e-12)  # the shares add up to the mean loss
    assert not failures, "\n".join(failures)


RECORDS = [
    {"instruction": "Count to three.", "input": "", "output": "One. Two! Three?\nDone."},
    {"instruction": "Say hi.", "input": "", "output": "Hi."},
    {"instruction": "Explain.", "input": "", "output": "First, think. Then check it.\n\nWait, let me verify. Yes."},
]


def steps_config(data: Path, out: Path, model: Path, **kw) -> ComputeConfig:
    kw.setdefault("prompt", PromptConfig("plain", max_length=96))
    return ComputeConfig.of(data=data, out=out, model=str(model), progress=False, device="cpu", **kw)


def test_compute_writes_step_stats_that_add_up(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "data.json", RECORDS)
    run = compute(steps_config(data, tmp_path / "run", tiny_llama_dir, steps="sentence", modules=None))
    plain = compute(steps_config(data, tmp_path / "plain", tiny_llama_dir, modules=None))
    assert verify(run.path) == []
    steps = run.df("step_stats")
    samples = run.df("samples").set_index("sample_id")
    loaded = load_model(str(tiny_llama_dir), device="cpu")
    n_layers, n_modules = loaded.model.config.num_hidden_layers, 7
    for sid, group in steps.groupby("sample_id"):
        k = group["step"].nunique()
        assert len(group) == k * n_layers * n_modules
        first = group.drop_duplicates("step").sort_values("step")
        assert first["loss"].sum() == pytest.approx(samples.loc[sid, "loss"], rel=LOSS_RTOL)  # sums in another order
        assert (first["token_end"] - first["token_start"]).sum() == samples.loc[sid, "n_response_tokens"]
        assert group["sum_residual"].max() < 1e-5, group["sum_residual"].max()
    assert sorted(steps.groupby("sample_id")["step"].nunique().tolist()) == [1, 4, 4]
    # The sample rows are those of a run without steps.
    a = run.df("layer_stats").sort_values(["sample_id", "layer", "module"]).reset_index(drop=True)
    b = plain.df("layer_stats").sort_values(["sample_id", "layer", "module"]).reset_index(drop=True)
    assert (abs(a["nuclear_norm"] - b["nuclear_norm"]) <= 1e-5 * b["nuclear_norm"]).all()
    # Each stored step's numbers are the oracle's for its own share of the loss.
    records = RECORDS
    spans = steps.drop_duplicates(["sample_id", "step"]).set_index(["sample_id", "step"])
    sid = samples.index[samples["index"] == 2][0]
    enc = encode(record(records[2]["output"], records[2]["instruction"]), loaded.tokenizer,
                 PromptConfig("plain", max_length=96))  # fmt: skip
    for j in range(4):
        span = spans.loc[(sid, j)]
        grads = oracle_gradients(loaded.model, find_projections(loaded.model, None), enc,
                                 range(int(span["token_start"]), int(span["token_end"])))  # fmt: skip
        stored = steps[(steps["sample_id"] == sid) & (steps["step"] == j)]
        for (layer, module), g in grads.items():
            got = stored[(stored["layer"] == layer) & (stored["module"] == module)]["frobenius_norm"].item()
            assert got == pytest.approx(float(g.norm()), rel=BOUNDS["frobenius_norm"], abs=1e-12)
    manifest = json.loads((run.path / "run.json").read_text())
    assert manifest["config"]["steps"] == "sentence"


def test_steps_refuse_checkpointing_and_resume(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "data.json", RECORDS)
    with pytest.raises(ConfigError, match="--steps .* cannot --checkpointing"):
        steps_config(data, tmp_path / "x", tiny_llama_dir, steps="newline", checkpointing=True).check()
    out = tmp_path / "run"
    compute(steps_config(data, out, tiny_llama_dir, steps="newline", limit=1))
    again = compute(steps_config(data, out, tiny_llama_dir, steps="newline"))
    assert sorted(open_run(out).df("step_stats").drop_duplicates(["sample_id", "step"])
                  .groupby("sample_id").size().tolist()) == [1, 2, 2]  # fmt: skip
    assert len(again.df("samples")) == 3


def test_a_pattern_that_backtracks_without_end_fails_its_record_in_bounded_time() -> None:
    import time

    from gradspec.prompting.steps import PATTERN_SECONDS

    assert char_spans("a" * 30 + "!", "(a+)+$") == [(0, 31)]  # re takes minutes on it; the engine used does not
    started = time.monotonic()
    with pytest.raises(ValueError, match=r"searched this response for over .* simplify the pattern"):
        char_spans("a" * 40 + "!", "(a|aa)+$")  # exponentially many ways to split the a's before '!' fails it
    assert time.monotonic() - started < PATTERN_SECONDS + 8
    assert char_spans("a. b", "sentence") == [(0, 2), (3, 4)]  # an ordinary pattern still splits


def test_a_pattern_that_leaves_no_step_says_so(tmp_path: Path, tiny_llama_dir: Path, capsys) -> None:  # noqa: ANN001
    data = write_json(tmp_path / "data.json", RECORDS)
    run = compute(steps_config(data, tmp_path / "run", tiny_llama_dir, steps="."))
    assert run.manifest["checks"]["stepless"] == 3
    assert any("--steps '.' left no step in 3 computed sample(s)" in w for w in run.manifest["checks"]["warnings"])
    assert "left no step" in capsys.readouterr().err
    kept = compute(steps_config(data, tmp_path / "kept", tiny_llama_dir, steps="sentence"))
    assert kept.manifest["checks"]["stepless"] == 0
