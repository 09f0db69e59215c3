"""The primary gradient readings against the loss, and the best reading against its permutation null:
the best of several readings is not compared with one loss reading (analysis/primary.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradspec.analysis.beyond import auroc, separation
from gradspec.analysis.primary import best_of_null, paired_separation_difference, primary_scores, primary_table


def frames(effect: float, n: int = 100, seed: int = 0, loss_effect: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two groups, four modules whose log metrics share each sample's level (the modules of one sample
    move together), B shifted by ``effect`` in every module; the loss shifted by ``loss_effect``."""
    rng = np.random.default_rng(seed)
    rows, cov = [], []
    for group, shift, lshift in (("A", 0.0, 0.0), ("B", effect, loss_effect)):
        for i in range(n):
            level = rng.normal(0, 1)
            sid = f"{group}{i}"
            cov.append({"group": group, "sample_id": sid, "loss": float(np.exp(rng.normal(lshift, 0.5)))})
            for module in "qkvo":
                for metric in ("nuclear_norm", "effective_rank"):
                    value = float(np.exp(level + shift + rng.normal(0, 0.3)))
                    rows.append({"group": group, "sample_id": sid, "module": module, "metric": metric, "value": value})
    return pd.DataFrame(rows), pd.DataFrame(cov)


def test_a_primary_score_is_the_mean_of_the_modules_log_values() -> None:
    samples, _ = frames(0.0, n=5)
    got = primary_scores(samples, "nuclear_norm")
    d = samples[samples.metric == "nuclear_norm"]
    want = d.assign(log=np.log(d.value)).groupby(["group", "sample_id"])["log"].mean()
    assert got.sort_index().to_numpy() == pytest.approx(want.sort_index().to_numpy(), rel=1e-12)


def test_the_best_of_eight_readings_is_no_finding_under_no_effect() -> None:
    """Eight readings of no effect: their best separation is often 0.55-0.60 (what a best-of-k line
    read as a finding), yet its permutation p is small no more often than it should be."""
    small = 0
    bests = []
    for seed in range(20):
        samples, _ = frames(0.0, n=100, seed=seed)
        wide = samples.pivot_table(index=["group", "sample_id"], columns=["metric", "module"], values="value")
        y = (wide.index.get_level_values("group") == "B").astype(float)
        _, best, p = best_of_null(wide.to_numpy(), y, 200, seed)
        bests.append(best)
        small += p < 0.05
    assert np.median(bests) > 0.53  # the best of eight is above 0.5 by chance alone
    assert small <= 3  # 1 expected at 5%; 3 of 20 has probability < 8% under a calibrated null
    samples, _ = frames(0.5, n=100, seed=1)
    wide = samples.pivot_table(index=["group", "sample_id"], columns=["metric", "module"], values="value")
    y = (wide.index.get_level_values("group") == "B").astype(float)
    assert best_of_null(wide.to_numpy(), y, 200, 0)[2] < 0.01  # a real shift is found


def test_the_gradient_is_set_against_the_loss_on_the_same_samples() -> None:
    rng = np.random.default_rng(5)
    y = np.repeat([0.0, 1.0], 80)
    loss = rng.normal(0, 1, 160) + 0.3 * y
    diff, low, high, p = paired_separation_difference(loss.copy(), loss, y, 300, 0)
    assert diff == 0 and low == high == 0 and p == 1  # the same reading: nothing between them
    strong = rng.normal(0, 1, 160) + 1.5 * y
    diff, low, high, p = paired_separation_difference(strong, loss, y, 300, 0)
    want = separation(auroc(strong[y == 0], strong[y == 1])) - separation(auroc(loss[y == 0], loss[y == 1]))
    assert diff == pytest.approx(want) and low > 0 and p < 0.01


def test_the_table_names_its_readings_and_reads_each_once() -> None:
    samples, cov = frames(0.0, n=60, seed=2, loss_effect=1.0)  # the loss separates, the gradient does not
    table = primary_table("A", "B", samples, cov, n_boot=200, seed=0)
    assert table.reading.tolist() == ["log nuclear_norm, mean of q, k, v, o", "log effective_rank, mean of q, k, v, o"]
    assert (table.n_readings == 8).all() and (table.separation_diff < 0).all() and (table.p_vs_loss < 0.05).all()
    assert (table.auroc_loss > 0.7).all()


def test_the_sentence_gives_a_bootstrap_p_no_finer_than_its_resamples() -> None:
    from gradspec.analysis.findings import primary_clause

    samples, cov = frames(1.0, n=60, seed=3)  # the gradient separates far better than the loss
    table = primary_table("A", "B", samples, cov, n_boot=200, seed=0)
    assert table.p_vs_loss.iloc[0] == 0  # no resample crossed zero
    text = primary_clause(table)
    assert "against the loss, p<0.01)" in text and "p=0)" not in text and "named before looking" in text
