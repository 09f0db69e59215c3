"""``gradspec compare``, ``gradspec correlate`` and ``gradspec report``: from runs to findings."""

from __future__ import annotations

from pathlib import Path

import typer

from gradspec.cli.app import app, fail
from gradspec.errors import GradspecError


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",")] if value else None


@app.command()
def compare(
    runs: list[Path] = typer.Argument(..., help="Run folders; the first is the baseline (A)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for tables, figures and comparison.json."),
    labels: str | None = typer.Option(None, help="Comma-separated group names [default: folder names]."),
    metrics: str | None = typer.Option(None, help="Comma-separated metrics [default: all]."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples for confidence intervals."),
) -> None:
    """Compare groups of samples: layer-wise curves, tests, effect sizes, length control."""
    from gradspec.analysis import CompareConfig
    from gradspec.analysis import compare as run_compare
    from gradspec.analysis.compare import headline
    from gradspec.analysis.frames import ALL_METRICS
    from gradspec.analysis.tables import markdown

    try:
        cfg = CompareConfig(runs, out, _split(labels), tuple(_split(metrics) or ALL_METRICS), n_boot)
        manifest = run_compare(cfg)
    except (GradspecError, ValueError) as exc:
        fail(exc)
    import pandas as pd

    typer.echo(markdown(headline(pd.read_csv(out / "summary.csv"))))
    for warning in manifest["warnings"]:
        typer.echo(f"warning: {warning}")
    typer.echo(f"{len(manifest['files'])} files in {out}")


@app.command()
def correlate(
    run: Path = typer.Argument(..., help="A run folder."),
    scored: Path = typer.Option(..., "--scored", help="The scored data the run was computed on (gradspec score)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the tables and heat maps."),
    fields: str | None = typer.Option(None, help="Quality fields [default: ifd, reward, instag, difficulty, ...]."),
) -> None:
    """Spearman correlations of quality scores with gradient metrics, raw and length-partialled."""
    import pandas as pd

    from gradspec.analysis.tables import markdown
    from gradspec.analysis.unify import correlate as run_correlate
    from gradspec.store import open_run

    try:
        result = run_correlate(open_run(run), scored, out, _split(fields))
    except (GradspecError, ValueError) as exc:
        fail(exc)
    table = pd.read_csv(out / "correlations.csv")
    main = table[table.gradient_metric.isin(["nuclear_norm", "effective_rank"])]
    typer.echo(markdown(main[["quality", "module", "gradient_metric", "rho", "rho_length_partialled", "n"]]))
    typer.echo(f"{result['joined_samples']} samples joined; {len(result['files'])} files in {out}")


@app.command()
def report(
    inputs: list[Path] = typer.Argument(..., help="Run, comparison (compare) or correlation (correlate) folders."),
    out: Path = typer.Option(..., "--out", "-o", help="report.html to write."),
    title: str = typer.Option("gradspec report", help="Title of the page."),
) -> None:
    """One self-contained HTML report: tables, figures, manifests and warnings."""
    from gradspec.report import write_report

    try:
        path = write_report(inputs, out, title)
    except (GradspecError, ValueError) as exc:
        fail(exc)
    typer.echo(f"{path} ({path.stat().st_size / 1024:.0f} KiB)")


@app.command()
def experiment(
    config: Path = typer.Argument(..., help="Experiment YAML (see configs/experiments/)."),
    full: bool = typer.Option(False, "--full", help="The full size (the config's 'full' block)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder [default: experiments/NAME]."),
    data_root: Path | None = typer.Option(None, help="Where the config's data paths start [default: its data_root]."),
) -> None:
    """Run an experiment grid end to end (score, select, compute, compare, correlate, report); resumable."""
    from gradspec.experiment import load_experiment, run_experiment

    try:
        exp = load_experiment(config, full)
        if data_root is not None:
            exp.data_root = data_root.resolve()
        result = run_experiment(exp, out, typer.echo)
    except (GradspecError, ValueError) as exc:
        fail(exc)
    steps = result["steps"].values()
    done, skipped = sum(v == "done" for v in steps), sum(v == "skipped" for v in steps)
    failed = {k: v for k, v in result["steps"].items() if v.startswith("failed")}
    typer.echo(f"{result['out']}: {done} steps run, {skipped} already done, {len(failed)} failed")
    for step, why in failed.items():
        typer.echo(f"  {step}: {why}")
    if result["report"]:
        typer.echo(f"report: {result['report']}")
    if failed:
        raise typer.Exit(1)
