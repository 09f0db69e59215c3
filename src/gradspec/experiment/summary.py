"""What an experiment found, in a few lines: each comparison's findings and each selection
method's verdict against its baseline. Read from the files the steps wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from gradspec.analysis.findings import sentences


def findings(root: str | Path) -> list[str]:
    """One line per finding of every comparison and every trained method under ``root``."""
    root = Path(root)
    out: list[str] = []
    for folder in sorted((root / "comparisons").glob("*")):
        if (folder / "summary.csv").exists() and (folder / "comparison.json").exists():
            manifest = json.loads((folder / "comparison.json").read_text())
            out += [f"{folder.name}: {s}" for s in sentences(pd.read_csv(folder / "summary.csv"), manifest)]
    results = root / "trainings" / "summary" / "selection_results.csv"
    if results.exists():
        table = pd.read_csv(results)
        for r in table.dropna(subset=["verdict"]).itertuples() if "verdict" in table else ():
            out.append(f"training {r.method}: {r.measure} on {r.set} {r.mean:.4g}, {r.verdict}")
    return out
