"""Does the judged evaluation see quality, or what the judged models have in common beyond it?
The oracle gate on each strong judged model alone against the weak ones.

    .venv/bin/python scripts/judged_subsets.py ROOT --trainings NAME... [--retrain --into DIR]
        [--by generator] [--write FILE.csv]

ROOT is a selection experiment's folder (``trainings/NAME`` with ``train.json``). Reading needs
each training's ``eval_answers.csv`` (each judged answer's loss; written by ``gradspec train``
since 0.3): with ``--retrain``, every named training that lacks it is trained again from its own
recorded config into ``DIR/NAME`` (same selection, seed and recipe), and its held-out means are
printed beside the original's (they agree within the run-to-run float round-off of another
thread schedule, not bitwise). Then, on all the judged answers (the two judged measures
recomputed from the answers' losses with ``pair_measures``, the code ``train`` uses) and on each
source above the median quality alone against the sources below it (the share of its pairs with
a weak answer that it wins, its loss minus theirs), every method against
random's draws: difference, share of draws beaten, q-values item by item and against the draws
(Benjamini-Hochberg over every subset, method and measure), and the verdict.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from gradspec.analysis.stats import fdr
from gradspec.analysis.tables import markdown
from gradspec.artifacts import TRAINING
from gradspec.data import load_dataset
from gradspec.data.values import lookup
from gradspec.files import write_csv
from gradspec.train.results import against_draws, verdict, versus

RANDOM = "random"


def retrain(folder: Path, into: Path) -> Path:
    """Train ``folder``'s training again from its recorded config into ``into`` (kept if done)."""
    from gradspec.config.train import TrainConfig
    from gradspec.train import train

    recorded = json.loads(TRAINING.marker_path(folder).read_text())
    config = TrainConfig.of(**{**recorded["config"], "out": str(into), "progress": False})
    again = train(config)
    for old, new in zip(recorded["results"], again["results"]):
        print(f"{folder.name}: {old['set']} {old['measure']}: {old['value']:.5f} then, {new['value']:.5f} again")
    return into


def answers_of(folder: Path, recorded: dict[str, Any], by: str) -> pd.DataFrame:
    """A training's judged answers with the ``by`` field of each (from the judged files its
    ``recorded`` train.json names)."""
    answers = pd.read_csv(TRAINING.file(folder, "answers"))
    sources = {}
    for path in recorded["config"]["eval_judged"]:
        for item, row in load_dataset(Path(path)).with_rows():
            value = row.value if isinstance(row.value, dict) else {}
            sources[Path(path).stem, getattr(item, "index", -1)] = str(lookup(value, by))
    answers[by] = [sources.get((s, i), "") for s, i in zip(answers["set"], answers["index"])]
    return answers


def measures(answers: pd.DataFrame) -> pd.DataFrame:
    """set, measure, item, value: both judged measures per prompt from the answers' losses, as
    ``train`` computes them (``pair_measures``)."""
    from gradspec.train.evaluate import pair_measures

    rows = []
    for set_, d in answers.dropna(subset=["loss"]).groupby("set"):
        by_prompt = {item: list(zip(a.quality, a.loss)) for item, a in d.groupby("item")}
        for m in pair_measures(by_prompt, str(set_)):
            items = list(by_prompt)  # pair_measures numbers prompts by place; keep the file's item
            rows += [{"set": set_, "measure": m.measure, "item": items[k], "value": v} for k, v in m.items.items()]
    return pd.DataFrame(rows)


def one_strong(answers: pd.DataFrame, by: str, strong: str, weak: list[str]) -> pd.DataFrame:
    """The two measures of one strong source against the weak ones, per prompt: the share of its
    (strong, weak) pairs the strong answer wins (lower loss), and its loss minus the weak answers'
    mean. Prompts where it or every weak answer is missing are left out."""
    rows = []
    for (set_, item), d in answers.dropna(subset=["loss"]).groupby(["set", "item"]):
        mine, theirs = d[d[by] == strong]["loss"], d[d[by].isin(weak)]["loss"]
        if len(mine) and len(theirs):
            wins = [float(s < w) for s in mine for w in theirs]
            rows.append({"set": set_, "measure": "preference_accuracy", "item": item, "value": sum(wins) / len(wins)})
            rows.append({"set": set_, "measure": "quality_gap", "item": item, "value": mine.mean() - theirs.mean()})
    return pd.DataFrame(rows)


def subsets(answers: pd.DataFrame, by: str) -> dict[str, pd.DataFrame]:
    """All judged answers (the training's own measures), then each source above the median quality
    alone against those below it: does the oracle's gain hold for every strong source?"""
    quality = answers.groupby(by)["quality"].first()
    strong = sorted(quality[quality > quality.median()].index)
    weak = sorted(quality[quality < quality.median()].index)
    return {"all": measures(answers), **{f"{s} against the weak": one_strong(answers, by, s, weak) for s in strong}}


def gate(read: pd.DataFrame) -> pd.DataFrame:
    """Every method against random's draws, per subset and measure."""
    per_item = read.groupby(["subset", "method", "measure", "item"], as_index=False)["value"].mean()
    per_seed = read.groupby(["subset", "method", "seed", "measure"], as_index=False)["value"].mean()
    rows = []
    for (subset, measure), _ in per_item.groupby(["subset", "measure"], sort=False):
        items = per_item[per_item.subset == subset].assign(set=subset)
        seeds = per_seed[per_seed.subset == subset].assign(set=subset)
        for method in sorted(set(items.method) - {RANDOM}):
            row = {"subset": subset, "measure": measure, "method": method}
            row |= versus(items, method, RANDOM, subset, measure, 2000)
            row |= against_draws(seeds, method, RANDOM, subset, measure)
            row["mean"] = float(seeds[(seeds.method == method) & (seeds.measure == measure)]["value"].mean())
            rows.append(row)
    table = pd.DataFrame(rows)
    table["q_items"], table["q_seeds"] = fdr(table["p_items"].to_numpy()), fdr(table["p_seeds"].to_numpy())
    table["verdict"] = [verdict(r, RANDOM) for r in table.itertuples()]
    return table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("--trainings", nargs="+", required=True, help="training names under ROOT/trainings")
    ap.add_argument("--retrain", action="store_true", help="train again those that lack eval_answers.csv")
    ap.add_argument("--into", type=Path, help="with --retrain: the folder for the trainings made again")
    ap.add_argument("--by", default="generator", help="the judged file's field naming an answer's source")
    ap.add_argument("--write", type=Path, help="also keep the table as this CSV")
    args = ap.parse_args()
    if args.retrain and args.into is None:
        ap.error("--retrain needs --into (ROOT is only read)")
    frames = []
    for name in args.trainings:
        folder = args.root / "trainings" / name
        if not TRAINING.file(folder, "answers").exists() and args.into is not None:
            again = args.into / name  # made again before: read it; otherwise train it again if asked
            if TRAINING.marker_path(again).exists() or args.retrain:
                folder = again if TRAINING.marker_path(again).exists() else retrain(folder, again)
        if not TRAINING.file(folder, "answers").exists():
            raise SystemExit(f"{folder}: no eval_answers.csv (trained before 0.3; --retrain --into DIR)")
        recorded = json.loads(TRAINING.marker_path(folder).read_text())
        method = re.sub(r"-r[0-9.e+-]+?(-s\d+)?$", "", name)  # win-rate-r0.0001-s1: win-rate
        method = RANDOM if method.startswith(f"{RANDOM}-") else method
        answers = answers_of(folder, recorded, args.by)
        for subset, d in subsets(answers, args.by).items():
            frames.append(d.assign(subset=subset, method=method, seed=recorded["config"]["seed"]))
    read = pd.concat(frames, ignore_index=True)
    table = gate(read)
    columns = ["subset", "measure", "method", "mean", "diff_vs_random", "draws_sd", "percentile", "q_items",
               "q_seeds", "verdict"]  # fmt: skip
    print(markdown(table[columns]))
    if args.write is not None:
        write_csv(table, args.write)


if __name__ == "__main__":
    main()
