"""The ``gradspec`` command line: thin wrappers that build a config and call the library."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gradspec.cli import options
from gradspec.cli.app import app, fail
from gradspec.errors import GradspecError

if TYPE_CHECKING:
    from gradspec.store import Run


@app.command()
def compute(
    data: Path = typer.Argument(..., help="JSON list, JSONL, Parquet, CSV, or a datasets folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to create or resume."),
    model: str = typer.Option("default", help="default | a short name | HF model folder | FILE.gguf | hub id."),
    template: str = options.TEMPLATE,
    system_prompt: str | None = options.SYSTEM_PROMPT,
    max_length: int = options.MAX_LENGTH,
    truncation: str = options.TRUNCATION,
    limit: int | None = options.LIMIT,
    modules: str = typer.Option("q,k,v,o", help="Comma-separated of q,k,v,o,gate,up,down, or all."),
    dtype: str = options.DTYPE,
    device: str = options.DEVICE,
    device_map: str | None = typer.Option(
        None, help="auto | balanced | sequential: spread a model too large for one GPU over all of them."
    ),
    spectra: bool = typer.Option(False, "--spectra", help="Also store every singular value."),
    spectra_precision: str = typer.Option(
        "float32", help="float32 (lossless) | bfloat16 (each stored value within 0.4%, ~3x smaller)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run made with other options."),
    field_map: str | None = options.FIELD_MAP,
    batch_tokens: int | None = typer.Option(
        None, help="Most padded tokens per batch [default: 512 on CPU, 16384 on CUDA]."
    ),
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
    progress: bool = options.PROGRESS,
    workers: int = typer.Option(1, help="Processes (one per GPU, or sharing the CPU cores), through torchrun."),
    checkpointing: bool = typer.Option(
        False, "--checkpointing", help="Recompute layers in backward: less memory for long samples."
    ),
) -> None:
    """Compute per-sample gradient spectra of DATA into a run folder (resumes if it exists)."""
    if workers > 1 and "WORLD_SIZE" not in os.environ:
        from gradspec.distributed import launch

        raise typer.Exit(launch(workers, without_option(sys.argv[1:], "--workers")))
    from gradspec.compute import ComputeConfig, parse_modules
    from gradspec.compute import compute as run_compute
    from gradspec.data import parse_field_map
    from gradspec.distributed import leave_world
    from gradspec.prompting import PromptConfig

    try:
        cfg = ComputeConfig(
            data=data,
            out=out,
            model=model,
            prompt=PromptConfig(template, system_prompt, max_length, truncation),  # type: ignore[arg-type]
            modules=parse_modules(modules),
            dtype=dtype,  # type: ignore[arg-type]  (checked by ComputeConfig)
            device=device,
            device_map=device_map,
            spectra=spectra,
            spectra_precision=spectra_precision,  # type: ignore[arg-type]  (checked by ComputeConfig)
            overwrite=overwrite,
            limit=limit,
            field_map=parse_field_map(field_map),
            batch_tokens=batch_tokens,
            progress=progress,
            trust_remote_code=trust_remote_code,
            checkpointing=checkpointing,
        )
        run = run_compute(cfg)
    except (GradspecError, ValueError) as exc:
        fail(exc)
    finally:
        leave_world()
    if int(os.environ.get("RANK", "0")) == 0:
        _summary(run)


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


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-run"), "--out", "-o", help="Folder for both runs and the figure."),
    model: str = typer.Option("default", help="Model to measure."),
    max_length: int = typer.Option(512, help="Most tokens per sample."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute from scratch."),
) -> None:
    """Careful vs poor answers to 24 instructions: two runs and a layer-wise figure."""
    from gradspec.demo import demo as run_demo

    try:
        result = run_demo(out, model, max_length, device=device, overwrite=overwrite)
    except (GradspecError, ValueError) as exc:
        fail(exc)
    for group, run in result.runs.items():
        typer.echo(f"{group}:")
        _summary(run)
    typer.echo("figure: " + ", ".join(str(p) for p in result.figures))


@app.command()
def show(run: Path = typer.Argument(..., help="A run folder.")) -> None:
    """Print a run's counts and per-module means over layers."""
    from gradspec.store import open_run

    try:
        _summary(open_run(run))
    except GradspecError as exc:
        fail(exc)


def _summary(run: Run) -> None:
    """Counts, timing, why samples were skipped or failed, and per-module means over layers."""
    m = run.manifest
    counts = m.get("counts", {})
    timing = m.get("timing", {})
    typer.echo(
        f"{run.path}: {counts.get('ok', 0)} ok, {counts.get('skipped', 0)} skipped, {counts.get('error', 0)} error "
        f"(load {timing.get('load_seconds', 0):.1f} s, compute {timing.get('compute_seconds', 0):.1f} s)"
    )
    for status, n, reason in run.failure_summary():
        typer.echo(f"  {status} x{n}: {reason}")
    means = run.sql(
        "select module, avg(nuclear_norm), avg(effective_rank) from layer_stats group by module order by module"
    ).fetchall()
    for module, nuc, erank in means:
        typer.echo(f"  {module:>5}: mean nuclear norm {nuc:.4g}, mean effective rank {erank:.4g}")


# Commands of the later stages register themselves on ``app``.
from gradspec.cli import analysis, models, scoring  # noqa: E402, F401
