"""What an experiment found, in a few lines: each comparison's findings and each selection
method's verdict against its baseline. Read from the files the steps wrote."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gradspec.analysis.findings import comparison_findings
from gradspec.artifacts import COMPARISON, SELECTION_RESULTS, read_marker


def findings(root: str | Path) -> list[str]:
    """One line per finding of every comparison and every trained method under ``root``."""
    root = Path(root)
    out: list[str] = []
    for folder in sorted((root / "comparisons").glob("*")):
        if read_marker(COMPARISON.marker_path(folder)) is not None and COMPARISON.file(folder, "summary").exists():
            out += [f"{folder.name}: {s}" for s in comparison_findings(folder)]
    results = SELECTION_RESULTS.file(root / "trainings" / "summary", "table")
    if results.exists():
        table = pd.read_csv(results)
        for r in table.dropna(subset=["verdict"]).itertuples() if "verdict" in table else ():
            out.append(f"training {r.method}: {r.measure} on {r.set} {r.mean:.4g}, {r.verdict}")
    return out
