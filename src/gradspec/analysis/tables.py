"""Tables written twice: CSV for programs, Markdown for people (numbers to 4 significant digits)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd


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


FORMULA = re.compile(r"^[=+@\t\r]|^-(?![\d.])")


def inert(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (``=HYPERLINK(...)``, a group label taken
    from a folder name) with a leading apostrophe, so it is shown, not run; numbers untouched."""
    return "'" + value if isinstance(value, str) and FORMULA.match(value) else value


def write_table(df: pd.DataFrame, stem: Path) -> list[Path]:
    """``stem``.csv and ``stem``.md."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, md = stem.with_suffix(".csv"), stem.with_suffix(".md")
    text = [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c])]
    safe = df.assign(**{c: df[c].map(inert) for c in text}) if text else df
    safe.to_csv(csv, index=False)
    md.write_text(markdown(df), encoding="utf-8")
    return [csv, md]
