"""Figures drawn the way the papers draw them: layer (or relative depth) on x, one line per
module with its 95% bootstrap band, one panel per group, the same y-scale across the panels
of a metric; and the difference view, B minus A per layer with its interval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from gradspec.analysis.groups import layerwise_table, load_group
from gradspec.store.contract import MODULES
from gradspec.store.query import Run

LABELS = {
    "nuclear_norm": "nuclear norm ||G||_*",
    "effective_rank": "effective rank",
    "frobenius_norm": "Frobenius norm ||G||_F",
    "spectral_norm": "spectral norm ||G||_2",
    "stable_rank": "stable rank ||G||_F^2 / ||G||_2^2",
    "top_share": "sigma_1 / sum(sigma)",
    "nuclear_norm_sum": "nuclear norm x T (sum-reduced loss)",
    "adjacent_cosine": "cosine(G_layer, G_layer+1)",
    "same_layer_cosine": "cosine within a layer",
    "distant_cosine": "cosine(G_layer, G_layer+2)",
    "probe_cosine": "cosine with another sample's G",
}
Layout = Literal["constrained", "compressed", "tight"]
LINE_ORDER = (*MODULES, "q*o", "k*v")
COLORS: dict[str, Any] = dict(
    zip(LINE_ORDER, cast(Sequence[Any], cast(ListedColormap, matplotlib.colormaps["tab10"]).colors))
)
AXIS_LABELS = {"layer": "layer", "depth": "relative depth (layer / (layers - 1))"}


def new_figure(figsize: tuple[float, float], layout: Layout | None = None, **grid: Any) -> tuple[Figure, Any]:
    """A figure and its axes (``Figure.subplots`` arguments), made without pyplot: figures are only
    ever written to files, so no backend is chosen and no global state is kept."""
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(**grid)


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """``stem``.png and ``stem``.svg."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, dpi=130)
    return paths


def _lines(ax: Axes, d: pd.DataFrame, x: str, y: str, lo: str, hi: str) -> None:
    for module in [m for m in LINE_ORDER if m in set(d["module"])]:
        m = d[d["module"] == module].sort_values(x)
        ax.plot(m[x], m[y], label=module, color=COLORS[module], lw=1.6)
        ax.fill_between(m[x], m[lo], m[hi], color=COLORS[module], alpha=0.15, lw=0)


def layerwise_panels(
    layerwise: pd.DataFrame, metrics: Sequence[str], stem: str | Path, axis: str = "layer"
) -> list[Path]:
    """Rows are metrics, columns are groups; ``layerwise`` is ``compare.layerwise_table``'s frame."""
    groups = list(dict.fromkeys(layerwise["group"]))
    fig, axes = new_figure(
        (4.2 * len(groups), 3.2 * len(metrics)),
        nrows=len(metrics),
        ncols=len(groups),
        sharey="row",
        sharex=True,
        squeeze=False,
    )
    for col, group in enumerate(groups):
        for row, metric in enumerate(metrics):
            ax = axes[row][col]
            d = layerwise[(layerwise.group == group) & (layerwise.metric == metric)]
            _lines(ax, d.fillna({"ci_low": d["mean"], "ci_high": d["mean"]}), axis, "mean", "ci_low", "ci_high")
            if row == 0:
                n = int(d["n"].max()) if len(d) else 0
                ax.set_title(f"{group} (n={n})")
            if col == 0:
                ax.set_ylabel(LABELS.get(metric, metric))
            if row == len(metrics) - 1:
                ax.set_xlabel(AXIS_LABELS[axis])
            ax.grid(alpha=0.3)
    axes[0][-1].legend(title="module", fontsize=8, loc="best")
    fig.tight_layout()
    return save_figure(fig, Path(stem))


def group_figure(layerwise: pd.DataFrame, metric: str, stem: str | Path, axis: str = "layer") -> list[Path]:
    """One metric, one panel per group."""
    return layerwise_panels(layerwise, [metric], stem, axis)


def difference_panels(
    d: pd.DataFrame,
    x: str,
    columns: tuple[str, str, str],
    labels: tuple[str, str, str],
    stem: str | Path,
    log_x: bool = False,
) -> list[Path]:
    """B minus A along ``x``, one line per module with its interval, one panel per pair (a, b).

    ``columns``: the difference and its interval's low and high ends; ``labels``: the x axis, the
    y axis and what follows "B minus A" in each panel's title.
    """
    pairs = list(dict.fromkeys(zip(d["a"], d["b"])))
    fig, axes = new_figure((4.8 * len(pairs), 3.4), nrows=1, ncols=len(pairs), sharey=True, squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs):
        _lines(ax, d[(d.a == a) & (d.b == b)], x, *columns)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_title(f"{b} minus {a}{labels[2]}")
        ax.set_xlabel(labels[0])
        if log_x:  # windows double from one to the next
            ticks = sorted(set(d[x]))
            ax.set_xscale("log", base=2)
            ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(labels[1])
    axes[0][-1].legend(title="module", fontsize=8, loc="best")
    fig.tight_layout()
    return save_figure(fig, Path(stem))


def difference_figure(per_layer: pd.DataFrame, metric: str, stem: str | Path) -> list[Path]:
    """B minus A per layer and module, with 95% bootstrap intervals; one panel per B."""
    d = per_layer[per_layer.metric == metric]
    labels = ("layer", f"difference in {LABELS.get(metric, metric)}", "")
    return difference_panels(d, "layer", ("diff", "ci_low", "ci_high"), labels, stem)


def layerwise_figure(
    runs: Mapping[str, Run], out: str | Path, metrics: Sequence[str] = ("nuclear_norm", "effective_rank")
) -> list[Path]:
    """``out``.png and ``out``.svg for runs that have not been through ``compare`` (the demo)."""
    groups = [load_group(label, [run.path], metrics) for label, run in runs.items()]
    return layerwise_panels(layerwise_table(groups, n_boot=200, seed=0), metrics, out)


def steps_figure(
    runs: Mapping[int, Run], stem: str | Path, metrics: Sequence[str] = ("nuclear_norm", "effective_rank")
) -> list[Path]:
    """A probe set's layer-wise means at several training steps: rows are metrics, columns modules,
    one line per step (darker later), so how the gradient's spectrum changes while the model learns
    is one picture."""
    means = {
        step: run.sql(
            "select module, layer, " + ", ".join(f"avg({m}) as {m}" for m in metrics) + " from layer_stats "
            "group by module, layer order by module, layer"
        ).df()
        for step, run in sorted(runs.items())
    }
    modules = [m for m in LINE_ORDER if any(m in set(d.module) for d in means.values())]
    fig, axes = new_figure(
        (3.6 * len(modules), 2.8 * len(metrics)),
        nrows=len(metrics),
        ncols=len(modules),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    shades = matplotlib.colormaps["viridis"]
    steps = list(means)
    for i, metric in enumerate(metrics):
        for j, module in enumerate(modules):
            ax = axes[i][j]
            for k, step in enumerate(steps):
                d = means[step][means[step].module == module]
                ax.plot(d.layer, d[metric], color=shades(k / max(len(steps) - 1, 1)), lw=1.4, label=f"step {step}")
            ax.set_title(f"{module}: {LABELS.get(metric, metric)}", fontsize=9)
            ax.set_xlabel("layer")
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    return save_figure(fig, Path(stem))
