"""``gradspec compare``: groups of samples (run folders) side by side, as the papers compare them.

Every group is compared with the first (the baseline, "A"): per module and metric the mean
over layers of each sample, then group means, the difference with its bootstrap interval and
Welch's t test of it (one estimand: the test is of the difference the interval describes), with
Benjamini-Hochberg FDR across modules and metrics; beside it the rank reading (Mann-Whitney U and
Cliff's delta) and Cohen's d; and the
same difference with response length controlled (length-matched subsets; regression on log
response tokens). Per-layer tests are FDR-adjusted across modules and layers. Runs of models
with different depths are aligned by relative depth.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gradspec.analysis.beyond import beyond_table
from gradspec.analysis.curves import curve_differences, shape_similarity
from gradspec.analysis.figures import difference_figure, group_figure
from gradspec.analysis.groups import Group, layerwise_table, load_groups
from gradspec.analysis.length import (
    MATCHED_PAIRS,
    NATURAL,
    ONE_WINDOW,
    design_verdict,
    length_design,
    match_by_length,
    regress_on_length,
    verdict,
)
from gradspec.analysis.paired import paired_table, paired_warnings
from gradspec.analysis.primary import primary_table
from gradspec.analysis.stats import (
    bootstrap_diff_ci,
    bootstrap_mean_ci,
    cohens_d,
    fdr,
    mann_whitney,
    paired_means,
    welch,
)
from gradspec.analysis.steps import group_step_effects, has_steps
from gradspec.analysis.tables import write_table
from gradspec.artifacts import COMPARISON, identify_as, read_marker, write_marker
from gradspec.config.analysis import GRADIENT_METRICS, CompareConfig
from gradspec.config.fields import flatten

FIGURE_METRICS = (
    "nuclear_norm", "effective_rank", "nuclear_norm_sum", "frobenius_norm", "stable_rank", "top_share",
    "adjacent_cosine",
)  # fmt: skip
LENGTH_IMBALANCE = 1.5  # median response-length ratio that earns a warning
# Fewer length-matched pairs than this: the regression would only extrapolate across groups
# whose lengths do not overlap, so no length-controlled verdict is given.
MIN_MATCHED = 5
SMALL_N = 5  # fewer ok samples in a group earns a warning; fewer than 2 cannot be compared
SESOI = 0.1
"""The smallest effect of interest by default: a tenth of A's mean. A difference "disappears" only when
its 90% interval lies within it (equivalence); otherwise a non-significant difference is inconclusive."""


Reference = dict[tuple[str, str, str], tuple[float, float]]  # (b, metric, module) -> (diff, q_value)


def paired_by_length(a: pd.DataFrame, b: pd.DataFrame, la: pd.Series, lb: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The two groups' values in pairs of equal length: each sorted by (length, sample_id)."""

    def ordered(s: pd.DataFrame, lengths: pd.Series) -> np.ndarray:
        keyed = s.assign(length=lengths.loc[s["sample_id"]].to_numpy())
        return keyed.sort_values(["length", "sample_id"])["value"].to_numpy()

    return ordered(a, la), ordered(b, lb)


def summary_table(
    a: Group, b: Group, caliper: float, reference: Reference | None = None, sesoi: float = SESOI
) -> pd.DataFrame:
    """Per metric and module: group means over layers, difference, test, effect sizes, length control.

    Equivalence: the difference's 90% interval (``ci90_*``: of the design's difference at equal
    length, of the difference of means otherwise) against the smallest effect of interest,
    ``sesoi`` times A's mean (the ``sesoi`` column, in the metric's units): ``equivalent`` when
    the interval lies inside it, a two one-sided tests at 5% each.

    When the design holds length fixed, its own difference, interval and test are the headline
    (``design_diff``, ``design_ci_*``, ``p_design``): at one response window the groups are
    independent samples of one length (the difference of means, a bootstrap interval resampling
    each group, Welch's t test); truncation-matched pairs are compared pair by pair (the mean
    paired difference, its interval, the one-sample t test of the differences). At natural
    lengths the family is ``p_means`` (Welch's test of ``diff``). ``p`` and ``cliffs_delta`` are
    the rank reading (Mann-Whitney U), a different estimand, never the headline's test.
    ``length_control`` then
    says what equal length did to the difference the ``reference`` comparison found.
    """
    rows = []
    design = length_design(a.lengths.to_numpy(), b.lengths.to_numpy())
    for (metric, module), sa in a.samples.groupby(["metric", "module"]):
        sb = b.samples[(b.samples.metric == metric) & (b.samples.module == module)]
        if not sb.empty:
            rows.append(_reading(a, b, metric, module, sa, sb, design, caliper, sesoi))
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    # The family of tests FDR controls: the design's own test for each metric and module.
    table["q_value"] = fdr(table["p_design" if design != NATURAL else "p_means"].to_numpy())
    return _length_control(table, design, reference)


def _reading(
    a: Group,
    b: Group,
    metric: str,
    module: str,
    sa: pd.DataFrame,
    sb: pd.DataFrame,
    design: str,
    caliper: float,
    sesoi: float,
) -> dict[str, Any]:
    """One metric and module's row of ``summary_table``: every reading of B against A."""
    va, vb = sa["value"].to_numpy(), sb["value"].to_numpy()
    la, lb = a.lengths.loc[sa["sample_id"]].to_numpy(), b.lengths.loc[sb["sample_id"]].to_numpy()
    p, cliff = mann_whitney(va, vb)
    p_means = welch(va, vb)
    ia, ib = match_by_length(la, lb, caliper)
    p_matched = welch(va[ia], vb[ib]) if len(ia) >= 3 else np.nan  # of diff_matched, a difference of means
    adjusted = regress_on_length(va, vb, la, lb)
    by_design = (np.nan,) * 4
    if design == MATCHED_PAIRS:
        pa, pb = paired_by_length(sa, sb, a.lengths, b.lengths)
        by_design = paired_means(pa, pb)
        _, low90, high90 = bootstrap_mean_ci(pb - pa, level=0.90)
    else:  # independent groups: the difference of means (at one window, the design's own)
        diff, low, high = bootstrap_diff_ci(va, vb)
        _, low90, high90 = bootstrap_diff_ci(va, vb, level=0.90)
        if design == ONE_WINDOW:
            by_design = (float(diff[0]), float(low[0]), float(high[0]), p_means)
    margin = sesoi * abs(va.mean())
    equivalent = bool(-margin < float(low90[0]) and float(high90[0]) < margin) if margin > 0 else False
    return {
        "a": a.label, "b": b.label, "metric": metric, "module": module,
        "mean_a": va.mean(), "mean_b": vb.mean(), "diff": vb.mean() - va.mean(),
        "rel_diff": (vb.mean() - va.mean()) / abs(va.mean()) if va.mean() else np.nan,
        "p_means": p_means, "p": p, "cliffs_delta": cliff, "cohens_d": cohens_d(va, vb),
        "n_a": len(va), "n_b": len(vb),
        "design": design,
        "design_diff": by_design[0], "design_ci_low": by_design[1], "design_ci_high": by_design[2],
        "p_design": by_design[3],
        "ci90_low": float(low90[0]), "ci90_high": float(high90[0]), "sesoi": margin,
        "equivalent": equivalent,
        "matched_pairs": len(ia),
        "diff_matched": vb[ib].mean() - va[ia].mean() if len(ia) else np.nan,
        "p_matched": p_matched,
        "diff_adjusted": adjusted.effect, "p_adjusted": adjusted.p, "log_length_slope": adjusted.length_slope,
    }  # fmt: skip


def _length_control(table: pd.DataFrame, design: str, reference: Reference | None) -> pd.DataFrame:
    """``length_control``: at equal length by design, what equal length did to the ``reference``
    comparison's difference; at natural lengths, whether the difference survives length control
    (matching and regression, adjusted over modules and metrics as the raw reading is)."""
    if design != NATURAL:
        raw = [(reference or {}).get((r.b, r.metric, r.module), (None, None)) for r in table.itertuples()]
        table["length_control"] = [
            design_verdict(r.q_value, r.design_diff, raw_q, raw_diff, equivalent=r.equivalent)
            for r, (raw_diff, raw_q) in zip(table.itertuples(), raw)
        ]
        return table
    controlled = np.where(
        np.isnan(table["p_matched"]), table["p_adjusted"], np.fmax(table["p_adjusted"], table["p_matched"])
    )
    table["q_controlled"] = fdr(controlled)
    table["length_control"] = [
        "length control not possible: the groups' lengths barely overlap"
        if r.q_value < 0.05 and r.matched_pairs < MIN_MATCHED
        else verdict(r.q_value, r.diff, r.q_controlled, r.diff_adjusted)
        for r in table.itertuples()
    ]  # fmt: skip
    return table


def load_reference(path: str | Path) -> Reference:
    """(b, metric, module) -> (difference, q_value) of a comparison made at natural lengths."""
    summary = pd.read_csv(COMPARISON.file(path, "summary"))
    q = "q_value" if "q_value" in summary else "q"
    return {(r.b, r.metric, r.module): (float(r.diff), float(getattr(r, q))) for r in summary.itertuples()}


def per_layer_table(a: Group, b: Group, n_boot: int, seed: int) -> pd.DataFrame:
    """Per metric, module and layer: difference of means with interval and Welch's test of it, the
    rank reading's Cliff's delta; FDR per metric."""
    if a.n_layers != b.n_layers:
        return pd.DataFrame()  # layer indices of different models are not the same place
    rows = []
    for (metric, module), fa in a.frame.groupby(["metric", "module"]):
        fb = b.frame[(b.frame.metric == metric) & (b.frame.module == module)]
        if fb.empty:
            continue
        wa = fa.pivot_table(index="sample_id", columns="layer", values="value")
        wb = fb.pivot_table(index="sample_id", columns="layer", values="value").reindex(columns=wa.columns)
        diff, lo, hi = bootstrap_diff_ci(wa.to_numpy(), wb.to_numpy(), n_boot, seed=seed)
        for j, layer in enumerate(wa.columns):
            _, cliff = mann_whitney(wa[layer].to_numpy(), wb[layer].to_numpy())
            p = welch(wa[layer].to_numpy(), wb[layer].to_numpy())
            rows.append(
                {"a": a.label, "b": b.label, "metric": metric, "module": module, "layer": int(layer),
                 "diff": diff[j], "ci_low": lo[j], "ci_high": hi[j], "p": p, "cliffs_delta": cliff}
            )  # fmt: skip
    table = pd.DataFrame(rows)
    if not table.empty:
        table["q_value"] = table.groupby("metric")["p"].transform(lambda s: pd.Series(fdr(s.to_numpy()), index=s.index))
    return table


def beyond_of(a: Group, b: Group, n_boot: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What each gradient metric adds to loss and lengths in telling B from A (``analysis/beyond.py``),
    and the primary readings against the loss (``analysis/primary.py``)."""
    samples = pd.concat([a.samples, b.samples], ignore_index=True)
    samples = samples[samples.metric.isin(GRADIENT_METRICS)]
    covariates = pd.concat([a.sizes.assign(group=a.label), b.sizes.assign(group=b.label)], ignore_index=True)
    return (
        beyond_table(a.label, b.label, samples, covariates, n_boot, seed),
        primary_table(a.label, b.label, samples, covariates, n_boot, seed),
    )


def curve_table(layerwise: pd.DataFrame, a: Group, b: Group) -> pd.DataFrame:
    """Fast/slow-thinking style curve differences of each metric and module (same depth only)."""
    if a.n_layers != b.n_layers:
        return pd.DataFrame()
    rows = []
    for (metric, module), d in layerwise[layerwise.group == a.label].groupby(["metric", "module"]):
        other = layerwise[(layerwise.group == b.label) & (layerwise.metric == metric) & (layerwise.module == module)]
        if other.empty:
            continue
        ca = d.sort_values("layer")["mean"].to_numpy()
        cb = other.sort_values("layer")["mean"].to_numpy()
        rows.append({"a": a.label, "b": b.label, "metric": metric, "module": module, **curve_differences(ca, cb)})
    return pd.DataFrame(rows)


def shape_table(layerwise: pd.DataFrame) -> pd.DataFrame:
    """Curve-shape similarity of every pair of groups, per metric and module (depth-aligned)."""
    rows = []
    for (metric, module), d in layerwise.groupby(["metric", "module"]):
        curves = {
            g: (c.sort_values("depth")["depth"].to_numpy(), c.sort_values("depth")["mean"].to_numpy())
            for g, c in d.groupby("group", sort=False)
        }
        if len(curves) > 1:
            rows.append(shape_similarity(curves).assign(metric=metric, module=module))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def warnings_for(groups: Sequence[Group]) -> list[str]:
    """Skipped or failed samples, and length imbalance against the baseline."""
    out = []
    for g in groups:
        for run in g.runs:
            for status, n, reason in run.failure_summary():
                out.append(f"{g.label}: {n} sample(s) {status}: {reason}")
            out += [f"{g.label}: {run.path.name}: {w}" for w in run.read_warnings()]
    base = statistics.median(groups[0].lengths)
    for g in groups[1:]:
        ratio = statistics.median(g.lengths) / max(base, 1)
        if ratio > LENGTH_IMBALANCE or ratio < 1 / LENGTH_IMBALANCE:
            out.append(
                f"length imbalance: {g.label} responses are {ratio:.2g}x as long as {groups[0].label}'s (median "
                f"{statistics.median(g.lengths):.0f} vs {base:.0f} tokens); read the length-controlled columns"
            )
    if len({g.n_layers for g in groups}) > 1:
        out.append("models of different depth: figures use relative depth; per-layer tests are left out")
    for g in groups:
        n = g.samples["sample_id"].nunique()
        if n < SMALL_N:
            out.append(f"small group: {g.label} has {n} ok samples; intervals are wide and tests weak below {SMALL_N}")
    out += setting_differences(groups)
    return out


# Options that change what a gradient measures: groups computed with different values are
# compared on different terms (deliberate across models, an accident across data).
SETTINGS = (
    "model", "template", "system_prompt", "max_length", "truncation", "response_tokens", "record_windows", "dtype",
    "modules",
)  # fmt: skip


def setting_differences(groups: Sequence[Group]) -> list[str]:
    """One warning per setting whose value differs between the groups' runs."""
    out = []
    for key in SETTINGS:
        values = {g.label: [r.manifest.get("config", {}).get(key) for r in g.runs] for g in groups}
        distinct = {repr(v) for vs in values.values() for v in vs}
        if len(distinct) > 1:
            shown = "; ".join(
                f"{label}: {', '.join(map(str, dict.fromkeys(map(str, vs))))}" for label, vs in values.items()
            )
            out.append(f"the groups were computed with different {key} ({shown}): they are compared on different terms")
    return out


def paired_tables(groups: list[Group], by: str, config: CompareConfig) -> tuple[pd.DataFrame, list[str]]:
    """Every group read against the first prompt by prompt (``--pair-by``), and what the pairing left out."""
    tables, notes = [], []
    for b in groups[1:]:
        table, counts = paired_table(groups[0], b, by, config.sesoi, config.n_boot, config.seed)
        tables.append(table)
        notes += paired_warnings(groups[0].label, b.label, by, counts)
    return pd.concat(tables, ignore_index=True), notes


def described(g: Group) -> dict[str, Any]:
    """A group as the comparison's manifest records it: its runs, model, data and sizes."""
    return {
        "label": g.label,
        "runs": [str(r.path.resolve()) for r in g.runs],
        "model": g.manifest.get("model", {}).get("spec"),
        "model_name": g.manifest.get("model", {}).get("name"),
        "num_layers": g.n_layers,
        "data": g.manifest.get("data", {}).get("path"),
        "template": g.manifest.get("config", {}).get("template"),
        "response_tokens": g.manifest.get("config", {}).get("response_tokens"),
        "counts": g.manifest.get("counts"),
        "median_response_tokens": float(statistics.median(g.lengths)),
    }


def compare(config: CompareConfig) -> dict[str, Any]:
    """Write every table and figure of a comparison into ``config.out``; return its manifest."""
    groups = load_groups(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    layerwise = layerwise_table(groups, config.n_boot, config.seed)
    files += write_table(layerwise, COMPARISON.stem(out, "layerwise"))
    summaries, per_layers, curves = [], [], []
    reference = load_reference(config.reference) if config.reference is not None else None
    for b in groups[1:]:
        summaries.append(summary_table(groups[0], b, config.caliper, reference, config.sesoi))
        per_layers.append(per_layer_table(groups[0], b, config.n_boot, config.seed))
        curves.append(curve_table(layerwise, groups[0], b))
    summary = pd.concat(summaries, ignore_index=True)
    files += write_table(summary, COMPARISON.stem(out, "summary"))
    per_layer = pd.concat(per_layers, ignore_index=True)
    readings = [beyond_of(groups[0], g, config.n_boot, config.seed) for g in groups[1:]]
    for table, part in (
        (per_layer, "per_layer"), (pd.concat(curves, ignore_index=True), "curves"),
        (pd.concat([r[0] for r in readings], ignore_index=True), "beyond"),
        (pd.concat([r[1] for r in readings], ignore_index=True), "primary"),
    ):  # fmt: skip
        if not table.empty:
            files += write_table(table, COMPARISON.stem(out, part))
    pair_notes: list[str] = []
    if config.pair_by is not None:
        paired, pair_notes = paired_tables(groups, config.pair_by, config)
        files += write_table(paired, COMPARISON.stem(out, "paired"))
    shapes = shape_table(layerwise)
    if not shapes.empty:
        files += write_table(shapes, COMPARISON.stem(out, "curve_shapes"))
    if all(has_steps(r) for g in groups for r in g.runs):  # compute --steps: the step kinds of each group
        metrics = [m for m in ("nuclear_norm", "effective_rank") if m in config.metrics]
        kinds = [group_step_effects(g.label, g.runs, metrics, config.sesoi, config.n_boot, config.seed) for g in groups]
        files += write_table(pd.concat(kinds, ignore_index=True), COMPARISON.stem(out, "steps"))
    axis = "depth" if len({g.n_layers for g in groups}) > 1 else "layer"
    for metric in (m for m in FIGURE_METRICS if m in set(layerwise.metric) and config.figures):
        files += group_figure(layerwise, metric, out / f"layerwise_{metric}", axis)
        if not per_layer.empty:
            files += difference_figure(per_layer, metric, out / f"difference_{metric}")
    manifest = {
        "baseline": groups[0].label,
        "groups": [described(g) for g in groups],
        "axis": axis,
        "warnings": warnings_for(groups) + pair_notes,
        "files": sorted(str(p.relative_to(out)) for p in files),
    }
    return read_marker(write_marker(out, COMPARISON, flatten(config), **manifest)) or manifest


def headline(summary: pd.DataFrame, metrics: Sequence[str] = ("nuclear_norm", "effective_rank")) -> pd.DataFrame:
    """The rows people read first: the main metrics per module."""
    keep = ["a", "b", "metric", "module", "mean_a", "mean_b", "rel_diff", "q_value", "cliffs_delta", "length_control"]
    return summary[summary.metric.isin(metrics)][keep]


def load_comparison(path: str | Path) -> dict[str, Any]:
    """A comparison folder's marker (its groups, warnings and files), refused unless it is one."""
    return identify_as(path, COMPARISON).marker
