"""Figures drawn the way the paper draws them: layer index on x, one line per module,
one panel per group, the same y-scale across panels of one metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402

from gradspec.analysis.layerwise import layer_means  # noqa: E402
from gradspec.model.adapters import MODULES  # noqa: E402
from gradspec.store import Run  # noqa: E402

LABELS = {
    "nuclear_norm": "nuclear norm ||G||_*",
    "effective_rank": "effective rank",
    "frobenius_norm": "Frobenius norm ||G||_F",
    "spectral_norm": "spectral norm ||G||_2",
    "stable_rank": "stable rank",
}
COLORS = dict(zip(MODULES, plt.get_cmap("tab10").colors))


def layerwise_figure(
    runs: Mapping[str, Run],
    out: str | Path,
    metrics: Sequence[str] = ("nuclear_norm", "effective_rank"),
) -> list[Path]:
    """Write ``out``.png and ``out``.svg: rows are metrics, columns are groups (mean +- 1 s.e.)."""
    means = {label: layer_means(run, tuple(metrics)) for label, run in runs.items()}
    fig, axes = plt.subplots(
        len(metrics),
        len(runs),
        figsize=(4.2 * len(runs), 3.2 * len(metrics)),
        sharey="row",
        sharex=True,
        squeeze=False,
    )
    for col, (label, df) in enumerate(means.items()):
        n = int(runs[label].scalar("select count(*) from samples where status = 'ok'"))
        for row, metric in enumerate(metrics):
            ax = axes[row][col]
            for module in [m for m in MODULES if m in set(df["module"])]:
                d = df[df["module"] == module]
                ax.plot(d["layer"], d[f"{metric}_mean"], label=module, color=COLORS[module], lw=1.6)
                ax.fill_between(
                    d["layer"],
                    d[f"{metric}_mean"] - d[f"{metric}_se"].fillna(0),
                    d[f"{metric}_mean"] + d[f"{metric}_se"].fillna(0),
                    color=COLORS[module],
                    alpha=0.15,
                    lw=0,
                )
            if row == 0:
                ax.set_title(f"{label} (n={n})")
            if col == 0:
                ax.set_ylabel(LABELS.get(metric, metric))
            if row == len(metrics) - 1:
                ax.set_xlabel("layer")
            ax.grid(alpha=0.3)
    axes[0][-1].legend(title="module", fontsize=8, loc="best")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_suffix(".png"), out.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, dpi=130)
    plt.close(fig)
    return paths
