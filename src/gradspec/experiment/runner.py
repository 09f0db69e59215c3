"""Run an experiment's stages in order, skipping every stage whose inputs and options have not
changed since it last finished (a marker per stage holds their fingerprint). A model is loaded
only when a stage that needs it runs, so an experiment started again on finished work loads
none. Runs resume by themselves, so a killed experiment redoes at most one part of one run.

Order: pools, selections (score, select), runs (and each run again at every response window a
comparison asks for), comparisons (and at each window, read against the one at natural
lengths, then the length curve), correlations, trainings and their summary, the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from gradspec.artifacts import (
    COMPARISON,
    CORRELATION,
    EXPERIMENT,
    LENGTH_CURVE,
    RUN,
    SELECTION_RESULTS,
    TRAINING,
    read_marker,
    write_marker,
)
from gradspec.config.analysis import CompareConfig
from gradspec.config.compute import ComputeConfig
from gradspec.config.fields import build, flatten, replace_leaves
from gradspec.config.score import ScoreConfig
from gradspec.config.selection import SelectConfig
from gradspec.config.train import HELD_OUT, RecipeConfig, TrainConfig
from gradspec.data.load import file_sha256
from gradspec.experiment.config import (
    COMPARISON_OPTIONS,
    RUN_OPTIONS,
    SCORE_OPTIONS,
    SELECTION_OPTIONS,
    TRAINING_OPTIONS,
    TRAINING_SUMMARY,
    Experiment,
)
from gradspec.experiment.entries import ComparisonEntry, Ref, RunEntry, SelectionEntry, Source, spec_of
from gradspec.experiment.pools import build_pool
from gradspec.experiment.stages import Models, Say, Stages
from gradspec.files import under

SELECTION_NAME = "sel"
SCORED_NAME = "scored.jsonl"


def _pick(values: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in options}


def _stamp(run_dir: Path) -> Any:
    """What a run holds: its identity, counts and the names of its parts (a resumed run adds parts)."""
    m = read_marker(RUN.marker_path(run_dir))
    if m is None:
        return None  # the run failed; the stage that needs it fails in turn and says why
    return [m.get("config"), m.get("counts"), sorted(p.name for p in (run_dir / "samples").glob("*.parquet"))]


def _content(path: Path) -> str | None:
    """A file's content, as a hash (None when it is not there): what a stage made, not when."""
    return file_sha256(path) if path.is_file() else None


class Runner:
    """One experiment's stages, the files they make, and the references other stages read them by."""

    def __init__(self, exp: Experiment, root: Path, say: Say) -> None:
        self.exp, self.root, self.say = exp, root, say
        self.stages = Stages(root, lambda stage: say(f"[{exp.name}] {stage}"), {"$OUT": root, "$DATA": exp.data_root})
        self.models = Models(progress=bool(exp.defaults.get("progress", True)))
        self.outputs: dict[Ref, Path] = {}  # every pool's and finished selection's files
        self.truncated: set[str] = set()  # selections whose groups carry per-record windows
        self.report_inputs: list[Path] = []

    def place(self, kind: str, name: str) -> Path:
        """Where a stage's output goes: ``OUT/kind/name``, never outside ``OUT``."""
        return under(self.root, kind, name)

    def resolve(self, stage: str, src: Source) -> Path | None:
        """The file ``src`` names, or None with ``stage`` recorded as failed (the stage that makes it failed)."""
        if not isinstance(src, Ref):
            return src
        found = self.outputs.get(src)
        if found is None:
            self.stages.status[stage] = f"failed: {src} was not made (its stage failed)"
        return found

    # -- data --------------------------------------------------------------------------------

    def pools(self) -> None:
        for pool in self.exp.pools:
            files = [f for f in pool.files if isinstance(f, Path)]  # loading refused references here
            out = self.place("pools", f"{pool.name}.json")
            spec = {**spec_of(pool), "files": [[str(f), file_sha256(f) if f.exists() else None] for f in files]}
            action = partial(build_pool, files, pool.sample, pool.seed, out, pool.limit, pool.where, pool.skip)
            self.stages.once(f"pool-{pool.name}", spec, out, action)
            self.outputs[Ref(pool.name)] = out

    def selections(self) -> None:
        d = self.exp.defaults
        for sel in self.exp.selections:
            stage = f"select-{sel.name}"
            folder = self.place("selections", sel.name)
            data = self.resolve(stage, sel.data)
            if data is None:
                continue
            # Only the defaults a score or a selection reads: a training option changed later re-scores nothing.
            spec = {**spec_of(sel), "defaults": _pick(d, SELECTION_OPTIONS), "source": [str(data), _content(data)]}
            output = folder / (f"{SELECTION_NAME}_selection.json" if "by" in sel.options else SCORED_NAME)
            overwrite = self.stages.changed(stage, spec)
            if self.stages.once(stage, spec, output, partial(self._select, sel, data, folder, overwrite)):
                self._register(sel, folder)

    def _select(self, sel: SelectionEntry, data: Path, folder: Path, overwrite: bool) -> None:
        from gradspec.score import SCORERS, score
        from gradspec.selection import select

        where = f"selection '{sel.name}'"
        options = {**self.exp.defaults, **sel.options, "overwrite": overwrite}
        scored = data
        if sel.score:
            values = {**_pick(options, SCORE_OPTIONS), "data": data, "out": folder / SCORED_NAME, "metrics": sel.score}
            target = str(values.get("target") or "")
            if target.startswith("@"):  # a pool's file (checked when loaded)
                values["target"] = self.outputs[Ref(target[1:])]
            cfg = build(ScoreConfig, values, where, convert_text=False)
            needs_lm = any(SCORERS[m].needs_model for m in cfg.metrics)
            score(cfg, self.models.get(cfg.loading) if needs_lm else None)
            scored = folder / SCORED_NAME
        if "by" in sel.options:
            own = {k: v for k, v in _pick(sel.options, SELECTION_OPTIONS).items() if k not in SCORE_OPTIONS}
            values = {**own, "data": scored, "out_dir": folder, "name": SELECTION_NAME}
            if "max_length" not in own:  # windows, budgets and fitting tokens count what fits in the runs' length
                values["max_length"] = options.get("max_length")
            select(build(SelectConfig, values, where, convert_text=False))

    def _register(self, sel: SelectionEntry, folder: Path) -> None:
        if (folder / SCORED_NAME).exists():
            self.outputs[Ref(sel.name, "scored")] = folder / SCORED_NAME
        summary = read_marker(folder / f"{SELECTION_NAME}_selection.json")
        if "by" in sel.options and summary is not None:
            for which, file in summary["files"].items():
                self.outputs[Ref(sel.name, which)] = folder / file  # a name in the folder (older: a path)
            if sel.options.get("match_length") == "truncate":
                self.truncated.add(sel.name)

    # -- runs and their analysis ---------------------------------------------------------------

    def run_entries(self) -> list[RunEntry]:
        """Every run, and each run again at every window a comparison that uses it asks for."""
        windows: dict[str, set[int]] = {}
        for c in self.exp.comparisons:
            for member in c.members:
                windows.setdefault(member, set()).update(c.windows)
        out = []
        for run in self.exp.runs:
            out.append(run)
            out += [
                replace(run, name=f"{run.name}@{k}", options={**run.options, "response_tokens": k})
                for k in sorted(windows.get(run.name, ()))
            ]
        return out

    def _compute(self, cfg: ComputeConfig) -> None:
        from gradspec.computation import compute

        compute(cfg, self.models.get(cfg.loading))

    def runs(self) -> None:
        for run in self.run_entries():
            stage = f"compute-{run.name}"
            data = self.resolve(stage, run.data)
            if data is None:
                continue
            values = {
                **_pick({**self.exp.defaults, **run.options}, RUN_OPTIONS),
                "data": data,
                "out": self.place("runs", run.name),
            }
            if isinstance(run.data, Ref) and run.data.stage in self.truncated:
                values.setdefault("record_windows", True)  # truncation-matched pairs carry their windows
            cfg = build(ComputeConfig, values, f"run '{run.name}'", convert_text=False)
            spec = {"config": flatten(cfg, set_only=True), "data": file_sha256(data) if data.exists() else None}
            if self.stages.changed(stage, spec):  # options changed since it was computed: compute it again
                cfg = replace_leaves(cfg, overwrite=True)
            self.stages.once(stage, spec, RUN.marker_path(cfg.store.out), partial(self._compute, cfg))

    def comparisons(self) -> None:
        from gradspec.analysis.length_curve import length_curve

        folders = {c.name: self.place("comparisons", c.name) for c in self.exp.comparisons}
        for comp in self.exp.comparisons:
            reference = folders.get(comp.reference) if comp.reference else None
            self._compare(comp, comp.groups, folders[comp.name], reference, comp.name)
            windowed = []
            for k in comp.windows:
                groups = tuple(tuple(f"{m}@{k}" for m in g) for g in comp.groups)
                folder = self.place("comparisons", f"{comp.name}@{k}")
                at_k = replace(comp, options={**comp.options, "figures": False})  # the length curve draws these
                if self._compare(at_k, groups, folder, folders[comp.name], f"{comp.name}@{k}"):
                    windowed.append(folder)
            if len(windowed) > 1:
                out = self.place("comparisons", f"{comp.name}-length-curve")
                spec = [_stamp_comparison(f) for f in windowed]
                action = lambda w=windowed, o=out: length_curve(w, o)  # noqa: E731
                if self.stages.once(f"length-curve-{comp.name}", spec, LENGTH_CURVE.marker_path(out), action):
                    self.report_inputs.append(out)

    def _compare(
        self,
        comp: ComparisonEntry,
        groups: tuple[tuple[str, ...], ...],
        folder: Path,
        reference: Path | None,
        name: str,
    ) -> bool:
        from gradspec.analysis import compare

        paths = [[self.place("runs", m) for m in g] for g in groups]
        runs = tuple(g[0] if len(g) == 1 else g for g in paths)  # a group of several runs is pooled
        spec = {
            **spec_of(comp),
            "groups": groups,
            "inputs": [_stamp(r) for g in paths for r in g],
            "reference": _stamp_comparison(reference),
        }
        options = _pick(comp.options, COMPARISON_OPTIONS)
        config = CompareConfig(runs, folder, comp.labels, reference=reference, **options)
        done = self.stages.once(f"compare-{name}", spec, COMPARISON.marker_path(folder), lambda: compare(config))
        if done:
            self.report_inputs.append(folder)
        return done

    def correlations(self) -> None:
        from gradspec.analysis.unify import correlate
        from gradspec.store import open_run

        for corr in self.exp.correlations:
            stage = f"correlate-{corr.name}"
            folder = self.place("correlations", corr.name)
            run_dir = self.place("runs", corr.run)
            scored = self.resolve(stage, corr.scored)
            if scored is None:
                continue
            spec = {**spec_of(corr), "inputs": _stamp(run_dir), "scored": [str(scored), _content(scored)]}
            action = lambda r=run_dir, s=scored, f=folder, o=corr.options: correlate(  # noqa: E731
                open_run(r), s, f, o.get("fields"), bool(o.get("scores", False)), o.get("within")
            )
            if self.stages.once(stage, spec, CORRELATION.marker_path(folder), action):
                self.report_inputs.append(folder)

    # -- trainings --------------------------------------------------------------------------------

    def trainings(self) -> None:
        from gradspec.train import train
        from gradspec.train.results import Training, by_rate, summarize

        evaluation = self.exp.evaluation
        sets = {k: [self.resolve("evaluation", f) for f in evaluation[k]] for k in HELD_OUT}
        held_out = {option: sets[k] for k, option in HELD_OUT.items()}
        finished: list[tuple[float | None, Training]] = []
        for t in self.exp.trainings:
            stage = f"train-{t.name}"
            data = self.resolve(stage, t.data)
            if data is None or any(None in files for files in sets.values()):
                continue
            out = self.place("trainings", t.name)
            values = {
                **_pick({**self.exp.defaults, **t.options}, TRAINING_OPTIONS),
                **held_out,
                "data": data,
                "out": out,
            }
            cfg = build(TrainConfig, values, f"training '{t.name}'", convert_text=False)
            spec = {"config": flatten(cfg), "data": _content(data)}
            if self.stages.once(stage, spec, TRAINING.marker_path(out), partial(train, cfg)):
                rate = cfg.recipe.learning_rate if cfg.recipe.epochs > 0 else None
                finished.append((rate, Training(t.method, cfg.recipe.seed, out)))
        # One summary per learning rate: a method is read against the baseline's draws at its own
        # rate (a second rate checks that the rate is not what decides the ranking).
        main_rate = float(self.exp.defaults.get("learning_rate", RecipeConfig.learning_rate))
        baseline = evaluation.get("baseline")
        rates = by_rate(finished)
        for rate, done in rates.items():
            name = TRAINING_SUMMARY if rate == main_rate or len(rates) == 1 else f"{TRAINING_SUMMARY}-lr{rate:g}"
            out = self.place("trainings", name)
            stamps = [[t.method, t.seed, _content(TRAINING.marker_path(t.folder))] for t in done]
            action = partial(summarize, done, baseline, out)
            if self.stages.once(f"train-{name}", stamps, SELECTION_RESULTS.marker_path(out), action):
                self.report_inputs.append(out)

    # -- the report -------------------------------------------------------------------------------

    def report(self) -> Path | None:
        report = self.root / "report.html"
        inputs = [p for p in dict.fromkeys(self.report_inputs) if p.exists()]
        analysed = any(
            v == "done" for k, v in self.stages.status.items() if not k.startswith(("compute", "select", "pool"))
        )
        if inputs and (analysed or not report.exists()):
            from gradspec.report import write_report

            self.say(f"[{self.exp.name}] report {report}")
            write_report(inputs, report, self.exp.report.get("title", self.exp.name))
            self.stages.status["report"] = "done"
        elif inputs:
            self.stages.status["report"] = "skipped"
        return report if report.exists() else None


def _stamp_comparison(folder: Path | None) -> Any:
    return None if folder is None else _content(COMPARISON.file(folder, "summary"))


def run_experiment(exp: Experiment, out: str | Path | None = None, say: Say = print) -> dict[str, Any]:
    """Run every stage; returns {stage: 'done' | 'skipped' | 'failed: why'} and the report path."""
    root = Path(out) if out is not None else Path("experiments") / (exp.name + ("-full" if exp.full else ""))
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()  # every path a stage records starts here, whatever the working directory
    runner = Runner(exp, root, say)
    runner.pools()
    runner.selections()
    runner.runs()
    runner.comparisons()
    runner.correlations()
    if exp.trainings:
        runner.trainings()
    report = runner.report()
    status = runner.stages.status
    write_marker(root, EXPERIMENT, {"file": str(exp.path.resolve()), "full": exp.full}, name=exp.name, stages=status)
    return {"out": str(root), "stages": status, "report": str(report) if report else None}
