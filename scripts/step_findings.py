"""Print the step-level tables of docs/findings.md from the steps experiment (after `gradspec
experiment configs/experiments/steps.yaml`) and write them as CSV.

    .venv/bin/python scripts/step_findings.py [experiments/steps] [--out docs/findings/steps]

Per data set and pooled (the data set held fixed), for nuclear norm and effective rank (a step's
mean over layers, the mean of the logs over q, k, v, o): how revisit and opening steps differ from
the others, and the last step from the first, raw, at equal step length and beyond the step's
loss, with 95% intervals from resampling traces (``gradspec.analysis.steps``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from gradspec.analysis.steps import step_effects, step_frame
from gradspec.data import Record, load_dataset
from gradspec.store import open_run

METRICS = ("nuclear_norm", "effective_rank")


def frame_of(run_dir: Path) -> pd.DataFrame:
    run = open_run(run_dir)
    data = run.manifest["data"]["path"]
    responses = {r.sample_id: r.response for r in load_dataset(data).items if isinstance(r, Record)}
    frame = step_frame(run, responses)
    frame["group"] = run_dir.name
    return frame


def pct(x: float) -> str:
    return f"{100 * x:+.0f}%"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", default="experiments/steps")
    ap.add_argument("--out", default="docs/findings/steps")
    args = ap.parse_args()
    frames = [frame_of(p) for p in sorted((Path(args.root) / "runs").iterdir()) if (p / "run.json").exists()]
    steps = pd.concat(frames, ignore_index=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps.drop(columns=["text"]).to_csv(out / "steps.csv", index=False)
    counts = steps.groupby(["group", "kind"]).agg(steps=("step", "size"), traces=("sample_id", "nunique"),
                                                   median_tokens=("n_tokens", "median"),
                                                   median_loss_per_token=("loss_per_token", "median"))  # fmt: skip
    print(counts.round(3).to_string())
    tables = []
    for name, part in [*((g, f) for g, f in steps.groupby("group")), ("pooled", steps)]:
        for metric in METRICS:
            table = step_effects(part, metric)
            table.insert(0, "data", name)
            tables.append(table)
    effects = pd.concat(tables, ignore_index=True)
    effects.to_csv(out / "effects.csv", index=False)
    print()
    print("| data | contrast | metric | raw | equal length | beyond loss |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (data, contrast, metric), rows in effects.groupby(["data", "contrast", "metric"], sort=False):
        cells = [f"{pct(r.share)} [{pct(r.ci95_low)}, {pct(r.ci95_high)}] {r.verdict}" for r in rows.itertuples()]
        print(f"| {data} | {contrast} | {metric} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
