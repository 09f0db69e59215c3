"""Paired comparisons (compare --pair-by): pairs joined on the prompt, dropped whole when a side was
not computed; the paired statistics against direct computations; power the unpaired test lacks;
the conditional-logistic test beyond loss and lengths against a direct maximisation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import optimize
from scipy import stats as sps
from scipy.special import expit

from gradspec import ComputeConfig, PromptConfig, compute
from gradspec.analysis.frames import per_sample
from gradspec.analysis.groups import Group
from gradspec.analysis.paired import conditional_loglik, matched_beyond, paired_label, paired_rows
from gradspec.cli.main import app

from conftest import write_json

runner = CliRunner()
PROMPTS = [f"Name {n} things you find in a kitchen." for n in ("two", "three", "four", "five", "six", "seven")]


def run(tmp: Path, name: str, records: list[tuple[str, str]], model: Path, window: int) -> Path:
    data = write_json(tmp / f"{name}.json", [{"instruction": p, "output": o} for p, o in records])
    prompt = PromptConfig("plain", max_length=96, response_tokens=window)
    compute(ComputeConfig.of(data=data, out=tmp / name, model=str(model), prompt=prompt, device="cpu", progress=False))
    return tmp / name


def test_pairs_are_joined_on_the_prompt_and_a_skipped_side_drops_its_pair(tmp_path: Path, tiny_llama_dir: Path) -> None:
    slow = [f"Here are some: a pan, a pot, a cup, a spoon and more, number {i}." for i in range(6)]
    fast = [f"Pan, pot {i}, cup." for i in range(6)]
    fast[2] = "Pan."  # shorter than the 12-token window: skipped, so its prompt's pair goes
    a = run(tmp_path, "slow", list(zip(PROMPTS, slow)), tiny_llama_dir, window=12)
    b = run(tmp_path, "fast", list(zip(PROMPTS, fast))[::-1], tiny_llama_dir, window=12)  # the prompts reordered
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(a), str(b), "-o", str(out), "--labels", "slow,fast", "--pair-by",
                                 "prompt", "--n-boot", "50", "--no-figures"])  # fmt: skip
    assert result.exit_code == 0, result.output
    paired = pd.read_csv(out / "paired.csv")
    gradients = paired[paired.metric.isin(["nuclear_norm", "effective_rank"])]
    assert len(gradients) == 8 and (gradients.n_pairs == 5).all() and (paired.pair_by == "prompt").all()
    assert (paired.dropped_pairs == 1).all() and (paired.keys_on_both_sides == 6).all()
    assert (paired.n_pairs <= 5).all()  # a metric undefined on a side (each run's probe cosine) has fewer
    assert "1 of 6 pairs of slow and fast dropped whole" in result.output
    assert "Paired by prompt (5 pairs; 1 dropped whole" in result.output
    # The median paired difference is that of the samples of the same prompt, read from the runs directly.
    from gradspec.store import open_run

    def per_prompt(folder: Path, prompts: list[str]) -> pd.Series:
        r = open_run(folder)
        s = r.df("samples").query("status == 'ok'").set_index("sample_id")["index"]
        nuc = r.df("layer_stats").query("module == 'q'").groupby("sample_id")["nuclear_norm"].mean()
        return pd.Series({prompts[int(s[sid])]: v for sid, v in nuc.items()})

    sa, sb = per_prompt(a, PROMPTS), per_prompt(b, PROMPTS[::-1])
    common = sa.index.intersection(sb.index)
    want = float(np.median(sb[common] - sa[common]))
    row = paired.query("metric == 'nuclear_norm' and module == 'q'").iloc[0]
    assert len(common) == 5 and row.median_diff == pytest.approx(want, rel=1e-9)
    assert row.share_b_higher == pytest.approx(float(((sb[common] - sa[common]) > 0).mean()))
    # By index instead: the files hold the prompts in other orders, so index pairs are other pairs.
    by_index = runner.invoke(app, ["compare", str(a), str(b), "-o", str(tmp_path / "ci"), "--pair-by", "index",
                                   "--n-boot", "20", "--no-figures"])  # fmt: skip
    assert by_index.exit_code == 0, by_index.output
    assert pd.read_csv(tmp_path / "ci" / "paired.csv").query("metric == 'nuclear_norm'").n_pairs.iloc[0] == 5
    missing = runner.invoke(app, ["compare", str(a), str(b), "-o", str(tmp_path / "cx"), "--pair-by", "prompt_id"])
    assert missing.exit_code == 2 and "no record of" in missing.output and "'prompt_id'" in missing.output


def paired_groups(within: float, between: float, n: int = 60, seed: int = 0) -> tuple[Group, Group, pd.DataFrame]:
    """Two groups answering the same n prompts: each prompt has its own level (spread ``between``),
    B is ``within`` above A on every prompt, plus noise of 0.05."""
    rng = np.random.default_rng(seed)
    level = 1 + rng.normal(0, between, n)
    groups = []
    for label, shift in (("A", 0.0), ("B", within)):
        ids = [f"{label}{i}" for i in range(n)]
        values = level + shift + rng.normal(0, 0.05, n)
        frame = pd.DataFrame({"group": label, "sample_id": ids, "layer": 0, "depth": 0.0, "module": "q",
                              "metric": "nuclear_norm", "value": values})  # fmt: skip
        sizes = pd.DataFrame({"sample_id": ids, "loss": rng.uniform(1, 2, n), "n_response_tokens": 16,
                              "n_prompt_tokens": 8})  # fmt: skip
        groups.append(Group(label, [], frame, per_sample(frame), sizes.set_index("sample_id")["n_response_tokens"],
                            1, {}, sizes))  # fmt: skip
    pairs = pd.DataFrame({"sample_id_a": [f"A{i}" for i in range(n)], "sample_id_b": [f"B{i}" for i in range(n)]})
    return groups[0], groups[1], pairs


def test_the_pairs_see_a_shift_the_prompt_to_prompt_spread_hides() -> None:
    a, b, pairs = paired_groups(within=0.1, between=0.5)
    va, vb = a.samples["value"].to_numpy(), b.samples["value"].to_numpy()
    assert sps.mannwhitneyu(vb, va).pvalue > 0.2  # unpaired: the spread between prompts hides it
    row = paired_rows(a, b, pairs, sesoi=0.01, n_boot=200, seed=0).iloc[0]
    d = vb - va
    assert row.n_pairs == 60 and row.median_diff == pytest.approx(float(np.median(d)))
    wins = int((d > 0).sum())
    assert row.p_sign == pytest.approx(sps.binomtest(wins, int((d != 0).sum()), 0.5).pvalue)
    assert row.p_wilcoxon == pytest.approx(sps.wilcoxon(d).pvalue)
    assert row.q_value < 0.01 and row.label == "B higher" and row.ci_low > 0
    assert row.auroc_paired == pytest.approx(wins / 60)
    # The same shift against a margin of 30% of A's mean: real, and smaller than the margin.
    small = paired_rows(a, b, pairs, sesoi=0.3, n_boot=200, seed=0).iloc[0]
    assert small.label == "smaller than the margin" and small.equivalent


@pytest.mark.parametrize(
    ("q", "equivalent", "median", "want"),
    [(0.01, False, 1.0, "B higher"), (0.01, False, -1.0, "B lower"), (0.01, True, 0.1, "smaller than the margin"),
     (0.5, True, 0.0, "equivalent to zero"), (0.5, False, 0.3, "inconclusive"), (math.nan, False, 0.0, "not tested")],
)  # fmt: skip
def test_paired_labels_say_no_more_than_the_interval(q: float, equivalent: bool, median: float, want: str) -> None:
    assert paired_label(q, equivalent, median) == want


def test_the_conditional_likelihood_is_maximised_and_adds_only_what_the_metric_adds() -> None:
    rng = np.random.default_rng(4)
    n = 200
    loss = rng.normal(0, 1, n)  # within-pair differences of log loss
    metric = rng.normal(0, 1, n)
    side_by_loss = rng.random(n) < expit(1.5 * loss)  # the side that is "B" depends on the loss only
    sign = np.where(side_by_loss, 1.0, -1.0)
    d_loss, d_metric = sign * loss, sign * metric  # differences as B minus A
    # Our Newton maximum equals a direct maximisation of sum log sigma(beta d) (ridge 0 there).
    ours = conditional_loglik(d_loss[:, None] / np.sqrt((d_loss**2).mean()), ridge=0.0)
    best = optimize.minimize_scalar(lambda beta: np.logaddexp(0, -beta * d_loss / np.sqrt((d_loss**2).mean())).sum())
    assert ours == pytest.approx(-best.fun, rel=1e-9)
    assert conditional_loglik(np.empty((7, 0))) == pytest.approx(7 * math.log(0.5))
    # A metric unrelated to the side adds nothing; one that decides the side adds a lot.
    _, p_null = matched_beyond(d_metric, d_loss[:, None])
    assert p_null > 0.01
    decided = np.where(rng.random(n) < expit(3 * metric), 1.0, -1.0)
    _, p_real = matched_beyond(decided * metric, (decided * loss)[:, None])
    assert p_real < 1e-6
    # A covariate that never differs within a pair (the same prompt: P) drops out by itself.
    assert matched_beyond(d_metric, np.column_stack([d_loss, np.zeros(n)])) == pytest.approx(
        matched_beyond(d_metric, d_loss[:, None])
    )


def test_one_file_under_two_models_pairs_each_record_with_itself(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """Base against instruct on the same records: both sides have the same sample ids."""
    from conftest import save_tiny

    other = save_tiny(tmp_path / "other", seed=5)
    records = [(p, f"Pan, pot {i}, cup and a spoon.") for i, p in enumerate(PROMPTS)]
    a = run(tmp_path, "a", records, tiny_llama_dir, window=8)
    data = tmp_path / "a.json"
    prompt = PromptConfig("plain", max_length=96, response_tokens=8)
    compute(ComputeConfig.of(data=data, out=tmp_path / "b", model=str(other), prompt=prompt, device="cpu",
                             progress=False))  # fmt: skip
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(a), str(tmp_path / "b"), "-o", str(out), "--labels", "one,two",
                                 "--pair-by", "index", "--n-boot", "20", "--no-figures"])  # fmt: skip
    assert result.exit_code == 0, result.output
    paired = pd.read_csv(out / "paired.csv").query("metric == 'nuclear_norm'")
    assert (paired.n_pairs == 6).all() and (paired.dropped_pairs == 0).all()


def test_index_pairs_pooled_groups_run_by_run_and_sentences_name_the_groups(
    tmp_path: Path, tiny_llama_dir: Path
) -> None:
    """Two tasks pooled on each side (as the fast/slow sets are): every run's indices start at 0, so
    index pairs the i-th record of the i-th run of each side, never across tasks. The sentence says
    the group's name where the table says "B"."""
    from gradspec.analysis import CompareConfig, compare
    from gradspec.errors import InputError

    long = [f"Here are some: a pan, a pot, a cup, a spoon and more, number {i}." for i in range(6)]
    short = [f"Pan, pot {i}, cup, lid." for i in range(6)]
    slow = [run(tmp_path, f"slow{t}", list(zip(PROMPTS, long)), tiny_llama_dir, window=6) for t in range(2)]
    fast = [run(tmp_path, f"fast{t}", list(zip(PROMPTS, short)), tiny_llama_dir, window=6) for t in range(2)]
    config = CompareConfig((tuple(slow), tuple(fast)), tmp_path / "cmp", ("slow", "fast"), n_boot=50,
                           figures=False, pair_by="index")  # fmt: skip
    compare(config)
    paired = pd.read_csv(tmp_path / "cmp" / "paired.csv").query("metric == 'nuclear_norm'")
    assert (paired.n_pairs == 12).all() and (paired.repeated_keys == 0).all() and (paired.only_a == 0).all()
    from gradspec.analysis.findings import comparison_findings

    said = [s for s in comparison_findings(tmp_path / "cmp") if s.startswith("Paired by index")]
    assert said and all(" B higher" not in s and " B lower" not in s for s in said)
    assert any("fast higher in" in s or "fast lower in" in s or "inconclusive in" in s for s in said), said
    with pytest.raises(InputError, match="pools 2 run"):
        compare(CompareConfig((tuple(slow), fast[0]), tmp_path / "c2", n_boot=20, figures=False, pair_by="index"))
