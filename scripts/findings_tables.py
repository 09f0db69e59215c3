"""Print the tables of docs/findings.md from the experiment folders (after `gradspec experiment`).

    .venv/bin/python scripts/findings_tables.py [experiments] [--only quality,reasoning]

For each comparison NAME of an experiment, three readings of nuclear norm and effective rank:
  raw         NAME at natural lengths: B's mean over A's per module (median over modules) and
              the modules whose difference survives FDR (q < 0.05);
  matched     NAME-matched, truncation-matched pairs: the mean paired difference in % of A
              (median over modules), the modules with q < 0.05 and the verdict against raw;
  curve       NAME@K at response windows K: the difference in % of A per window (median over
              modules; * where at least half of the modules have q < 0.05).
Then the groups' median response tokens, the cosines' scale per group (mean absolute value over
layers, and the largest layer mean), and for the models experiment the curve shapes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from gradspec.analysis.tables import markdown

MODULES = ["q", "k", "v", "o"]
METRICS = ("nuclear_norm", "effective_rank")


def summary(folder: Path) -> pd.DataFrame | None:
    path = folder / "summary.csv"
    return pd.read_csv(path) if path.exists() else None


def significant(d: pd.DataFrame) -> str:
    return ", ".join(m for m in MODULES if m in set(d.module) and (d[d.module == m].q_value < 0.05).any()) or "-"


def raw_cell(d: pd.DataFrame) -> str:
    ratio = float(np.median(d.mean_b / d.mean_a))
    return f"{ratio:.2f}x ({significant(d)})"


def design_cell(d: pd.DataFrame) -> tuple[str, str]:
    pct = float(np.median(100 * d.design_diff / d.mean_a.abs()))
    verdicts = d.length_control.str.replace("equal length by design: ", "", regex=False).value_counts()
    return f"{pct:+.0f}% ({significant(d)})", ", ".join(f"{v} x{n}" for v, n in verdicts.items())


def curve_cell(frames: dict[int, pd.DataFrame], b: str, metric: str) -> str:
    parts = []
    for k in sorted(frames):
        d = frames[k][(frames[k].b == b) & (frames[k].metric == metric)]
        if d.empty or d.design_diff.isna().all():
            parts.append(f"{k}: n/a")
            continue
        pct = float(np.median(100 * d.design_diff / d.mean_a.abs()))
        star = "*" if (d.q_value < 0.05).sum() * 2 >= len(d) else ""
        parts.append(f"{k}: {pct:+.0f}%{star} (n {int(d.n_a.max())}/{int(d.n_b.max())})")
    return "; ".join(parts) or "-"


def claim_table(exp: Path) -> pd.DataFrame:
    comparisons = exp / "comparisons"
    derived = ("-matched", "-length-curve")
    names = sorted(c.name for c in comparisons.iterdir() if "@" not in c.name and not c.name.endswith(derived))
    rows = []
    for name in names:
        raw = summary(comparisons / name)
        if raw is None:
            continue
        matched = summary(comparisons / f"{name}-matched")
        windows = {
            int(c.name.rsplit("@", 1)[1]): s for c in comparisons.glob(f"{name}@*") if (s := summary(c)) is not None
        }
        for (b, metric), d in raw[raw.metric.isin(METRICS)].groupby(["b", "metric"], sort=False):
            row = {"comparison": name, "B vs A": f"{b} / {d.a.iloc[0]}", "metric": metric, "raw": raw_cell(d)}
            if matched is not None:
                m = matched[(matched.metric == metric)]
                m = m[m.b == m.b.iloc[0]] if not m.empty else m
                row["truncation-matched"], row["matched vs raw"] = design_cell(m) if not m.empty else ("-", "-")
            if windows:
                row["length curve (window: B-A)"] = curve_cell(windows, b, metric)
            rows.append(row)
    return pd.DataFrame(rows)


def lengths(exp: Path) -> list[str]:
    out = []
    for c in sorted((exp / "comparisons").iterdir()):
        manifest = c / "comparison.json"
        if "@" in c.name or not manifest.exists():
            continue
        groups = json.loads(manifest.read_text())["groups"]
        out.append(f"{c.name}: " + ", ".join(f"{g['label']} {g['median_response_tokens']:.0f}" for g in groups))
    return out


def cosines(exp: Path) -> pd.DataFrame:
    frames = []
    for c in sorted((exp / "comparisons").iterdir()):
        path = c / "layerwise.csv"
        if "@" in c.name or c.name.endswith("-matched") or not path.exists():
            continue
        layerwise = pd.read_csv(path)
        cos = layerwise[layerwise.metric.isin(["adjacent_cosine", "same_layer_cosine"])]
        frames.append(
            cos.groupby(["group", "metric"], as_index=False)["mean"]
            .agg(mean_abs=lambda v: v.abs().mean(), max_abs=lambda v: v.abs().max())
            .assign(comparison=c.name)
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default="experiments")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    for exp in sorted(p for p in Path(args.root).iterdir() if (p / "comparisons").is_dir()):
        if only and exp.name not in only:
            continue
        print(f"\n## {exp.name}\n")
        print(markdown(claim_table(exp)))
        print("\nmedian response tokens: " + "; ".join(lengths(exp)))
        print(markdown(cosines(exp)))
        if exp.name == "models":
            for c in sorted((exp / "comparisons").iterdir()):
                shapes = c / "curve_shapes.csv"
                if shapes.exists():
                    sh = pd.read_csv(shapes)
                    print(markdown(sh[(sh.a < sh.b) & sh.metric.isin(METRICS)]))


if __name__ == "__main__":
    main()
