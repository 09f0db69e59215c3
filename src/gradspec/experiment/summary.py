"""What an experiment found, in a few lines: each comparison's findings and each selection
method's verdict against its baseline. Read from the files the stages wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from gradspec.analysis.findings import comparison_findings
from gradspec.analysis.unify import SAMPLE, WITHIN_READINGS
from gradspec.artifacts import COMPARISON, CORRELATION, SELECTION_RESULTS, read_marker


def findings(root: str | Path) -> list[str]:
    """One line per finding of every comparison and every trained method under ``root``."""
    root = Path(root)
    out: list[str] = []
    for folder in sorted((root / "comparisons").glob("*")):
        if read_marker(COMPARISON.marker_path(folder)) is not None and COMPARISON.file(folder, "summary").exists():
            out += [f"{folder.name}: {s}" for s in comparison_findings(folder)]
    for folder in sorted((root / "correlations").glob("*")):
        within = CORRELATION.file(folder, "within")
        if within.exists():
            out += [f"{folder.name}: {line}" for line in within_lines(pd.read_csv(within))]
    results = SELECTION_RESULTS.file(root / "trainings" / "summary", "table")
    if results.exists():
        table = pd.read_csv(results)
        for r in table.dropna(subset=["verdict"]).itertuples() if "verdict" in table else ():
            out.append(f"training {r.method}: {r.measure} on {r.set} {r.mean:.4g}{draws_clause(r)}, {r.verdict}")
    return out


def draws_clause(r: Any) -> str:
    """How docs/selection.md reads a method against random draws: its percentile among them, its
    difference to their mean in units of their own SD, and the item-by-item difference with its test."""
    parts = []
    if pd.notna(getattr(r, "percentile", float("nan"))):
        parts.append(f"better than {r.percentile:.0%} of the draws")
    sd = getattr(r, "draws_sd", float("nan"))
    if pd.notna(sd) and sd > 0:
        parts.append(f"{(r.mean - r.draws_mean) / sd:+.1f} of their SDs from their mean {r.draws_mean:.4g}")
    diff = next((c for c in r._fields if c.startswith("diff_vs_")), None)
    if diff is not None and pd.notna(getattr(r, "q_items", float("nan"))):
        parts.append(
            f"item by item {getattr(r, diff):+.3g} [{r.diff_ci_low:+.3g}, {r.diff_ci_high:+.3g}], q {r.q_items:.2g}"
        )
    return f" ({'; '.join(parts)})" if parts else ""


def within_lines(table: pd.DataFrame) -> list[str]:
    """One line per quality field and reading of a within-block table: each module of a gradient
    metric on its own line, the loss and the response length once."""
    out = []
    for r in table[table.reading.isin(WITHIN_READINGS)].itertuples():
        module = "" if r.module == SAMPLE else f" of {r.module}"
        out.append(
            f"within blocks, {r.reading}{module} against {r.quality}: mean rho {r.mean_rho:+.3f} "
            f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}] over {r.blocks} blocks, q {r.q_value:.2g}, rho > 0 in "
            f"{r.share_positive:.0%}"
        )
    return out
