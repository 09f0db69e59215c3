"""What selecting by each score did to the fine-tuned model: every method's held-out results over
its seeds, with bootstrap intervals, the difference to a baseline method (random selection), and
each method's result against the mean response length of what it trained on (length may explain
the ranking again).

Inputs are ``gradspec train`` folders. Two sources of noise, two tests, and a verdict needs both:
  items  the same held-out items for every method: the difference per item, averaged over seeds,
         bootstrapped and tested with the Wilcoxon signed-rank test (would other items agree?);
  seeds  a fine-tune's mean moves with its seed by as much as most differences between methods:
         the method's seed means against the baseline's draws, read against the baseline's own
         spread (random selection's seeds change the draw as well as the training order, so they
         spread most; a method whose seeds change only the order spreads less, and pooling the two
         would shrink random's uncertainty). With one seed it is the method's place in the
         draws' prediction interval. The table also gives each method's percentile among the
         baseline's draws (the share of draws it beats) and the draws' mean and SD.
         Would another draw agree?
Each test's p-values over every method and held-out measure are adjusted together
(Benjamini-Hochberg q-values: many methods against one baseline on several sets would otherwise
find a "winner" by chance).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from gradspec.analysis.figures import new_figure, save_figure
from gradspec.analysis.stats import bootstrap_mean_ci, fdr, wilcoxon_paired
from gradspec.analysis.tables import write_table
from gradspec.artifacts import SELECTION_RESULTS, TRAINING, write_marker
from gradspec.errors import ConfigError

LOWER_IS_BETTER = {
    "response_loss": True,
    "answer_loss": True,
    "accuracy": False,
    "preference_accuracy": False,
    "quality_gap": True,
}


@dataclass(frozen=True)
class Training:
    """One fine-tune of the experiment: what it stands for and where its results are."""

    method: str
    seed: int
    folder: Path


def by_rate(finished: Sequence[tuple[float | None, Training]]) -> dict[float, list[Training]]:
    """The finished trainings grouped by learning rate, for one summary per rate. An untrained one
    (rate ``None``: zero epochs, the model as it is) belongs to no rate and so to every one: each
    rate's table then shows what its steps added to the untrained model. With no trained rate it
    stands alone under rate 0."""
    groups: dict[float, list[Training]] = {}
    for rate, t in finished:
        if rate is not None:
            groups.setdefault(rate, []).append(t)
    untrained = [t for rate, t in finished if rate is None]
    if untrained and not groups:
        groups[0.0] = []
    for group in groups.values():
        group.extend(untrained)
    return groups


def items_of(trainings: Sequence[Training]) -> pd.DataFrame:
    """method, seed, set, measure, item, value, the selection's mean response tokens a record, the
    response tokens it trained on in all and its learning rate (NaN from trainings that did not
    record them, and from an untrained model, which no rate made)."""
    frames = []
    for t in trainings:
        result = json.loads(TRAINING.marker_path(t.folder).read_text())
        items = pd.read_csv(TRAINING.file(t.folder, "items"))
        config = result.get("config", {})
        frames.append(
            items.assign(
                method=t.method,
                seed=t.seed,
                selection_tokens=result["selection"]["mean_response_tokens"],
                tokens_trained=result.get("tokens_trained", float("nan")),
                learning_rate=config.get("learning_rate", float("nan")) if config.get("epochs", 1) else float("nan"),
            )
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
    trained = items.groupby("method")["tokens_trained"].mean()
    rows = []
    seeds = per_seed.groupby("method")["seed"].nunique()
    for (method, set_, measure), d in per_item.groupby(["method", "set", "measure"]):
        mean, lo, hi = bootstrap_mean_ci(d["value"].to_numpy(), n_boot)
        row: dict[str, Any] = {
            "method": method,
            "set": set_,
            "measure": measure,
            "mean": float(mean[0]),
            "ci_low": float(lo[0]),
            "ci_high": float(hi[0]),
            "items": len(d),
            "seeds": int(seeds[method]),
            "selection_tokens": float(tokens[method]),
            "tokens_trained": float(trained[method]),
        }
        if baseline is not None and method != baseline:
            row |= versus(per_item, method, baseline, set_, measure, n_boot)
            row |= against_draws(per_seed, method, baseline, set_, measure)
        rows.append(row)
    table = pd.DataFrame(rows)
    if baseline is not None and "p_items" in table:
        table["q_items"] = fdr(table["p_items"].to_numpy())
        table["q_seeds"] = fdr(table["p_seeds"].to_numpy())
        table["verdict"] = [verdict(r, baseline) for r in table.itertuples()]
        table = table.drop(columns="better")
    table = best_first(table)
    rows = table.to_dict("records")
    files = write_table(table, SELECTION_RESULTS.stem(out, "table"))
    for (set_, measure), d in table.groupby(["set", "measure"]):
        files += figure(d, set_, measure, out / f"selection_vs_length_{set_}_{measure}", baseline)
    curves = curves_of(trainings)
    if not curves.empty:
        files += write_table(curves, SELECTION_RESULTS.stem(out, "curves"))
        for set_, d in curves.groupby("set"):
            files += curve_figure(d, set_, out / f"learning_curve_{set_}", baseline)
    config = {
        "trainings": [[t.method, t.seed, str(t.folder.resolve())] for t in trainings],
        "baseline": baseline,
        # The rate can decide whether a selection pays: a reader of the results needs it.
        "learning_rates": sorted(float(r) for r in items["learning_rate"].dropna().unique()),
    }
    write_marker(out, SELECTION_RESULTS, config, files=sorted(str(Path(f).relative_to(out)) for f in files))
    return {"rows": rows, "files": [str(f) for f in files]}


def best_first(table: pd.DataFrame) -> pd.DataFrame:
    """The rows by held-out set and measure, each block from its best mean to its worst (a
    reader looks for the top of the ranking, not for a method's name)."""
    order = table["mean"].where(table["measure"].map(lambda m: LOWER_IS_BETTER.get(m, True)), -table["mean"])
    return (
        table.assign(_order=order)
        .sort_values(["set", "measure", "_order", "method"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def versus(per_item: pd.DataFrame, method: str, baseline: str, set_: str, measure: str, n_boot: int) -> dict[str, Any]:
    """The method minus the baseline, per item (paired, seed-averaged)."""
    here = per_item[(per_item.set == set_) & (per_item.measure == measure)]
    a, b = (here[here.method == who].set_index("item")["value"] for who in (baseline, method))
    common = a.index.intersection(b.index)
    diff, lo, hi, p_items = wilcoxon_paired(a.loc[common].to_numpy(), b.loc[common].to_numpy(), n_boot)
    better = (diff < 0) if LOWER_IS_BETTER.get(measure, True) else (diff > 0)
    return {
        f"diff_vs_{baseline}": diff,
        "diff_ci_low": lo,
        "diff_ci_high": hi,
        "p_items": p_items,
        "better": bool(better),
    }


def against_draws(per_seed: pd.DataFrame, method: str, baseline: str, set_: str, measure: str) -> dict[str, float]:
    """The method's seed means against the baseline's draws: ``p_seeds``, two-sided, of the difference of
    means with the baseline's own variance for both (s_b^2 (1/n_b + 1/n_m), n_b - 1 degrees of freedom;
    NaN with fewer than two draws), ``percentile`` (the share of draws the method's mean beats, ties half),
    and the draws' mean and SD."""
    d = per_seed[(per_seed.set == set_) & (per_seed.measure == measure)]
    draws, own = d[d.method == baseline]["value"].to_numpy(), d[d.method == method]["value"].to_numpy()
    nan = float("nan")
    if len(draws) == 0 or len(own) == 0:
        return {"p_seeds": nan, "percentile": nan, "draws_mean": nan, "draws_sd": nan}
    x = float(own.mean())
    beats = (draws > x) if LOWER_IS_BETTER.get(measure, True) else (draws < x)
    out = {
        "percentile": float((beats.sum() + 0.5 * (draws == x).sum()) / len(draws)),
        "draws_mean": float(draws.mean()),
        "draws_sd": float(draws.std(ddof=1)) if len(draws) > 1 else nan,
    }
    if len(draws) < 2:
        return out | {"p_seeds": nan}
    diff = x - out["draws_mean"]
    se = out["draws_sd"] * np.sqrt(1 / len(draws) + 1 / len(own))
    if se == 0:
        return out | {"p_seeds": 1.0 if diff == 0 else 0.0}
    return out | {"p_seeds": float(2 * sps.t.sf(abs(diff) / se, len(draws) - 1))}


def detectable(draws_sd: float, n_draws: int, n_seeds: int, alpha: float = 0.05) -> float:
    """The smallest difference from the draws' mean that ``against_draws`` calls significant at
    ``alpha`` (before the FDR adjustment) for a method with ``n_seeds`` seeds: what a null result
    of that design could have seen."""
    if n_draws < 2 or not draws_sd > 0:
        return float("nan")
    return float(sps.t.ppf(1 - alpha / 2, n_draws - 1) * draws_sd * np.sqrt(1 / n_draws + 1 / n_seeds))


def verdict(row: Any, baseline: str) -> str | None:
    """Better or worse than the baseline where both the item-level and the seed-level test survive
    FDR (q < 0.05): a difference other items or another seed would not repeat is not a finding."""
    if row.method == baseline or pd.isna(row.q_items):
        return None
    if row.q_items >= 0.05 or not row.q_seeds < 0.05:
        return f"no different from {baseline}"
    return f"{'better' if row.better else 'worse'} than {baseline}"


def across_rates(tables: Mapping[float, pd.DataFrame], planned: Sequence[float] = ()) -> pd.DataFrame:
    """Each method's verdict on each held-out measure at every learning rate it was trained at, and
    whether it pays at every rate, at some or at none: a selection that beats random's draws at
    one rate only is a finding about that rate, not about the selection. ``planned`` rates that have
    no summary yet count as not trained, and a reading with any untrained rate says "so far"."""
    rates = sorted({*tables, *planned})
    frames = [t.assign(rate=r) for r, t in tables.items() if "verdict" in t]
    if not frames:
        return pd.DataFrame()
    rows = []
    for (method, set_, measure), d in (
        pd.concat(frames).dropna(subset=["verdict"]).groupby(["method", "set", "measure"], sort=False)
    ):
        said = dict(zip(d["rate"], d["verdict"].str.split(" ").str[0]))  # better / worse / no
        pays = [r for r in rates if said.get(r) == "better"]
        worse = [r for r in rates if said.get(r) == "worse"]
        ran = [r for r in rates if r in said]
        # "every rate" only when it ran at every rate: one rate of three that pays is not every rate.
        reading = "at every rate" if len(pays) == len(rates) else f"at {', '.join(f'{r:g}' for r in pays) or 'none'}"
        if len(ran) < len(rates):
            reading += f" so far ({len(ran)} of {len(rates)} rates trained)"
        row: dict[str, Any] = {"method": method, "set": set_, "measure": measure}
        row |= {f"at {r:g}": {"no": "no different"}.get(said.get(r, ""), said.get(r, "not trained")) for r in rates}
        row |= {
            "pays": reading,
            "worse at": ", ".join(f"{r:g}" for r in worse) or "none",
        }
        rows.append(row)
    return pd.DataFrame(rows)


def findings(table: pd.DataFrame) -> list[str]:
    """One sentence per held-out measure: the methods better and worse than the baseline (by the
    verdict), each with its difference and the response tokens it trains on, since length may
    explain the ranking."""
    column = next((c for c in table.columns if c.startswith("diff_vs_")), None)
    if column is None or "verdict" not in table:
        return []
    baseline = column.removeprefix("diff_vs_")
    out = []
    for (set_, measure), d in table.groupby(["set", "measure"], sort=False):
        judged = d.dropna(subset=["verdict"])

        def named(word: str, judged: pd.DataFrame = judged) -> str:
            hits = judged[judged.verdict.str.startswith(word)].sort_values(column)
            return (
                ", ".join(
                    f"{r.method} ({getattr(r, column):+.3g}; {beats(r)}{tokens_of(r)})" for r in hits.itertuples()
                )
                or "none"
            )

        mine = d[d.method == baseline]
        own = f" ({tokens_of(next(mine.itertuples()))})" if not mine.empty else ""
        same = int(judged.verdict.str.startswith("no different").sum())
        out.append(
            f"{measure.replace('_', ' ')} on {set_}, against {baseline}{own}: better: {named('better')}; "
            f"worse: {named('worse')}; no different: {same} method{'' if same == 1 else 's'}."
        )
    return out


def tokens_of(row: Any) -> str:
    """What a method trained on: response tokens a record, and in all where the training said."""
    trained = getattr(row, "tokens_trained", float("nan"))
    in_all = f", {trained:.0f} in all" if math.isfinite(trained) and trained > 0 else ""
    return f"{row.selection_tokens:.0f} tokens a record{in_all}"


def curves_of(trainings: Sequence[Training]) -> pd.DataFrame:
    """method, seed, step, set, value: the held-out response loss along each training that measured a
    learning curve (``train --eval-at``), with the untrained model's (a method named ``base``) at step 0."""
    frames = []
    for t in trainings:
        file = TRAINING.file(t.folder, "curve")
        if file.exists():
            d = pd.read_csv(file)
            frames.append(d[d.measure == "response_loss"].assign(method=t.method, seed=t.seed))
    if not frames:
        return pd.DataFrame()
    curves = pd.concat(frames, ignore_index=True)
    base = [t for t in trainings if t.method == "base"]
    if base:
        start = pd.read_csv(TRAINING.file(base[0].folder, "eval"))
        start = start[start.measure == "response_loss"]
        for (method, seed), _ in curves.groupby(["method", "seed"]):
            frames.append(start.assign(step=0, method=method, seed=seed))
        curves = pd.concat(frames, ignore_index=True)
    return curves[["method", "seed", "step", "set", "value", "n"]].sort_values(["method", "seed", "step"])


def curve_figure(curves: pd.DataFrame, set_: str, stem: Path, baseline: str | None) -> list[Path]:
    """Held-out response loss against optimiser steps: each method's mean over its seeds, the
    baseline's draws as a band (their range) around their mean."""
    fig, ax = new_figure((6.4, 4.2))
    for method, d in curves.groupby("method"):
        by_step = d.groupby("step")["value"]
        mean = by_step.mean()
        if method == baseline and d["seed"].nunique() > 1:
            ax.fill_between(mean.index, by_step.min(), by_step.max(), color="grey", alpha=0.25, lw=0)
            ax.plot(mean.index, mean.to_numpy(), color="black", lw=1.5, label=f"{method} ({d['seed'].nunique()} draws)")
        else:
            ax.plot(mean.index, mean.to_numpy(), marker="o", ms=3, lw=1, label=method)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(f"response loss on {set_} (lower is better)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, stem)


def beats(row: Any) -> str:
    """``better than 92% of the draws; `` where the table has the baseline's draws."""
    share = getattr(row, "percentile", float("nan"))
    return "" if pd.isna(share) else f"better than {share:.0%} of the draws; "


def figure(rows: pd.DataFrame, set_: str, measure: str, stem: Path, baseline: str | None = None) -> list[Path]:
    """Each method's held-out result against the mean response length it trained on.

    With a baseline, the paired difference to it (seed-averaged per item, bootstrap interval): the
    items' own spread, shared by every method, would hide differences a hundred times smaller.
    """
    column = f"diff_vs_{baseline}"
    paired = baseline is not None and column in rows
    fig, ax = new_figure((6.4, 4.2))
    for r in rows.itertuples():
        if paired and r.method == baseline:
            y, low, high = 0.0, 0.0, 0.0
        elif paired:
            y, low, high = getattr(r, column), r.diff_ci_low, r.diff_ci_high
        else:
            y, low, high = r.mean, r.ci_low, r.ci_high
        if pd.isna(y):
            continue
        ax.errorbar(r.selection_tokens, y, yerr=[[y - low], [high - y]], fmt="o", capsize=3)
        ax.annotate(r.method, (r.selection_tokens, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if paired:
        ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("mean response tokens the selection trains on")
    what = f"{measure.replace('_', ' ')} on {set_}"
    if paired:
        what = f"{what}\nminus {baseline}'s"
    ax.set_ylabel(what + (" (lower is better)" if LOWER_IS_BETTER.get(measure) else " (higher is better)"), fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, stem)
