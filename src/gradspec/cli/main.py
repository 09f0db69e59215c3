"""The ``gradspec`` command line: thin commands that take a config and call the library.

Every option is generated from the command's config dataclass (``gradspec.config``); a
command's body imports what it needs, so ``gradspec --help`` loads neither torch nor pandas.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import click

from gradspec.cli.app import app
from gradspec.cli.generate import config_command, json_flag
from gradspec.config.compute import ComputeConfig
from gradspec.config.report import DemoConfig, InspectConfig, ShowConfig, VerifyConfig

if TYPE_CHECKING:
    from gradspec.artifacts import Found
    from gradspec.store import Run


@config_command(app, "compute", ComputeConfig)
def compute(config: ComputeConfig) -> None:
    """Compute per-sample gradient spectra of DATA into a run folder (resumes if it exists)."""
    if config.workers > 1 and "WORLD_SIZE" not in os.environ:
        from gradspec.distributed import launch

        sys.exit(launch(config.workers, without_option(sys.argv[1:], "--workers")))
    from gradspec.computation import compute as run_compute
    from gradspec.distributed import leave_world

    try:
        run = run_compute(config)
    finally:
        leave_world()
    if int(os.environ.get("RANK", "0")) == 0:
        summary(run)


def without_option(args: list[str], name: str) -> list[str]:
    """``args`` without ``NAME VALUE`` or ``NAME=VALUE``."""
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out


@config_command(app, "demo", DemoConfig)
def demo(config: DemoConfig) -> None:
    """Careful vs poor answers to 24 instructions: two runs and a layer-wise figure."""
    from gradspec.demo import demo as run_demo

    result = run_demo(config)
    for group, run in result.runs.items():
        click.echo(f"{group}:")
        summary(run)
    for reading, sentences in result.findings.items():
        click.echo(f"{reading}:")
        for sentence in sentences:
            click.echo(f"  {sentence}")
    click.echo(result.change)
    click.echo("figure: " + ", ".join(str(p) for p in result.figures))


@config_command(app, "inspect", InspectConfig, extra=(json_flag(),))
def inspect(config: InspectConfig, as_json: bool = False) -> None:
    """Show the first records of DATA (--limit, default 3) as the model sees them: template, loss boundary."""
    from gradspec.data import load_dataset
    from gradspec.model.loading import load_tokenizer
    from gradspec.prompting.inspect import as_text, inspect_records

    dataset = load_dataset(config.source.data, config.source.field_map, config.source.limit or 3)
    report = inspect_records(dataset.items, load_tokenizer(config.loading), config.prompt)
    click.echo(json.dumps(report, indent=2) if as_json else as_text(report))


@config_command(app, "show", ShowConfig, extra=(json_flag(),))
def show(config: ShowConfig, as_json: bool = False) -> None:
    """Print what an output folder is; for a run, its counts and per-module means over layers."""
    from gradspec.artifacts import RUN, identify
    from gradspec.artifacts.markers import NotAnOutput
    from gradspec.errors import DamagedError

    try:
        found = identify(config.folder)
    except (NotAnOutput, DamagedError):
        if not (config.folder / RUN.marker).exists():
            raise
        found = None  # a damaged run.json: opening it as a run says what is wrong with it
    if found is not None and found.kind != RUN:
        if as_json:
            document = {**found.marker, "path": str(found.path), "kind": found.kind.name, "legacy": found.legacy}
            click.echo(json.dumps(document, indent=2, default=str))
        else:
            click.echo(found.describe())
            for line in details(found):
                click.echo(f"  {line}")
        return
    from gradspec.store import open_run

    run = open_run(config.folder)
    if as_json:
        means = run.sql(
            "select module, avg(nuclear_norm) as nuclear_norm, avg(effective_rank) as effective_rank "
            "from layer_stats group by module order by module"
        ).df()
        m = run.manifest
        document = {
            "run": str(run.path),
            "kind": RUN.name,
            "counts": run.counts(),
            "timing": m.get("timing"),
            "config": m.get("config"),
            "model": m.get("model", {}).get("name"),
            "checks": m.get("checks"),
            "failures": [{"status": s, "count": n, "reason": r} for s, n, r in run.failure_summary()],
            "warnings": run.read_warnings(),
            "means": means.to_dict(orient="records"),
        }
        click.echo(json.dumps(document, indent=2, default=str))
        return
    if found is not None:
        click.echo(found.describe())
    summary(run)


@config_command(app, "verify", VerifyConfig)
def verify(config: VerifyConfig) -> None:
    """Check a run folder: parts, every sample exactly once, statistics, manifest; one line per problem."""
    from gradspec.artifacts import RUN, identify_as
    from gradspec.artifacts.markers import NotAnOutput
    from gradspec.errors import DamagedError
    from gradspec.store.verify import summary as verified
    from gradspec.store.verify import verify as run_verify

    try:
        identify_as(config.run, RUN)
    except (NotAnOutput, DamagedError):
        pass  # a run whose manifest is damaged: verify says what is wrong with it
    problems = run_verify(config.run)
    for problem in problems:
        click.echo(f"{config.run}: {problem}")
    if problems:
        click.echo(f"{config.run}: {len(problems)} problem(s)", err=True)
        raise click.exceptions.Exit(1)
    click.echo(verified(config.run))


def details(found: Found) -> list[str]:
    """A few lines on what an output folder other than a run holds, from its marker."""
    m = found.marker
    lines = []
    if m.get("groups"):
        lines.append(
            "groups: " + ", ".join(f"{g.get('label')} ({len(g.get('runs') or [])} run(s))" for g in m["groups"])
        )
    if m.get("windows"):
        lines.append("windows: " + ", ".join(map(str, m["windows"])))
    if m.get("selections"):
        lines.append("selections: " + ", ".join(m["selections"]))
    steps = m.get("steps")
    stages = m.get("stages", steps if isinstance(steps, dict) else None)  # an experiment's ("steps" up to 0.2)
    if isinstance(stages, dict) and stages:  # an experiment's stages and how each ended
        states = [v if v in ("done", "skipped") else "failed" for v in stages.values()]
        lines.append(", ".join(f"{states.count(s)} {s}" for s in ("done", "skipped", "failed")) + " stages")
    elif isinstance(steps, list) and steps:  # the training steps a callback measured
        lines.append(f"{len(steps)} training steps measured: " + ", ".join(map(str, steps[:12])))
    if isinstance(m.get("results"), list):  # a fine-tune: what it trained on and its held-out measures
        lines.append(f"{m.get('tokens_trained')} response tokens trained in {m.get('steps')} optimiser steps")
        lines += [
            f"{r.get('measure')} on {r.get('set')}: {r.get('value'):.4g} ({r.get('n')} items)"
            for r in m["results"]
            if isinstance(r, dict) and isinstance(r.get("value"), (int, float))
        ]
    lines += [f"warning: {w}" for w in m.get("warnings") or ()]
    files = m.get("files") or []
    if files:
        lines.append(f"{len(files)} files: " + ", ".join(files[:6]) + (", ..." if len(files) > 6 else ""))
    return lines


def summary(run: Run) -> None:
    """Counts, timing, why samples were skipped or failed, and per-module means over layers."""
    m = run.manifest
    counts = run.counts()  # what the folder holds, as the means below (the manifest's may be older)
    timing = m.get("timing", {})
    click.echo(
        f"{run.path}: {counts.get('ok', 0)} ok, {counts.get('skipped', 0)} skipped, {counts.get('error', 0)} error "
        f"(load {timing.get('load_seconds', 0):.1f} s, compute {timing.get('compute_seconds', 0):.1f} s)"
    )
    for status, n, reason in run.failure_summary():
        click.echo(f"  {status} x{n}: {reason}")
    for warning in run.read_warnings():
        click.echo(f"  warning: {warning}")
    means = run.sql(
        "select module, avg(nuclear_norm), avg(effective_rank) from layer_stats group by module order by module"
    ).fetchall()
    for module, nuc, erank in means:
        click.echo(f"  {module:>5}: mean nuclear norm {number(nuc)}, mean effective rank {number(erank)}")


def number(value: float | None) -> str:
    """A mean as people read it; a mean of nothing (every value undefined) says so."""
    return "undefined" if value is None else f"{value:.4g}"


# Commands of the later stages register themselves on ``app``.
from gradspec.cli import analysis, models, scoring  # noqa: E402, F401
