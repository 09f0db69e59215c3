"""Tables written twice: CSV for programs, Markdown for people (numbers to 4 significant digits)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from gradspec.files import write_csv


def fmt(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; pipes in cells are escaped."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, stem: Path) -> list[Path]:
    """``stem``.csv and ``stem``.md."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, md = stem.with_suffix(".csv"), stem.with_suffix(".md")
    write_csv(df, csv)
    md.write_text(markdown(df), encoding="utf-8")
    return [csv, md]
