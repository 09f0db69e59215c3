"""Print the tables of docs/findings.md from the experiment folders (after `gradspec experiment`).

    .venv/bin/python scripts/findings_tables.py [experiments]

For each comparison: per module, B's mean over A's as a ratio for nuclear norm and effective
rank, the FDR q-value, Cliff's delta and what length control does; then the cosines' scale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from gradspec.analysis.tables import markdown

MODULES = ["q", "k", "v", "o"]


def headline(folder: Path, metrics: tuple[str, ...] = ("nuclear_norm", "effective_rank")) -> pd.DataFrame:
    s = pd.read_csv(folder / "summary.csv")
    rows = []
    for (b, metric), d in s[s.metric.isin(metrics)].groupby(["b", "metric"], sort=False):
        d = d.set_index("module").reindex([m for m in MODULES if m in set(d.module)])
        rows.append(
            {
                "comparison": folder.name,
                "B vs A": f"{b} / {d['a'].iloc[0]}",
                "metric": metric,
                **{f"{m} ratio": d.loc[m, "mean_b"] / d.loc[m, "mean_a"] for m in d.index},
                "q<0.05": ", ".join(m for m in d.index if d.loc[m, "q_value"] < 0.05) or "-",
                "median Cliff": d["cliffs_delta"].median(),
                "length control": "; ".join(sorted(set(d["length_control"]))),
            }
        )
    return pd.DataFrame(rows)


def cosine_scale(folder: Path) -> pd.DataFrame:
    layerwise = pd.read_csv(folder / "layerwise.csv")
    cos = layerwise[layerwise.metric.isin(["adjacent_cosine", "same_layer_cosine"])]
    return cos.groupby(["group", "metric"], as_index=False)["mean"].agg(
        mean_abs=lambda v: v.abs().mean(), max_abs=lambda v: v.abs().max()
    )


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "experiments")
    for exp in sorted(p for p in root.iterdir() if (p / "experiment.json").exists()):
        print(f"\n## {exp.name}\n")
        tables = [headline(c) for c in sorted((exp / "comparisons").iterdir()) if (c / "summary.csv").exists()]
        print(markdown(pd.concat(tables, ignore_index=True)))
        for c in sorted((exp / "comparisons").iterdir()):
            shapes = c / "curve_shapes.csv"
            m = json.loads((c / "comparison.json").read_text())
            lengths = {g["label"]: g["median_response_tokens"] for g in m["groups"]}
            print(f"{c.name}: median response tokens {lengths}")
            if shapes.exists() and exp.name == "models":
                sh = pd.read_csv(shapes)
                print(markdown(sh[(sh.a < sh.b) & sh.metric.isin(["nuclear_norm", "effective_rank"])]))


if __name__ == "__main__":
    main()
