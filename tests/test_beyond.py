"""What a gradient metric adds beyond loss and lengths, on synthetic groups whose answer is known:
a metric that is only length, only prompt length, only loss, one with a real effect beyond them,
and none at all. Also AUROC, the likelihood-ratio test and the adjusted difference against direct
computations, and the sentence compare prints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from gradspec.analysis.beyond import adjusted_difference, auroc, beyond_table, incremental_p, logistic_loglik
from gradspec.analysis.findings import beyond_sentence

N = 150


def groups(kind: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two groups of N samples each and one metric; B differs from A in what ``kind`` says."""
    rng = np.random.default_rng(seed)
    frames, covs = [], []
    for label, is_b in (("A", 0.0), ("B", 1.0)):
        loss = np.exp(rng.normal(0.8 + (0.5 * is_b if kind == "loss" else 0), 0.3, N))
        t = np.round(np.exp(rng.normal(4 + (0.8 * is_b if kind == "length" else 0), 0.4, N)))
        p = np.round(np.exp(rng.normal(3 + (0.8 * is_b if kind == "prompt" else 0), 0.4, N)))
        noise = rng.normal(0, 0.05, N)
        value = 2.0 - 0.3 * np.log(loss) - 0.2 * np.log(t) - 0.3 * np.log(p) + noise
        if kind == "beyond":
            value = value + 0.1 * is_b  # a gradient effect no covariate carries
        ids = [f"{label}{i}" for i in range(N)]
        frames.append(pd.DataFrame({"group": label, "sample_id": ids, "module": "q", "metric": "effective_rank",
                                    "value": value}))  # fmt: skip
        covs.append(pd.DataFrame({"group": label, "sample_id": ids, "loss": loss, "n_response_tokens": t,
                                  "n_prompt_tokens": p}))  # fmt: skip
    return pd.concat(frames, ignore_index=True), pd.concat(covs, ignore_index=True)


@pytest.mark.parametrize(
    ("kind", "separated_by", "adds"),
    [("length", "auroc_response_tokens", False), ("prompt", "auroc_prompt_tokens", False),
     ("loss", "auroc_loss", False), ("beyond", None, True), ("none", None, False)],
)  # fmt: skip
def test_each_reading_gives_the_known_answer(kind: str, separated_by: str | None, adds: bool) -> None:
    samples, covariates = groups(kind)
    row = beyond_table("A", "B", samples, covariates, n_boot=200).iloc[0]
    if separated_by is not None:  # the covariate carries the difference, and the metric follows it
        assert row[separated_by] > 0.85 or row[separated_by] < 0.15
        assert abs(row.auroc - 0.5) > 0.15
    assert (row.q_beyond < 0.05) == adds, row
    covered = row.adjusted_ci_low <= 0 <= row.adjusted_ci_high
    assert covered != adds, row  # at equal loss and lengths only the real effect is left
    if kind == "beyond":
        assert row.adjusted_ci_low < 0.1 < row.adjusted_ci_high
    if kind == "none":
        assert 0.4 < row.auroc < 0.6 and 0.4 < row.auroc_loss < 0.6


def test_auroc_is_the_mann_whitney_u_and_the_test_a_likelihood_ratio() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(0, 1, 40), rng.normal(0.5, 1, 50)
    u = sps.mannwhitneyu(b, a).statistic
    assert auroc(a, b) == pytest.approx(u / (len(a) * len(b)))
    x = rng.normal(0, 1, (90, 2))
    y = (x[:, 0] + rng.normal(0, 1, 90) > 0).astype(float)
    metric = rng.normal(0, 1, 90)
    stat, p = incremental_p(metric, x, y)
    full = logistic_loglik(np.column_stack([(x - x.mean(0)) / x.std(0), (metric - metric.mean()) / metric.std()]), y)
    base = logistic_loglik((x - x.mean(0)) / x.std(0), y)
    assert stat == pytest.approx(2 * (full - base)) and p == pytest.approx(sps.chi2.sf(stat, 1))
    value = 1 + 0.5 * y + x[:, 1] + rng.normal(0, 0.1, 90)
    diff, low, high, p_adj = adjusted_difference(value, x, y)
    assert low < 0.5 < high and p_adj < 1e-6 and diff == pytest.approx(0.5, abs=0.1)


def test_the_sentence_says_whether_the_gradient_beats_the_loss() -> None:
    samples, covariates = groups("loss")
    table = beyond_table("A", "B", samples, covariates, n_boot=100)
    said = beyond_sentence(table, "A", "B", ("effective_rank",))
    assert said.startswith("Beyond loss and length: the loss alone tells B from A with AUROC 0.")
    assert "no gradient metric adds to loss and lengths" in said
    samples, covariates = groups("beyond")
    said = beyond_sentence(beyond_table("A", "B", samples, covariates, n_boot=100), "A", "B", ("effective_rank",))
    assert "1 of 1 add to loss and lengths" in said and "effective rank of q" in said


def test_the_incremental_test_holds_its_size_and_has_power() -> None:
    """Over 20 draws each: the metric that is only loss and lengths is called useful about 5% of the
    time (the test's size), the real effect nearly always."""
    calls = {
        kind: sum(beyond_table("A", "B", *groups(kind, seed), n_boot=20).iloc[0].p_beyond < 0.05 for seed in range(20))
        for kind in ("length", "prompt", "loss", "none", "beyond")
    }
    assert all(calls[k] <= 3 for k in ("length", "prompt", "loss", "none")), calls
    assert calls["beyond"] >= 19, calls


@pytest.mark.parametrize(("t", "p", "n"), [(16, 8, 360), (8, 8, 393)])
def test_lengths_fixed_by_design_drop_out_and_the_adjusted_difference_is_defined(t: int, p: int, n: int) -> None:
    """At equal positions every sample has the same T and P; their logs' standard deviation can
    still come out as one unit of round-off (393 copies of log 8 do), which must not make the
    covariates collinear with the intercept."""
    samples, covariates = groups("beyond")
    keep = samples.sample_id.isin(samples.sample_id.unique()[: n // 2]) | samples.group.eq("B")
    samples, covariates = samples[keep], covariates[covariates.sample_id.isin(samples.sample_id)]
    covariates = covariates.assign(n_response_tokens=t, n_prompt_tokens=p)
    row = beyond_table("A", "B", samples, covariates, n_boot=50).iloc[0]
    assert np.isfinite([row.adjusted_diff, row.adjusted_ci_low, row.adjusted_ci_high]).all()
    assert row.adjusted_ci_low < 0.1 < row.adjusted_ci_high and row.auroc_response_tokens == 0.5
