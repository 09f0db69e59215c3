"""What selecting by each score did to the fine-tuned model: every method's held-out results over
its seeds, with bootstrap intervals, the difference to a baseline method (random selection) with
paired tests, and each method's result against the mean response length of what it selected
(length may explain the ranking again).

Inputs are ``gradspec train`` folders; the item-level values (``eval_items.csv``) let two methods
be compared on the same held-out items: the difference per item, averaged over seeds, is
bootstrapped and tested with the Wilcoxon signed-rank test, and the p-values of every method and
held-out measure adjusted together (Benjamini-Hochberg q-values: many methods against one baseline
on several sets would otherwise find a "winner" by chance); the seeds' own means are also
compared with a paired t-test (few seeds: a weak test, stated as such).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats as sps  # noqa: E402

from gradspec.analysis.figures import save_figure  # noqa: E402
from gradspec.analysis.stats import bootstrap_mean_ci, fdr, wilcoxon_paired  # noqa: E402
from gradspec.analysis.tables import write_table  # noqa: E402
from gradspec.errors import ConfigError  # noqa: E402

LOWER_IS_BETTER = {"response_loss": True, "answer_loss": True, "accuracy": False}


@dataclass(frozen=True)
class Training:
    """One fine-tune of the experiment: what it stands for and where its results are."""

    method: str
    seed: int
    folder: Path


def items_of(trainings: Sequence[Training]) -> pd.DataFrame:
    """method, seed, set, measure, item, value, and the selection's mean response tokens."""
    frames = []
    for t in trainings:
        result = json.loads((t.folder / "train.json").read_text())
        items = pd.read_csv(t.folder / "eval_items.csv")
        frames.append(
            items.assign(method=t.method, seed=t.seed, selection_tokens=result["selection"]["mean_response_tokens"])
        )
    if not frames:
        raise ConfigError("no finished training to summarise")
    return pd.concat(frames, ignore_index=True)


def summarize(
    trainings: Sequence[Training], baseline: str | None, out: str | Path, n_boot: int = 2000
) -> dict[str, Any]:
    """Write ``selection_results.csv/.md`` and one figure per held-out measure; return the table's rows."""
    out = Path(out)
    items = items_of(trainings)
    # Each item's value averaged over a method's seeds: the unit of the intervals and item-level tests.
    per_item = items.groupby(["method", "set", "measure", "item"], as_index=False)["value"].mean()
    per_seed = items.groupby(["method", "seed", "set", "measure"], as_index=False)["value"].mean()
    tokens = items.groupby("method")["selection_tokens"].mean()
    rows = []
    seeds = per_seed.groupby("method")["seed"].nunique()
    for (method, set_, measure), d in per_item.groupby(["method", "set", "measure"]):
        mean, lo, hi = bootstrap_mean_ci(d["value"].to_numpy(), n_boot)
        row: dict[str, Any] = {
            "method": method, "set": set_, "measure": measure, "mean": float(mean[0]), "ci_low": float(lo[0]),
            "ci_high": float(hi[0]), "items": len(d), "seeds": int(seeds[method]),
            "selection_tokens": float(tokens[method]),
        }  # fmt: skip
        if baseline is not None and method != baseline:
            row |= versus(per_item, per_seed, method, baseline, set_, measure, n_boot)
        rows.append(row)
    table = pd.DataFrame(rows)
    if baseline is not None and "p_items" in table:
        table["q_items"] = fdr(table["p_items"].to_numpy())
        table["verdict"] = [verdict(r, baseline) for r in table.itertuples()]
        table = table.drop(columns="better")
        rows = table.to_dict("records")
    files = write_table(table, out / "selection_results")
    for (set_, measure), d in table.groupby(["set", "measure"]):
        files += figure(d, set_, measure, out / f"selection_vs_length_{set_}_{measure}")
    return {"rows": rows, "files": [str(f) for f in files]}


def versus(
    per_item: pd.DataFrame, per_seed: pd.DataFrame, method: str, baseline: str, set_: str, measure: str, n_boot: int
) -> dict[str, Any]:
    """The method minus the baseline: per item (paired, seed-averaged) and per seed (paired t)."""

    def pick(frame: pd.DataFrame, who: str, key: str) -> pd.Series:
        d = frame[(frame.method == who) & (frame.set == set_) & (frame.measure == measure)]
        return d.set_index(key)["value"]

    a, b = pick(per_item, baseline, "item"), pick(per_item, method, "item")
    common = a.index.intersection(b.index)
    diff, lo, hi, p_items = wilcoxon_paired(a.loc[common].to_numpy(), b.loc[common].to_numpy(), n_boot)
    sa, sb = pick(per_seed, baseline, "seed"), pick(per_seed, method, "seed")
    seeds = sa.index.intersection(sb.index)
    p_seeds = float("nan")
    if len(seeds) >= 2 and np.ptp(sb.loc[seeds].to_numpy() - sa.loc[seeds].to_numpy()) > 0:
        p_seeds = float(sps.ttest_rel(sb.loc[seeds], sa.loc[seeds]).pvalue)
    better = (diff < 0) if LOWER_IS_BETTER.get(measure, True) else (diff > 0)
    return {
        f"diff_vs_{baseline}": diff, "diff_ci_low": lo, "diff_ci_high": hi, "p_items": p_items, "p_seeds": p_seeds,
        "better": bool(better),
    }  # fmt: skip


def verdict(row: Any, baseline: str) -> str | None:
    """Better or worse than the baseline where the item-level test survives FDR (q < 0.05)."""
    if row.method == baseline or pd.isna(row.q_items):
        return None
    if row.q_items >= 0.05:
        return f"no different from {baseline}"
    return f"{'better' if row.better else 'worse'} than {baseline}"


def figure(rows: pd.DataFrame, set_: str, measure: str, stem: Path) -> list[Path]:
    """Each method's held-out result (with its interval) against the mean response length it selected."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in rows.itertuples():
        ax.errorbar(r.selection_tokens, r.mean, yerr=[[r.mean - r.ci_low], [r.ci_high - r.mean]], fmt="o", capsize=3)
        ax.annotate(r.method, (r.selection_tokens, r.mean), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("mean response tokens of the selection")
    ax.set_ylabel(
        f"{measure.replace('_', ' ')} on {set_}" + (" (lower is better)" if LOWER_IS_BETTER.get(measure) else "")
    )
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, stem)
