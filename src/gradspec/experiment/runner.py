"""Run an experiment's steps in order, skipping every step whose inputs and options have not
changed since it last finished (a marker per step holds their fingerprint). Runs resume by
themselves, so a killed experiment started again redoes at most one part of one run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from gradspec.computation import compute
from gradspec.config.analysis import CompareConfig
from gradspec.config.compute import ComputeConfig
from gradspec.config.fields import build
from gradspec.config.model import ModelConfig
from gradspec.config.score import ScoreConfig
from gradspec.config.selection import SelectConfig
from gradspec.errors import ConfigError, GradspecError
from gradspec.experiment.config import (
    COMPARISON_OPTIONS,
    RUN_OPTIONS,
    SCORE_OPTIONS,
    SELECTION_OPTIONS,
    Experiment,
)
from gradspec.files import write_json_atomic
from gradspec.model import LoadedModel, load

Say = Callable[[str], None]


class Steps:
    """Markers in ``OUT/.steps``: a step is done when its marker holds the same fingerprint."""

    def __init__(self, out: Path) -> None:
        self.dir = out / ".steps"
        self.dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def fingerprint(spec: Any) -> str:
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()

    def done(self, step: str, spec: Any) -> bool:
        marker = self.dir / f"{step}.json"
        return marker.exists() and json.loads(marker.read_text()).get("fingerprint") == self.fingerprint(spec)

    def finish(self, step: str, spec: Any) -> None:
        write_json_atomic(self.dir / f"{step}.json", {"fingerprint": self.fingerprint(spec)})

    def once(
        self, step: str, spec: Any, output: Path, action: Callable[[], Any], status: dict[str, str], say: Say
    ) -> None:
        """Run ``action`` unless ``step`` finished with this ``spec`` and ``output`` is there."""
        if self.done(step, spec) and output.exists():
            status[step] = "skipped"
            return
        say(step)
        try:
            action()
        except GradspecError as exc:  # one step that cannot be done does not stop the others
            say(f"  {step} not done: {exc}")
            status[step] = f"failed: {exc}"
            return
        self.finish(step, spec)
        status[step] = "done"


class Models:
    """Each model loaded once for the whole experiment."""

    def __init__(self) -> None:
        self._loaded: dict[ModelConfig, LoadedModel] = {}

    def get(self, config: ComputeConfig | ScoreConfig) -> LoadedModel:
        if config.loading not in self._loaded:
            self._loaded[config.loading] = load(config.loading)
        return self._loaded[config.loading]


def _pick(values: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in options}


def _select(sel: dict[str, Any], source: Path, folder: Path, d: dict[str, Any], models: Models) -> None:
    """One selection step: score the pool when asked, then write its high and low groups."""
    from gradspec.score import score
    from gradspec.selection import select

    scored = source
    merged = {**d, **sel}
    if sel.get("score"):
        values = {
            **_pick(merged, SCORE_OPTIONS),
            "data": source,
            "out": folder / "scored.jsonl",
            "metrics": sel["score"],
        }
        cfg = build(ScoreConfig, values, f"selection '{sel['name']}'", convert_text=False)
        score(cfg, models.get(cfg))
        scored = folder / "scored.jsonl"
    picked = _pick(sel, SELECTION_OPTIONS)
    select_values = {k: v for k, v in picked.items() if k not in SCORE_OPTIONS}
    select(build(SelectConfig, {**select_values, "data": scored, "out_dir": folder, "name": "sel"}, "selection"))


def _manifest_stamp(run_dir: Path) -> Any:
    """What a run holds: its counts and the names of its parts (a resumed run adds parts)."""
    if not (run_dir / "run.json").exists():
        return None  # the run failed; the step that needs it fails in turn and says why
    m = json.loads((run_dir / "run.json").read_text())
    return [m.get("config"), m.get("counts"), sorted(p.name for p in (run_dir / "samples").glob("*.parquet"))]


def run_experiment(exp: Experiment, out: str | Path | None = None, say: Say = print) -> dict[str, Any]:
    """Run every step; returns {step: 'done' | 'skipped'} and the report path."""
    root = Path(out) if out is not None else Path("experiments") / (exp.name + ("-full" if exp.full else ""))
    root.mkdir(parents=True, exist_ok=True)
    steps = Steps(root)
    d = exp.defaults
    models = Models()
    status: dict[str, str] = {}
    selection_files: dict[str, dict[str, Path]] = {}

    def tell(step: str) -> None:
        say(f"[{exp.name}] {step}")

    def data_path(ref: str) -> Path:
        if ref.startswith("@"):
            name, _, which = ref[1:].partition("/")
            if name not in selection_files or which not in selection_files[name]:
                raise ConfigError(f"{ref}: no selection '{name}' with an output '{which}' (highest, lowest, scored)")
            return selection_files[name][which]
        p = Path(ref)
        return p if p.is_absolute() else exp.data_root / p

    for sel in exp.selections:
        folder = root / "selections" / sel["name"]
        source = data_path(sel["data"])
        spec = {**sel, "defaults": d, "source": str(source)}
        top, bottom = int(sel.get("top", 0)), int(sel.get("bottom", 0))
        selection_files[sel["name"]] = {
            "highest": folder / f"sel_highest_{top}.json",
            "lowest": folder / f"sel_lowest_{bottom}.json",
            "scored": folder / "scored.jsonl",
        }
        steps.once(
            f"select-{sel['name']}", spec, selection_files[sel["name"]]["highest" if top else "lowest"],
            partial(_select, sel, source, folder, d, models), status, tell,
        )  # fmt: skip

    for run in exp.runs:
        data = data_path(run["data"])
        values = {**_pick({**d, **run}, RUN_OPTIONS), "data": data, "out": root / "runs" / run["name"]}
        cfg = build(ComputeConfig, values, f"run '{run['name']}'", convert_text=False)
        say(f"[{exp.name}] compute {run['name']} ({data.name}, limit {cfg.source.limit})")
        try:
            result = compute(cfg, models.get(cfg))
        except GradspecError as exc:  # e.g. its data comes from a selection that failed
            say(f"  compute-{run['name']} not done: {exc}")
            status[f"compute-{run['name']}"] = f"failed: {exc}"
            continue
        n = {k: result.manifest.get("counts", {}).get(k, 0) for k in ("ok", "skipped", "error")}
        say(f"[{exp.name}]   {n['ok']} ok, {n['skipped']} skipped, {n['error']} error")
        status[f"compute-{run['name']}"] = "done"

    from gradspec.analysis import compare

    report_inputs: list[Path] = []
    for comp in exp.comparisons:
        folder = root / "comparisons" / comp["name"]
        runs = [root / "runs" / r if isinstance(r, str) else [root / "runs" / m for m in r] for r in comp["runs"]]
        flat = [r for group in runs for r in (group if isinstance(group, list) else [group])]
        spec = {**comp, "inputs": [_manifest_stamp(r) for r in flat]}
        report_inputs.append(folder)
        options = _pick(comp, COMPARISON_OPTIONS)
        action = partial(compare, CompareConfig(tuple(runs), folder, comp.get("labels"), **options))
        steps.once(f"compare-{comp['name']}", spec, folder / "comparison.json", action, status, tell)

    for corr in exp.correlations:
        from gradspec.analysis.unify import correlate
        from gradspec.store import open_run

        folder = root / "correlations" / corr["name"]
        run_dir = root / "runs" / corr["run"]
        scored = data_path(corr["scored"])
        spec = {**corr, "inputs": _manifest_stamp(run_dir), "scored": str(scored)}
        report_inputs.append(folder)
        action = partial(correlate, open_run(run_dir), scored, folder)
        steps.once(f"correlate-{corr['name']}", spec, folder / "correlations.csv", action, status, tell)

    report_inputs = [p for p in report_inputs if (p / "comparison.json").exists() or (p / "correlations.csv").exists()]
    report = root / "report.html"
    analysed = any(v == "done" for k, v in status.items() if k.startswith(("compare", "correlate")))
    if report_inputs and (analysed or not report.exists()):
        from gradspec.report import write_report

        say(f"[{exp.name}] report {report}")
        write_report(report_inputs, report, exp.report.get("title", exp.name))
        status["report"] = "done"
    elif report_inputs:
        status["report"] = "skipped"
    write_json_atomic(
        root / "experiment.json",
        {"name": exp.name, "config": str(exp.path.resolve()), "full": exp.full, "steps": status},
    )
    return {"out": str(root), "steps": status, "report": str(report) if report.exists() else None}
