"""Does any score order the natural pool's generators by their win rate, beyond length and loss?

Reads the scored pool of the natural selection experiment (after `gradspec experiment
configs/experiments/selection_natural.yaml`): answers of 28 models to AlpacaEval prompts, each
with its generator's length-controlled win rate, and every score (lengths, IFD and its
conditioned perplexity, the mean nuclear norm and effective rank of the q/k/v/o gradients,
grad_quality, target similarity, RDS+).

    .venv/bin/python scripts/generator_order.py [experiments/selection-natural] [--out docs/findings/generators]
    .venv/bin/python scripts/generator_order.py --run experiments/natural/runs/pool-p8k64 \
        --exclude gpt4_1106_preview --out docs/findings/natural-p8k64

With ``--run``, the records are a run's samples (``configs/experiments/natural.yaml``: every
generator's answer to the same prompts): its loss, measured response and prompt tokens, and its
nuclear norm and effective rank (each sample's mean over layers and over q, k, v, o), the
generator and its win rate from the run's data file. ``--exclude`` leaves generators out of the
reading (the reference, whose win rate of 50% is its own by definition).

For each score, over records: Spearman's rho with the win rate raw, and partial (the correlation
of both ranks' residuals after a least-squares fit on log measured response tokens (those that fit), log prompt
tokens and log loss, the conditioned perplexity's log): what length and loss do not explain. These are
descriptive only and carry no p: the records of one generator share its win rate, so they are not
independent observations of it. The test is over generators: Spearman's rho of each generator's mean
residual with its win rate (n = number of generators), with a 95% interval from resampling generators.
Writes ``generator_order.csv``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

SCORES = ("nuclear_norm", "effective_rank", "grad_quality", "target_similarity", "rds", "ifd", "loss")


def frame(scored: Path, max_length: int) -> pd.DataFrame:
    rows = [json.loads(line) for line in scored.read_text().splitlines() if line.strip()]
    d = pd.DataFrame(rows)
    d["win_rate"] = pd.to_numeric(d["generator_lc_winrate"], errors="coerce")
    d["loss"] = np.log(pd.to_numeric(d["ppl_conditioned"], errors="coerce"))
    d["measured_tokens"] = np.minimum(d["response_tokens"], max_length - d["prompt_tokens"]).clip(lower=0)
    return d


def run_frame(run_path: Path) -> pd.DataFrame:
    """The frame ``order`` reads, from a run: per computed sample its loss, lengths and mean spectra."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from gradspec.analysis.sources import sources_of
    from gradspec.store import open_run

    run = open_run(run_path)
    samples = run.df("samples").query("status == 'ok'").set_index("sample_id")
    spectra = (
        run.sql(
            "select sample_id, avg(nuclear_norm) as nuclear_norm, avg(effective_rank) as effective_rank "
            "from layer_stats where module in ('q', 'k', 'v', 'o') group by sample_id"
        )
        .df()
        .set_index("sample_id")
    )
    rows = {sid: row for sid, (_, row) in sources_of(run).items()}
    d = spectra.join(samples[["loss", "n_response_tokens", "n_prompt_tokens"]], how="inner")
    d["generator"] = [rows[s].get("generator") for s in d.index]
    d["prompt_id"] = [rows[s].get("prompt_id") for s in d.index]
    d["win_rate"] = pd.to_numeric(pd.Series([rows[s].get("generator_lc_winrate") for s in d.index], index=d.index))
    return d.rename(columns={"n_response_tokens": "measured_tokens", "n_prompt_tokens": "prompt_tokens"}).reset_index()


def residual(y: np.ndarray, covariates: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(y)), covariates])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return y - design @ coef


def order(d: pd.DataFrame, score: str, n_boot: int, rng: np.random.Generator) -> dict[str, object]:
    cols = list(dict.fromkeys([score, "win_rate", "measured_tokens", "prompt_tokens", "loss", "generator"]))
    x = d[cols].replace([np.inf, -np.inf], np.nan).dropna()
    x = x[(x["measured_tokens"] > 0) & (x["prompt_tokens"] > 0)]
    raw = sps.spearmanr(x[score], x["win_rate"])
    covariates = np.column_stack([np.log(x["measured_tokens"]), np.log(x["prompt_tokens"])])
    if score != "loss":
        covariates = np.column_stack([covariates, x["loss"]])
    s_rank = sps.rankdata(x[score]).astype(float)
    w_rank = sps.rankdata(x["win_rate"]).astype(float)
    partial = sps.pearsonr(residual(s_rank, covariates), residual(w_rank, covariates))
    x = x.assign(resid=residual(x[score].to_numpy(float), covariates))
    per_gen = x.groupby("generator").agg(resid=("resid", "mean"), win_rate=("win_rate", "first"))
    rho_gen = sps.spearmanr(per_gen["resid"], per_gen["win_rate"])
    boots = []
    for _ in range(n_boot):
        pick = per_gen.iloc[rng.integers(0, len(per_gen), len(per_gen))]
        if pick["win_rate"].nunique() > 2:
            boots.append(sps.spearmanr(pick["resid"], pick["win_rate"]).statistic)
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return {
        "score": score, "records": len(x), "generators": len(per_gen),
        "rho_raw": float(raw.statistic), "rho_partial": float(partial.statistic),
        "rho_generators": float(rho_gen.statistic), "rho_generators_low": float(lo), "rho_generators_high": float(hi),
        "p_generators": float(rho_gen.pvalue),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", default="experiments/selection-natural")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--out", default="docs/findings/generators")
    ap.add_argument("--run", help="read a run's samples instead of the experiment's scored pool")
    ap.add_argument("--exclude", nargs="*", default=[], help="generators left out of the reading")
    args = ap.parse_args()
    d = (
        run_frame(Path(args.run))
        if args.run
        else frame(Path(args.root) / "selections/pool/scored.jsonl", args.max_length)
    )
    d = d[~d["generator"].isin(args.exclude)]
    rng = np.random.default_rng(0)
    table = pd.DataFrame([order(d, s, args.boot, rng) for s in SCORES if s in d])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "generator_order.csv", index=False)
    covs = "log measured tokens, log prompt tokens, log loss"
    print(f"{len(d)} records, {d['generator'].nunique()} generators; partial = beyond {covs} (loss: beyond lengths)")
    print("records' rhos are descriptive (a generator's records share its win rate); the test is by generator")
    print(f"{'score':<18}{'rho raw':>9}{'rho partial':>13}{'rho by generator [95%]':>30}{'p':>9}")
    for r in table.itertuples():
        interval = f"{r.rho_generators:+.2f} [{r.rho_generators_low:+.2f}, {r.rho_generators_high:+.2f}]"
        print(f"{r.score:<18}{r.rho_raw:>+9.2f}{r.rho_partial:>+13.2f}{interval:>30}{r.p_generators:>9.2g}")


if __name__ == "__main__":
    main()
