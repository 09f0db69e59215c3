"""Print the tables of docs/selection.md from a selection experiment's trainings (after `gradspec
experiment configs/experiments/selection_natural.yaml` or selection_gate.yaml).

    .venv/bin/python scripts/selection_tables.py [experiments/selection-natural] [--second "most fitting tokens"]
        [--check summary-lr0.0001] [--rates] [--oracle "generator win rate (oracle)"]
        [--done configs/experiments/selection_gate.yaml --into DIR]

Per held-out measure: every method's mean, the response tokens it trained on, its difference to
the mean of random's draws with the draws' SD, its percentile among them, the q-values of the
item and draw tests and the verdict (``trainings/summary/selection_results.csv``), then each
method against a second baseline item by item (Wilcoxon over the held-out items, bootstrap
interval), and the learning curves' mean held-out loss per step. With ``--check``, the table
of a second learning rate's summary and the rank correlation of the methods' means at the two
rates (does the rate decide the ranking?). With ``--rates``, every rate's summary
(trainings/summary*), the oracle's reading on each held-out measure at each rate (the gate: a
measure sees quality only if the oracle beats random's draws on it), each method's verdict per
rate with whether it pays at every rate, at some or at none, the smallest difference the draws
let a method of one or three seeds show (what a null could have seen), per rate one row per
method (seeds; tokens trained) with a cell per measure (its difference to the draws, the share
it beats, the q-values and the verdict), and each target similarity against fine-tuning on its
own target item by item (``--pair``); ``--write DIR`` keeps those tables as CSVs (each rate's
in full, as ``methods_RATE.csv``).
With ``--done CONFIG.yaml --into DIR``, first the summaries of the trainings the experiment has
finished so far (read-only on ROOT, one per rate, written into DIR: what a running experiment's
tables would say now), then ``--rates`` over DIR.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from gradspec.analysis.stats import fdr
from gradspec.analysis.tables import markdown
from gradspec.files import write_csv
from gradspec.train.results import Training, across_rates, curves_of, detectable, items_of, versus

# What targeted selection must beat to be worth its cost: fine-tuning on its target set itself.
GATE_PAIRS = [
    ("target similarity (target from elsewhere)", "fine-tune on the target from elsewhere"),
    ("target similarity (target from the held-out distribution)", "fine-tune on the target (held-out distribution)"),
]
COLUMNS = ["method", "tokens_trained", "mean", "diff_vs_random", "draws_sd", "percentile", "q_items", "q_seeds",
           "verdict"]  # fmt: skip


def results(root: Path, folder: str) -> pd.DataFrame:
    """One summary's table, printed per held-out measure."""
    table = pd.read_csv(root / "trainings" / folder / "selection_results.csv")
    for (set_, measure), d in table.groupby(["set", "measure"], sort=False):
        print(f"\n## {folder}: {measure} on {set_} (n = {int(d['items'].max())} items)")
        print(markdown(d[[c for c in COLUMNS if c in d]].sort_values("mean")))
    return table


def rates(root: Path, oracle: str, planned: list[float], pairs: list[tuple[str, str]], into: Path | None) -> None:
    """Every rate's summary, the oracle gate, the verdicts across rates and the pairs item by item,
    each table also written as ``into/NAME.csv`` when ``into`` is given."""
    tables, folders = {}, {}
    for folder in sorted((root / "trainings").glob("summary*")):
        summary = json.loads((folder / "selection_results.json").read_text())
        (rate,) = summary["config"]["learning_rates"]
        tables[float(rate)], folders[float(rate)] = results(root, folder.name), folder
    gate = pd.concat([t.assign(rate=r) for r, t in sorted(tables.items())])
    gate = gate[gate.method == oracle].sort_values(["set", "measure", "rate"])
    gate = gate[["set", "measure", "rate", "mean", "diff_vs_random", "draws_sd", "percentile", "q_items", "q_seeds",
                 "verdict"]]  # fmt: skip
    shown = {
        "gate": (f"the gate: {oracle} against random's draws, per held-out measure and rate", gate),
        "verdicts_across_rates": ("verdicts across rates", across_rates(tables, planned)),
        "detectable": (
            "what the draws could see: the smallest difference from their mean a method of 1 or 3 seeds needs for "
            "p < 0.05 against them (before the FDR adjustment)",
            power(tables),
        ),
    }
    for rate, table in sorted(tables.items()):
        shown[f"cells_{rate:.0e}"] = (f"at {rate:g}, one row per method (the table of docs/selection.md)",
                                        cells(table))  # fmt: skip
    if pairs:
        both = pd.concat([head_to_head(folders[r], pairs).assign(rate=r) for r in sorted(folders)])
        if not both.empty:
            both["q_items"] = fdr(both["p_items"].to_numpy())  # over every pair, measure and rate
            both = both[["method", "against", "set", "measure", "rate", "diff", "diff_ci_low", "diff_ci_high",
                         "p_items", "q_items", "better"]]  # fmt: skip
            shown["head_to_head"] = ("head to head, item by item: method minus the other, per rate (q over all rows)",
                                     both)  # fmt: skip
    for title, table in shown.values():
        print(f"\n## {title}")
        print(markdown(table))
    if into is not None:  # the per-rate tables as numbers (their cells are for reading)
        into.mkdir(parents=True, exist_ok=True)
        kept = {n: t for n, (_, t) in shown.items() if not n.startswith("cells_")}
        for name, table in (kept | {f"methods_{r:.0e}": t for r, t in tables.items()}).items():
            write_csv(table, into / f"{name}.csv")


def power(tables: dict[float, pd.DataFrame]) -> pd.DataFrame:
    """Per rate and held-out measure: the draws' SD and the difference a method needs to beat them."""
    rows = []
    for rate, table in sorted(tables.items()):
        draws = table[table.method == "random"].set_index(["set", "measure"])["seeds"]
        for (set_, measure), d in table.dropna(subset=["draws_sd"]).groupby(["set", "measure"], sort=False):
            sd, n = float(d["draws_sd"].iloc[0]), int(draws[set_, measure])
            row = {"rate": rate, "set": set_, "measure": measure, "draws": n, "draws_sd": sd}
            rows.append(row | {f"detectable_{k}_seeds": detectable(sd, n, k) for k in (1, 3)})
    return pd.DataFrame(rows)


def head_to_head(summary: Path, pairs: list[tuple[str, str]], second: str | None = None) -> pd.DataFrame:
    """Each (method, other) pair of one summary's trainings item by item on every held-out
    measure (seed-averaged per item; Wilcoxon and a bootstrap interval of method minus other);
    with ``second``, every method against it."""
    config = json.loads((summary / "selection_results.json").read_text())["config"]
    items = items_of([Training(m, s, Path(f)) for m, s, f in config["trainings"]])
    per_item = items.groupby(["method", "set", "measure", "item"], as_index=False)["value"].mean()
    methods = set(per_item.method)
    if second is not None:
        pairs = [*pairs, *((m, second) for m in sorted(methods) if m != second)]
    rows = []
    for m, other in pairs:
        for (set_, measure), _ in per_item.groupby(["set", "measure"]) if {m, other} <= methods else ():
            read = versus(per_item, m, other, set_, measure, 2000)
            diff = read.pop(f"diff_vs_{other}")
            rows.append({"method": m, "against": other, "set": set_, "measure": measure, "diff": diff, **read})
    return pd.DataFrame(rows)


def cells(table: pd.DataFrame) -> pd.DataFrame:
    """One row per method (by name, so every rate's table has one order), one cell per held-out
    measure: the difference to random's draws, the share of draws it beats, the two q-values
    (items / draws) and the verdict where there is one."""
    rows = table.dropna(subset=["verdict"]).sort_values("method", key=lambda m: m.str.lower(), kind="stable")
    rows["cell"] = [
        f"{r.diff_vs_random:+.3f}, {r.percentile:.0%}, q {q(r.q_items)} / {q(r.q_seeds)}"
        + (f": **{r.verdict.split(' ')[0]}**" if not r.verdict.startswith("no different") else "")
        for r in rows.itertuples()
    ]
    rows["method"] = [f"{r.method} ({r.seeds}; {r.tokens_trained:.0f})" for r in rows.itertuples()]
    wide = rows.pivot_table(index="method", columns=["measure", "set"], values="cell", aggfunc="first", sort=False)
    wide.columns = [f"{m.replace('_', ' ')} on {s}" for m, s in wide.columns]
    return wide.reset_index()


def q(value: float) -> str:
    """A q-value as the docs print it: two significant digits below 0.01, three below 0.1 (0.0499
    must not read as 0.05, the line a verdict needs), two decimals above."""
    return f"{value:.2g}" if value < 0.01 else f"{value:.3g}" if value < 0.1 else f"{value:.2f}"


def summarise_done(root: Path, config: Path, into: Path, baseline: str) -> None:
    """One summary per learning rate of the trainings of ``config`` that ``root`` holds finished."""
    from gradspec.artifacts import TRAINING, read_marker
    from gradspec.experiment.config import load_experiment
    from gradspec.train.results import by_rate, summarize

    finished: list[tuple[float | None, Training]] = []
    for t in load_experiment(config).trainings:
        folder = root / "trainings" / t.name
        marker = read_marker(TRAINING.marker_path(folder))
        if marker is not None:
            trained = int(marker["config"]["epochs"]) > 0
            rate = float(marker["config"]["learning_rate"]) if trained else None
            finished.append((rate, Training(t.method, int(marker["config"]["seed"]), folder)))
    for rate, done in sorted(by_rate(finished).items()):
        print(f"{rate:g}: {len(done)} trainings finished")
        summarize(done, baseline if any(t.method == baseline for t in done) else None, into / f"summary-lr{rate:g}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", default="experiments/selection-natural")
    ap.add_argument("--second", default="most fitting tokens")
    ap.add_argument("--check", default=None, help="a second learning rate's summary folder under trainings/")
    ap.add_argument("--rates", action="store_true", help="every rate's summary, the oracle gate, verdicts across rates")
    ap.add_argument("--oracle", default="generator win rate (oracle)")
    ap.add_argument("--planned", default="", help="the rates the experiment trains at, comma-separated (1e-5,3e-5)")
    ap.add_argument("--done", type=Path, help="the experiment's YAML: summarise the trainings finished so far")
    ap.add_argument("--into", type=Path, help="with --done: the folder for those summaries (then read as ROOT)")
    ap.add_argument("--baseline", default="random")
    ap.add_argument("--write", type=Path, help="with --rates: also write each table there as NAME.csv")
    ap.add_argument("--pair", action="append", default=None, metavar="METHOD=OTHER",
                    help="with --rates: read METHOD against OTHER item by item at every rate (repeatable; "
                         "default: each target similarity against fine-tuning on its target)")  # fmt: skip
    args = ap.parse_args()
    root = Path(args.root)
    if args.done is not None:
        if args.into is None:
            ap.error("--done needs --into (a folder of its own: ROOT is only read)")
        summarise_done(root, args.done, args.into / "trainings", args.baseline)
        root, args.rates = args.into, True
    if args.rates:
        if any("=" not in p for p in args.pair or []):
            ap.error("--pair takes METHOD=OTHER, the two methods' names as the trainings give them")
        pairs = [(p.split("=", 1)[0], p.split("=", 1)[1]) for p in args.pair] if args.pair else GATE_PAIRS
        rates(root, args.oracle, [float(r) for r in args.planned.split(",") if r.strip()], pairs, args.write)
        return
    table = results(root, "summary")
    if args.check:
        check = results(root, args.check)
        both = table.merge(check, on=["method", "set", "measure"], suffixes=("", "_check"))
        for (set_, measure), d in both.groupby(["set", "measure"], sort=False):
            rho, p = spearmanr(d["mean"], d["mean_check"])
            n = len(d)
            print(f"\n{measure} on {set_}: Spearman {rho:+.2f} (p {p:.2g}) between {n} methods' means at the two rates")
    summary = json.loads((root / "trainings/summary/selection_results.json").read_text())
    trainings = [Training(m, s, Path(f)) for m, s, f in summary["config"]["trainings"]]
    against = head_to_head(root / "trainings/summary", [], args.second)
    if not against.empty:
        print(f"\n## against {args.second}, item by item")
        print(markdown(against))
    curves = curves_of(trainings)
    if not curves.empty:
        print("\n## learning curves: mean held-out response loss by step (random: mean over draws)")
        print(markdown(curves.groupby(["method", "step"])["value"].mean().unstack("step").reset_index()))


if __name__ == "__main__":
    main()
