"""Run an experiment's steps in order, skipping every step whose inputs and options have not
changed since it last finished (a marker per step holds their fingerprint). A model is loaded
only when a step that needs it runs, so an experiment started again on finished work loads
none. Runs resume by themselves, so a killed experiment redoes at most one part of one run.

Order: pools, selections (score, select), runs (and each run again at every response window a
comparison asks for), comparisons (and at each window, read against the one at natural
lengths, then the length curve), correlations, trainings and their summary, the report.
"""

from __future__ import annotations

import json
import random
from functools import partial
from pathlib import Path
from typing import Any

from gradspec.config.analysis import CompareConfig
from gradspec.config.compute import ComputeConfig
from gradspec.config.fields import build, flatten, replace_leaves
from gradspec.config.score import ScoreConfig
from gradspec.config.selection import SelectConfig
from gradspec.config.train import TrainConfig
from gradspec.data import Record, load_dataset
from gradspec.data.load import file_sha256
from gradspec.errors import ConfigError
from gradspec.experiment.config import (
    COMPARISON_OPTIONS,
    RUN_OPTIONS,
    SCORE_OPTIONS,
    SELECTION_OPTIONS,
    TRAINING_OPTIONS,
    Experiment,
)
from gradspec.experiment.steps import Models, Say, Steps
from gradspec.files import under, write_json_atomic

SELECTION_NAME = "sel"


def _pick(values: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in options}


def _stamp(run_dir: Path) -> Any:
    """What a run holds: its counts and the names of its parts (a resumed run adds parts)."""
    if not (run_dir / "run.json").exists():
        return None  # the run failed; the step that needs it fails in turn and says why
    m = json.loads((run_dir / "run.json").read_text())
    return [m.get("config"), m.get("counts"), sorted(p.name for p in (run_dir / "samples").glob("*.parquet"))]


def build_pool(files: list[Path], sample: int | None, seed: int, out: Path, limit: int | None = None) -> None:
    """Several files as one JSON list (the first ``limit`` records of each): repeats of a conversation
    kept once, then ``sample`` drawn. Each record says where it came from: ``source_file``, and
    ``source_rank``, its file's place in the list (0, 1, ...), a number ``select`` can split by."""
    seen: set[str] = set()
    records: list[dict[str, Any]] = []
    for rank, f in enumerate(files):
        dataset = load_dataset(f, limit=limit)
        for item, row in dataset.with_rows():
            base = item.sample_id.split("-")[0]
            if isinstance(item, Record) and isinstance(row.value, dict) and base not in seen:
                seen.add(base)
                records.append(dict(row.value, source_file=f.name, source_rank=rank))
    if sample is not None and sample < len(records):
        records = random.Random(seed).sample(records, sample)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, records)


class Runner:
    """One experiment's steps, the files they make, and the names other steps refer to them by."""

    def __init__(self, exp: Experiment, root: Path, say: Say) -> None:
        self.exp, self.root, self.say = exp, root, say
        self.steps = Steps(root, lambda step: say(f"[{exp.name}] {step}"), {"$OUT": root, "$DATA": exp.data_root})
        self.models = Models(progress=bool(exp.defaults.get("progress", True)))
        self.refs: dict[str, Path] = {}  # "@pool" and "@selection/which" -> file
        self.truncated: set[str] = set()  # selections whose groups carry per-record windows
        self.report_inputs: list[Path] = []

    def place(self, kind: str, name: str) -> Path:
        """Where a step's output goes: ``OUT/kind/name``, never outside ``OUT``."""
        return under(self.root, kind, name)

    def source(self, step: str, ref: str) -> Path | None:
        """The file ``ref`` names, or None with ``step`` recorded as failed (e.g. its selection failed)."""
        try:
            return self.path(ref)
        except ConfigError as exc:
            self.steps.status[step] = f"failed: {exc}"
            return None

    def path(self, ref: str) -> Path:
        if ref.startswith("@"):
            if ref not in self.refs:
                known = ", ".join(sorted(self.refs)) or "none yet"
                raise ConfigError(f"{ref}: no pool or selection output of that name (known: {known})")
            return self.refs[ref]
        p = Path(ref)
        return p if p.is_absolute() else self.exp.data_root / p

    # -- data --------------------------------------------------------------------------------

    def pools(self) -> None:
        for pool in self.exp.pools:
            files = [self.path(f) for f in (pool["data"] if isinstance(pool["data"], list) else [pool["data"]])]
            out = self.place("pools", f"{pool['name']}.json")
            spec = {**pool, "files": [[str(f), file_sha256(f)] for f in files if f.exists()]}
            action = partial(build_pool, files, pool.get("sample"), int(pool.get("seed", 0)), out, pool.get("limit"))
            self.steps.once(f"pool-{pool['name']}", spec, out, action)
            self.refs[f"@{pool['name']}"] = out

    def selections(self) -> None:
        d = self.exp.defaults
        for sel in self.exp.selections:
            folder = self.place("selections", sel["name"])
            source = self.source(f"select-{sel['name']}", sel["data"])
            if source is None:
                continue
            spec = {**sel, "defaults": d, "source": [str(source), file_sha256(source) if source.exists() else None]}
            output = folder / (f"{SELECTION_NAME}_selection.json" if "by" in sel else "scored.jsonl")
            sel = {**sel, "overwrite": self.steps.changed(f"select-{sel['name']}", spec)}
            if self.steps.once(
                f"select-{sel['name']}", spec, output, lambda s=sel, f=folder, x=source: self._select(s, x, f)
            ):
                self._register(sel, folder)

    def _select(self, sel: dict[str, Any], source: Path, folder: Path) -> None:
        from gradspec.score import score
        from gradspec.selection import select

        scored = source
        if sel.get("score"):
            values = {
                **_pick({**self.exp.defaults, **sel}, SCORE_OPTIONS),
                "data": source,
                "out": folder / "scored.jsonl",
            }
            cfg = build(
                ScoreConfig, {**values, "metrics": sel["score"]}, f"selection '{sel['name']}'", convert_text=False
            )
            needs_lm = {"ifd", "length", "gradient", "grad_quality"} & set(cfg.metrics)
            score(cfg, self.models.get(cfg.loading) if needs_lm else None)
            scored = folder / "scored.jsonl"
        if "by" in sel:
            own = {k: v for k, v in _pick(sel, SELECTION_OPTIONS).items() if k not in SCORE_OPTIONS}
            values = {**own, "data": scored, "out_dir": folder, "name": SELECTION_NAME}
            if sel.get("match_length") == "truncate":  # windows must fit the runs' max length
                values["max_length"] = {**self.exp.defaults, **sel}.get("max_length")
            select(build(SelectConfig, values, f"selection '{sel['name']}'", convert_text=False))

    def _register(self, sel: dict[str, Any], folder: Path) -> None:
        if (folder / "scored.jsonl").exists():
            self.refs[f"@{sel['name']}/scored"] = folder / "scored.jsonl"
        summary = folder / f"{SELECTION_NAME}_selection.json"
        if "by" in sel and summary.exists():
            for which, file in json.loads(summary.read_text())["files"].items():
                self.refs[f"@{sel['name']}/{which}"] = folder / file  # a name in the folder (older: a path)
            if sel.get("match_length") == "truncate":
                self.truncated.add(sel["name"])

    # -- runs and their analysis ---------------------------------------------------------------

    def run_entries(self) -> list[dict[str, Any]]:
        """Every run, and each run again at every window a comparison that uses it asks for."""
        windows: dict[str, set[int]] = {}
        for c in self.exp.comparisons:
            for member in (m for r in c["runs"] for m in ([r] if isinstance(r, str) else r)):
                windows.setdefault(member, set()).update(c.get("windows") or ())
        out = []
        for run in self.exp.runs:
            out.append(run)
            out += [
                {**run, "name": f"{run['name']}@{k}", "response_tokens": k}
                for k in sorted(windows.get(run["name"], ()))
            ]
        return out

    def runs(self) -> None:
        from gradspec.computation import compute

        for run in self.run_entries():
            step = f"compute-{run['name']}"
            data = self.source(step, run["data"])
            if data is None:
                continue
            values = {
                **_pick({**self.exp.defaults, **run}, RUN_OPTIONS),
                "data": data,
                "out": self.place("runs", run["name"]),
            }
            if run["data"].split("/")[0][1:] in self.truncated:
                values.setdefault("record_windows", True)  # truncation-matched pairs carry their windows
            cfg = build(ComputeConfig, values, f"run '{run['name']}'", convert_text=False)
            spec = {"config": flatten(cfg), "data": file_sha256(data) if data.exists() else None}
            if self.steps.changed(step, spec):  # options changed since it was computed: compute it again
                cfg = replace_leaves(cfg, overwrite=True)
            self.steps.once(
                step, spec, cfg.store.out / "run.json", lambda c=cfg: compute(c, self.models.get(c.loading))
            )

    def comparisons(self) -> None:
        from gradspec.analysis.length_curve import length_curve

        folders = {c["name"]: self.place("comparisons", c["name"]) for c in self.exp.comparisons}
        for comp in self.exp.comparisons:
            reference = folders.get(comp.get("reference")) if comp.get("reference") else None
            self._compare(comp, comp["runs"], folders[comp["name"]], reference)
            windowed = []
            for k in comp.get("windows") or ():
                runs = [f"{r}@{k}" if isinstance(r, str) else [f"{m}@{k}" for m in r] for r in comp["runs"]]
                folder = self.place("comparisons", f"{comp['name']}@{k}")
                at_k = {**comp, "figures": False}  # the length curve draws these
                if self._compare(at_k, runs, folder, folders[comp["name"]], name=f"{comp['name']}@{k}"):
                    windowed.append(folder)
            if len(windowed) > 1:
                out = self.place("comparisons", f"{comp['name']}-length-curve")
                spec = [_stamp_comparison(f) for f in windowed]
                action = lambda w=windowed, o=out: length_curve(w, o)  # noqa: E731
                if self.steps.once(f"length-curve-{comp['name']}", spec, out / "length_curve.csv", action):
                    self.report_inputs.append(out)

    def _compare(
        self, comp: dict[str, Any], members: list[Any], folder: Path, reference: Path | None, name: str | None = None
    ) -> bool:
        from gradspec.analysis import compare

        runs = [self.place("runs", r) if isinstance(r, str) else [self.place("runs", m) for m in r] for r in members]
        flat = [r for group in runs for r in (group if isinstance(group, list) else [group])]
        spec = {**comp, "inputs": [_stamp(r) for r in flat], "reference": _stamp_comparison(reference)}
        options = _pick(comp, COMPARISON_OPTIONS)
        config = CompareConfig(tuple(runs), folder, comp.get("labels"), reference=reference, **options)
        done = self.steps.once(
            f"compare-{name or comp['name']}", spec, folder / "comparison.json", lambda: compare(config)
        )
        if done:
            self.report_inputs.append(folder)
        return done

    def correlations(self) -> None:
        from gradspec.analysis.unify import correlate
        from gradspec.store import open_run

        for corr in self.exp.correlations:
            folder = self.place("correlations", corr["name"])
            run_dir = self.place("runs", corr["run"])
            scored = self.source(f"correlate-{corr['name']}", corr["scored"])
            if scored is None:
                continue
            spec = {**corr, "inputs": _stamp(run_dir), "scored": str(scored)}
            action = lambda r=run_dir, s=scored, f=folder: correlate(open_run(r), s, f)  # noqa: E731
            if self.steps.once(f"correlate-{corr['name']}", spec, folder / "correlations.csv", action):
                self.report_inputs.append(folder)

    # -- trainings --------------------------------------------------------------------------------

    def trainings(self) -> None:
        from gradspec.analysis.selection_results import Training, summarize
        from gradspec.train import train

        evaluation = self.exp.evaluation
        held_out = {
            "eval_instruction": [self.path(f) for f in evaluation.get("instruction") or ()],
            "eval_reasoning": [self.path(f) for f in evaluation.get("reasoning") or ()],
        }
        finished: list[Training] = []
        for t in self.exp.trainings:
            step = f"train-{t['name']}"
            data = self.source(step, t["data"])
            if data is None:
                continue
            out = self.place("trainings", t["name"])
            values = {**_pick({**self.exp.defaults, **t}, TRAINING_OPTIONS), **held_out, "data": data, "out": out}
            cfg = build(TrainConfig, values, f"training '{t['name']}'", convert_text=False)
            spec = {"config": flatten(cfg), "data": file_sha256(data) if data.exists() else None}
            if self.steps.once(step, spec, out / "train.json", lambda c=cfg: train(c)):
                finished.append(Training(str(t.get("method", t["name"])), cfg.recipe.seed, out))
        if finished:
            out = self.root / "trainings" / "summary"
            spec = [[t.method, t.seed, (t.folder / "train.json").stat().st_mtime_ns] for t in finished]
            baseline = evaluation.get("baseline")
            if self.steps.once(
                "train-summary", spec, out / "selection_results.csv", lambda: summarize(finished, baseline, out)
            ):
                self.report_inputs.append(out)

    # -- the report -------------------------------------------------------------------------------

    def report(self) -> Path | None:
        report = self.root / "report.html"
        inputs = [p for p in dict.fromkeys(self.report_inputs) if p.exists()]
        analysed = any(
            v == "done" for k, v in self.steps.status.items() if not k.startswith(("compute", "select", "pool"))
        )
        if inputs and (analysed or not report.exists()):
            from gradspec.report import write_report

            self.say(f"[{self.exp.name}] report {report}")
            write_report(inputs, report, self.exp.report.get("title", self.exp.name))
            self.steps.status["report"] = "done"
        elif inputs:
            self.steps.status["report"] = "skipped"
        return report if report.exists() else None


def _stamp_comparison(folder: Path | None) -> Any:
    return (
        None if folder is None or not (folder / "summary.csv").exists() else (folder / "summary.csv").stat().st_mtime_ns
    )


def run_experiment(exp: Experiment, out: str | Path | None = None, say: Say = print) -> dict[str, Any]:
    """Run every step; returns {step: 'done' | 'skipped' | 'failed: why'} and the report path."""
    root = Path(out) if out is not None else Path("experiments") / (exp.name + ("-full" if exp.full else ""))
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()  # every path a step records starts here, whatever the working directory
    runner = Runner(exp, root, say)
    runner.pools()
    runner.selections()
    runner.runs()
    runner.comparisons()
    runner.correlations()
    if exp.trainings:
        runner.trainings()
    report = runner.report()
    status = runner.steps.status
    write_json_atomic(
        root / "experiment.json",
        {"name": exp.name, "config": str(exp.path.resolve()), "full": exp.full, "steps": status},
    )
    return {"out": str(root), "steps": status, "report": str(report) if report else None}
