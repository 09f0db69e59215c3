"""Reading steps (``analysis.steps``): the kind rule, the frame built from a real run's step_stats,
and the regression recovering a planted effect that step length alone would fake."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradspec import ComputeConfig, PromptConfig, compute
from gradspec.analysis.steps import step_effects, step_frame, step_kind, verdict
from gradspec.data import Record, load_dataset

from conftest import write_json
from helpers import LOSS_RTOL

RECORDS = [
    {"instruction": "Count.", "input": "", "output": "One two.\n\nWait, that is wrong.\n\nOne two three."},
    {"instruction": "Solve.", "input": "", "output": "Let x be 2.\n\nAlternatively, x is 3.\n\nLet me check: 3."},
]


@pytest.mark.parametrize(
    ("text", "index", "kind"),
    [
        ("Okay, so I need to find x.", 0, "opening"),
        ("Wait, that can't be right.", 3, "revisit"),
        ("  Hmm, let me think.", 2, "revisit"),
        ("Let me double-check the sum.", 1, "revisit"),
        ("Alternatively, use the formula.", 4, "revisit"),
        ("So the answer is 21.", 5, "other"),
        ("Waiting for the bus takes 5 minutes.", 1, "other"),  # a word, not the rule's "wait"
    ],
)
def test_the_kind_rule(text: str, index: int, kind: str) -> None:
    assert step_kind(text, index) == kind


def test_a_frame_holds_each_steps_text_kind_and_per_token_loss(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = write_json(tmp_path / "d.json", RECORDS)
    config = ComputeConfig.of(data=data, out=tmp_path / "run", model=str(tiny_llama_dir), progress=False,
                              device="cpu", prompt=PromptConfig("plain", max_length=96), steps="paragraph")  # fmt: skip
    run = compute(config)
    responses = {r.sample_id: r.response for r in load_dataset(data).items if isinstance(r, Record)}
    frame = step_frame(run, responses)
    assert len(frame) == 6 and frame.groupby("sample_id").size().tolist() == [3, 3]
    assert frame.kind.tolist().count("revisit") == 3 and frame.kind.tolist().count("opening") == 2
    assert set(frame.text) >= {"Wait, that is wrong.", "Alternatively, x is 3.", "Let me check: 3."}
    samples = run.df("samples").set_index("sample_id")
    for sid, group in frame.groupby("sample_id"):
        # The per-token losses, weighted by tokens, give back the sample's mean loss.
        weighted = (group.loss_per_token * group.n_tokens).sum() / group.n_tokens.sum()
        assert weighted == pytest.approx(samples.loc[sid, "loss"], rel=LOSS_RTOL)  # sums in another order
        assert group.position.tolist() == [0.0, 0.5, 1.0]
    assert np.isfinite(frame.log_nuclear_norm).all() and np.isfinite(frame.log_effective_rank).all()


def synthetic(effect: float, seed: int = 1, n: int = 80) -> pd.DataFrame:
    """Steps whose metric grows with their tokens; revisit steps are longer and, by ``effect``, larger."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        group = "a" if s % 2 else "b"
        for j in range(6):
            kind = "opening" if j == 0 else ("revisit" if rng.random() < 0.3 else "other")
            log_tokens = math.log(rng.integers(10, 40) * (2 if kind == "revisit" else 1))
            log_loss = rng.normal(0, 0.3)
            y = 0.8 * log_tokens + 0.2 * log_loss + effect * (kind == "revisit") + rng.normal(0, 0.2) + 0.1 * (s % 3)
            rows.append({"sample_id": f"s{s}", "group": group, "kind": kind, "position": j / 5,
                         "log_tokens": log_tokens, "log_loss": log_loss, "log_nuclear_norm": y})  # fmt: skip
    return pd.DataFrame(rows)


def test_length_fakes_an_effect_raw_and_the_equal_length_reading_removes_it() -> None:
    table = step_effects(synthetic(0.0), "nuclear_norm", n_boot=300).set_index(["reading", "term"])
    assert table.loc[("raw", "revisit"), "verdict"] == "differs"  # the revisit steps are twice as long
    assert table.loc[("raw", "revisit"), "share"] > 0.4
    for reading in ("equal length", "beyond loss"):
        row = table.loc[(reading, "revisit")]
        assert row.ci95_low < 0 < row.ci95_high and abs(row.share) < 0.05


def test_a_real_effect_holds_at_equal_length_and_beyond_loss() -> None:
    table = step_effects(synthetic(0.3), "nuclear_norm", n_boot=300).set_index(["reading", "term"])
    want = math.expm1(0.3)
    for reading in ("equal length", "beyond loss"):
        row = table.loc[(reading, "revisit")]
        assert row.verdict == "differs" and row.ci95_low < want < row.ci95_high


def test_verdicts() -> None:
    assert verdict(0.02, 0.3, 0.1) == "differs"
    assert verdict(0.01, 0.05, 0.1) == "differs, within the SESOI"
    assert verdict(-0.05, 0.08, 0.1) == "equivalent"
    assert verdict(-0.05, 0.2, 0.1) == "inconclusive"


def test_compare_reads_the_step_kinds_of_each_group(tmp_path: Path, tiny_llama_dir: Path) -> None:
    from gradspec.analysis import compare
    from gradspec.analysis.findings import comparison_findings
    from gradspec.artifacts import COMPARISON
    from gradspec.config.analysis import CompareConfig

    rng = np.random.default_rng(2)
    words = ["one", "two", "three", "four", "five", "six"]

    def trace(i: int) -> str:
        steps = [" ".join(rng.choice(words, rng.integers(2, 6))) + "." for _ in range(4)]
        steps[int(rng.integers(1, 4))] = "Wait, " + steps[2]
        return "\n\n".join(steps)

    runs = []
    for name in ("a", "b"):
        data = write_json(
            tmp_path / f"{name}.json", [{"instruction": f"Q{name}{i}.", "output": trace(i)} for i in range(10)]
        )
        prompt = PromptConfig("plain", max_length=96)
        config = ComputeConfig.of(data=data, out=tmp_path / name, model=str(tiny_llama_dir), progress=False,
                                  device="cpu", prompt=prompt, steps="paragraph")  # fmt: skip
        runs.append(compute(config).path)
    out = tmp_path / "cmp"
    compare(CompareConfig.of(runs=runs, out=out, n_boot=50, figures=False))
    kinds = pd.read_csv(COMPARISON.file(out, "steps"))
    assert set(kinds.group) == {"a", "b"} and set(kinds.term) == {"revisit", "opening", "position"}
    assert set(kinds.reading) == {"raw", "equal length", "beyond loss"}
    assert (kinds[kinds.term == "revisit"].n_steps == 10).all()  # one revisit step in each trace
    said = [s for s in comparison_findings(out) if "steps of 10 samples" in s]
    assert len(said) == 4 and said[0].startswith("a, steps of 10 samples, nuclear norm at equal step length")
    # Runs without --steps: no step table.
    plain = [compute(ComputeConfig.of(data=tmp_path / f"{n}.json", out=tmp_path / f"p{n}", model=str(tiny_llama_dir),
                                      progress=False, device="cpu", prompt=PromptConfig("plain", max_length=96))).path
             for n in ("a", "b")]  # fmt: skip
    compare(CompareConfig.of(runs=plain, out=tmp_path / "cmp2", n_boot=50, figures=False))
    assert not COMPARISON.file(tmp_path / "cmp2", "steps").exists()
