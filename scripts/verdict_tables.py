"""Print the tables of docs/findings.md from the verdicts experiment (after `gradspec experiment
configs/experiments/verdicts.yaml`).

    .venv/bin/python scripts/verdict_tables.py [experiments/verdicts]

For each claim (a comparison NAME, its equal-position readings NAME-p8kK), nuclear norm and
effective rank, each the median over q, k, v, o:
  raw        B's difference from A in % of A at natural lengths, and the modules with q < 0.05;
  positions  at 8 prompt + K response tokens: the difference in % of A with its 90% interval (the
             median module's), and the verdicts against raw (holds, reverses, disappears =
             equivalent within 10%, inconclusive, appears);
  beyond     AUROC of the loss alone and of the best gradient metric, and how many of the eight
             (metric, module) readings add to loss and lengths (likelihood-ratio q < 0.05).
Then the cosines of every raw run: mean |cos| over samples, layers and modules by kind (adjacent
layers, layers two apart, q*o and k*v in a layer, and against an unrelated sample, the probe),
beside what random directions of the same sizes give, sqrt(2 / (pi D)) for D = d_out x d_in.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from gradspec.analysis.beyond import separation
from gradspec.artifacts import COMPARISON
from gradspec.store import open_run

METRICS = ("nuclear_norm", "effective_rank")
SHORT = {"nuclear_norm": "nuclear", "effective_rank": "erank"}
CLAIMS = {
    "reward-wiz": "WizardLM reward: high vs low",
    "diff-wiz": "WizardLM difficulty: high vs low",
    "instag-wiz": "WizardLM InsTag: high vs low",
    "reward-mag": "Magpie reward: high vs low",
    "fast-vs-slow": "detailed CoT (slow) vs no CoT (fast), 6 tasks",
    "correct-vs-shuffled": "shuffled vs correct detailed CoT, 6 tasks",
    "weak-vs-strong": "strongest vs weakest AlpacaEval generator, same prompts",
}


def read(folder: Path, role: str) -> pd.DataFrame | None:
    path = COMPARISON.file(folder, role)
    return pd.read_csv(path) if path.exists() else None


def pct(x: float) -> str:
    return "n/a" if pd.isna(x) else f"{100 * x:+.0f}%"


def raw_cell(summary: pd.DataFrame, metric: str) -> str:
    d = summary[summary.metric == metric]
    rel = float(np.median(d["diff"] / d.mean_a.abs()))
    sig = "".join(m for m in "qkvo" if ((d.module == m) & (d.q_value < 0.05)).any()) or "-"
    return f"{pct(rel)} ({sig})"


def position_cell(summary: pd.DataFrame, metric: str) -> str:
    d = summary[summary.metric == metric].copy()
    if d.empty or d.design_diff.isna().all():
        return "n/a"
    d["rel"] = d.design_diff / d.mean_a.abs()
    mid = d.iloc[(d.rel - d.rel.median()).abs().argsort().iloc[0]]
    band = f"[{pct(mid.ci90_low / abs(mid.mean_a))}, {pct(mid.ci90_high / abs(mid.mean_a))}]"
    words = d.length_control.str.replace("equal length by design: ", "", regex=False).value_counts()
    return f"{pct(float(d.rel.median()))} {band}; " + ", ".join(f"{w} x{n}" for w, n in words.items())


def beyond_cell(beyond: pd.DataFrame | None) -> str:
    if beyond is None or beyond.empty:
        return "n/a"
    own = beyond[beyond.metric.isin(METRICS)]
    loss = separation(float(own.auroc_loss.iloc[0]))
    best = own.loc[own.auroc.map(separation).idxmax()]
    adds = int((own.q_beyond < 0.05).sum())
    return (f"loss {loss:.2f}, T {separation(float(own.auroc_response_tokens.iloc[0])):.2f}; best "
            f"{SHORT[best.metric]} {best.module} {separation(best.auroc):.2f}; adds {adds}/{len(own)}")  # fmt: skip


def cosine_table(runs: Path) -> str:
    """Mean |cos| by kind for every raw run (no ``-p8k`` in its name), and the random-direction level."""
    kinds = ("adjacent", "distant", "same_layer", "probe")
    lines = ["| run | n | " + " | ".join(kinds) + " | random directions |", "| --- " * (len(kinds) + 3) + "|"]
    for folder in sorted(p for p in runs.iterdir() if "-p8k" not in p.name and (p / "run.json").exists()):
        run = open_run(folder)
        # The probe sample's own probe cosines are 1 (it is the probe): left out of the null.
        query = (
            "select kind, avg(abs(cosine)) from similarity where kind <> 'probe' or sample_id not in "
            "(select sample_id from similarity where kind = 'probe' group by 1 having min(cosine) > 0.9999) "
            "group by kind"
        )
        got = dict(run.sql(query).fetchall())
        n = run.scalar("select count(*) from samples where status = 'ok'")
        sizes = [d_out * d_in for d_out, d_in in run.manifest["shapes"].values()]
        random = float(np.median([math.sqrt(2 / (math.pi * d)) for d in sizes]))
        cells = [f"{got[k]:.4f}" if got.get(k) is not None else "n/a" for k in kinds]
        lines.append(f"| {folder.name} | {n} | " + " | ".join(cells) + f" | {random:.4f} |")
    return "\n".join(lines)


def main(root: Path) -> None:
    cmp = root / "comparisons"
    header = ["claim", "n A/B", "reading", *(f"{SHORT[m]}" for m in METRICS), "beyond loss and length (AUROC)"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for name, title in CLAIMS.items():
        raw = read(cmp / name, "summary")
        if raw is None:
            continue
        n = f"{int(raw.n_a.max())}/{int(raw.n_b.max())}"
        cells = [raw_cell(raw, m) for m in METRICS]
        lines.append(
            f"| {title} | {n} | raw | " + " | ".join(cells) + f" | {beyond_cell(read(cmp / name, 'beyond'))} |"
        )
        for folder in sorted(
            (p for p in cmp.glob(f"{name}-p8k*") if p.is_dir()), key=lambda p: int(p.name.rsplit("k", 1)[1])
        ):
            at = read(folder, "summary")
            if at is None:
                continue
            k = folder.name.rsplit("k", 1)[1]
            n = f"{int(at.n_a.max())}/{int(at.n_b.max())}"
            cells = [position_cell(at, m) for m in METRICS]
            lines.append(
                f"| | {n} | P 8 + K {k} | " + " | ".join(cells) + f" | {beyond_cell(read(folder, 'beyond'))} |"
            )
    print("\n".join(lines))
    print()
    print(cosine_table(root / "runs"))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("experiments/verdicts"))
