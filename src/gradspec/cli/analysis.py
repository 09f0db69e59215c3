"""``gradspec compare``, ``correlate``, ``report`` and ``experiment``: from runs to findings."""

from __future__ import annotations

import json
from typing import Any

import click

from gradspec.artifacts import COMPARISON, CORRELATION
from gradspec.cli.app import app
from gradspec.cli.generate import config_command, json_flag
from gradspec.config.analysis import CompareConfig, CorrelateConfig, LengthCurveConfig
from gradspec.config.baseline import BaselineConfig
from gradspec.config.report import ExperimentConfig, ExploreConfig, ReportConfig
from gradspec.config.train import TrainConfig


@config_command(app, "compare", CompareConfig, extra=(json_flag(),))
def compare(config: CompareConfig, as_json: bool = False) -> None:
    """Compare groups of samples: layer-wise curves, tests, effect sizes, length control."""
    import pandas as pd

    from gradspec.analysis import compare as run_compare
    from gradspec.analysis.compare import headline
    from gradspec.analysis.findings import comparison_findings
    from gradspec.analysis.tables import markdown

    manifest = run_compare(config)
    summary = pd.read_csv(COMPARISON.file(config.out, "summary"))
    found = comparison_findings(config.out)
    if as_json:
        rows = headline(summary).to_dict(orient="records")
        click.echo(json.dumps({**manifest, "findings": found, "headline": rows}, indent=2, default=str))
        return
    for sentence in found:
        click.echo(sentence)
    click.echo(markdown(headline(summary)))
    for warning in manifest["warnings"]:
        click.echo(f"warning: {warning}")
    click.echo(f"{len(manifest['files'])} files in {config.out}")


@config_command(app, "length-curve", LengthCurveConfig)
def length_curve(config: LengthCurveConfig) -> None:
    """The difference between two groups as a function of the response window K (one comparison per K)."""
    from gradspec.analysis.length_curve import length_curve as run_curve

    result = run_curve(config.comparisons, config.out)
    click.echo(f"windows {', '.join(map(str, result['windows']))}: {len(result['files'])} files in {config.out}")


@config_command(app, "correlate", CorrelateConfig)
def correlate(config: CorrelateConfig) -> None:
    """Spearman correlations of quality scores with gradient metrics, raw and length-partialled."""
    import pandas as pd

    from gradspec.analysis.tables import markdown
    from gradspec.analysis.unify import WITHIN_READINGS
    from gradspec.analysis.unify import correlate as run_correlate
    from gradspec.store import open_run

    result = run_correlate(open_run(config.run), config.scored, config.out, config.fields, config.scores, config.within)
    table = pd.read_csv(CORRELATION.file(config.out, "table"))
    main = table[table.gradient_metric.isin(["nuclear_norm", "effective_rank"])]
    columns = ["quality", "module", "gradient_metric", "rho", "q_value", "rho_length_partialled", "n"]
    click.echo(markdown(main[columns]))
    for warning in result["warnings"]:
        click.echo(f"warning: {warning}")
    if config.scores:
        pairs = pd.read_csv(CORRELATION.file(config.out, "scores"))
        click.echo("the scores against each other:")
        click.echo(markdown(pairs))
    if config.within:
        within = pd.read_csv(CORRELATION.file(config.out, "within"))
        shown = within[within.reading.isin(WITHIN_READINGS)]
        click.echo(f"within blocks of {config.within} (mean Spearman rho over blocks, interval resampling blocks):")
        click.echo(
            markdown(shown[["quality", "reading", "module", "blocks", "mean_rho", "ci_low", "ci_high", "q_value"]])
        )
    click.echo(f"{result['joined_samples']} samples joined; {len(result['files'])} files in {config.out}")


@config_command(app, "report", ReportConfig)
def report(config: ReportConfig) -> None:
    """One self-contained HTML report: tables, figures, manifests and warnings."""
    from gradspec.report import write_report

    path = write_report(config.inputs, config.out, config.title)
    click.echo(f"{path} ({path.stat().st_size / 1024:.0f} KiB)")


@config_command(app, "explore", ExploreConfig)
def explore(config: ExploreConfig) -> None:
    """Write a page to look through a run sample by sample: sort, filter, read, pick and export."""
    from gradspec.report.explore import write_explorer

    path = write_explorer(config.run, config.out, config.scored, config.first)
    click.echo(f"{path} ({path.stat().st_size / 1024:.0f} KiB): open it in a browser")


@config_command(app, "experiment", ExperimentConfig)
def experiment(config: ExperimentConfig) -> None:
    """Run an experiment grid end to end (score, select, compute, compare, correlate, report); resumable."""
    from gradspec.experiment import load_experiment, run_experiment

    exp = load_experiment(config.config, config.full, config.data_root)
    said(run_experiment(exp, config.out, click.echo))


@config_command(app, "baseline", BaselineConfig)
def baseline(config: BaselineConfig) -> None:
    """Train a selection and N random draws of its token budget alike: its percentile among them; resumable."""
    from gradspec.experiment.baseline import run_baseline

    said(run_baseline(config, click.echo))


def said(result: dict[str, Any]) -> None:
    """An experiment's findings, its stages' counts and failures, and its report; exit 1 on a failure."""
    from gradspec.experiment.summary import findings

    for line in findings(result["out"]):
        click.echo(line)
    stages = result["stages"].values()
    done, skipped = sum(v == "done" for v in stages), sum(v == "skipped" for v in stages)
    failed = {k: v for k, v in result["stages"].items() if v.startswith("failed")}
    click.echo(f"{result['out']}: {done} stages run, {skipped} already done, {len(failed)} failed")
    for step, why in failed.items():
        click.echo(f"  {step}: {why}")
    if result["report"]:
        click.echo(f"report: {result['report']}")
    if failed:
        raise click.exceptions.Exit(1)


@config_command(app, "train", TrainConfig)
def train(config: TrainConfig) -> None:
    """Fine-tune a model on a selection with a fixed recipe and measure it on held-out sets."""
    from gradspec.train import train as run_train

    result = run_train(config)
    losses = [step["loss"] for step in result["losses"]]
    # Each step's loss is on that step's own records: a first-to-last pair would read as a curve (or a
    # divergence) it is not. The held-out measures below are the comparable numbers.
    trained = (
        f"{result['steps']} optimiser steps on {result['tokens_trained']} response tokens (mean training loss "
        f"{sum(losses) / len(losses):.3f} over steps on different records)"
        if losses
        else "no training (the model as it is)"
    )
    click.echo(f"{config.out}: {result['selection']['trained_on']} records, {trained}")
    for r in result["results"]:
        click.echo(f"  {r['set']}: {r['measure']} {r['value']:.4f} (n={r['n']})")
