"""A length-response curve: one comparison made at several response windows K.

At window K both groups have exactly K response tokens per sample (samples with fewer are
left out), so the difference at each K is free of length by design. Read across K, it shows at
what length a difference appears, and whether it grows or shrinks with length. The inputs
are ``compare`` folders whose runs were computed with ``--response-tokens K``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from gradspec.analysis.compare import load_comparison
from gradspec.analysis.figures import LABELS, difference_panels
from gradspec.analysis.tables import write_table
from gradspec.artifacts import COMPARISON, LENGTH_CURVE, write_marker
from gradspec.errors import ConfigError

CURVE_METRICS = ("nuclear_norm", "effective_rank", "nuclear_norm_sum")
COLUMNS = [
    "window",
    "a",
    "b",
    "metric",
    "module",
    "n_a",
    "n_b",
    "mean_a",
    "mean_b",
    "design_diff",
    "design_ci_low",
    "design_ci_high",
    "rel_diff",
    "rel_ci_low",
    "rel_ci_high",
    "p_design",
    "q_value",
    "length_control",
]


def window_of(comparison: Path) -> int:
    """The response window every run of a comparison was computed at (refused when they differ)."""
    windows = {g.get("response_tokens") for g in load_comparison(comparison)["groups"]}
    if len(windows) != 1 or None in windows:
        raise ConfigError(
            f"{comparison}: a length-response curve needs comparisons of runs computed at one response window "
            f"each (--response-tokens K); found {sorted(map(str, windows))}"
        )
    return int(windows.pop())


def length_curve(comparisons: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Write ``length_curve.csv/.md`` and one figure per metric; return the files and windows."""
    out = Path(out)
    parts = []
    for folder in map(Path, comparisons):
        summary = pd.read_csv(COMPARISON.file(folder, "summary")).assign(window=window_of(folder))
        parts.append(summary)
    table = pd.concat(parts, ignore_index=True).sort_values(["b", "metric", "module", "window"])
    scale = table["mean_a"].abs().where(table["mean_a"] != 0)
    table["rel_diff"] = table["design_diff"] / scale
    table["rel_ci_low"], table["rel_ci_high"] = table["design_ci_low"] / scale, table["design_ci_high"] / scale
    table = table[COLUMNS].reset_index(drop=True)
    files = write_table(table, LENGTH_CURVE.stem(out, "table"))
    drawable = table.dropna(subset=["rel_diff"])  # a window where a group had too few samples has no difference
    for metric in (m for m in CURVE_METRICS if m in set(drawable.metric)):
        files += figure(drawable[drawable.metric == metric], metric, out / f"length_curve_{metric}")
    result = {"windows": [int(w) for w in sorted(set(table.window))], "files": [str(f) for f in files]}
    inputs = [str(Path(c).resolve()) for c in comparisons]
    write_marker(
        out,
        LENGTH_CURVE,
        {"comparisons": inputs},
        windows=result["windows"],
        files=sorted(str(Path(f).relative_to(out)) for f in files),
    )
    return result


def figure(rows: pd.DataFrame, metric: str, stem: Path) -> list[Path]:
    """Relative paired difference B - A in % of A (with its 95% interval) against the window, one
    line per module, one panel per group B; the window axis is logarithmic."""
    d = rows.assign(pct=100 * rows.rel_diff, pct_low=100 * rows.rel_ci_low, pct_high=100 * rows.rel_ci_high)
    labels = (
        "response window K (tokens carrying loss)",
        f"difference in {LABELS.get(metric, metric)} (% of A)",
        ", at equal length",
    )
    return difference_panels(d.sort_values("window"), "window", ("pct", "pct_low", "pct_high"), labels, stem, True)
