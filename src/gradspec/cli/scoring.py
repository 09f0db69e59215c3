"""``gradspec score`` and ``gradspec select``: data-quality metrics and the splits made from them."""

from __future__ import annotations

import json

import click

from gradspec.cli.app import app
from gradspec.cli.generate import config_command, json_flag
from gradspec.config.filtering import FilterConfig
from gradspec.config.score import ScoreConfig
from gradspec.config.selection import SelectConfig

JUDGED = ("instag", "difficulty")
PLACEHOLDER_JUDGE = "hf:default"


@config_command(app, "score", ScoreConfig)
def score(config: ScoreConfig) -> None:
    """Add data-quality metrics (IFD, reward, InsTag, difficulty, length) to every record of DATA."""
    from gradspec.console import warn
    from gradspec.score import score as run_score

    judge = config.judging.judge
    judged = [m for m in config.metrics if m in JUDGED]
    if judge == PLACEHOLDER_JUDGE and judged:
        warn(
            f"--judge {judge} is the 135M default model, a placeholder: it does not follow the reply format and "
            "its replies rarely parse; give --judge hf:PATH (a capable instruct model) or openai:MODEL"
        )
    summary = run_score(config)
    click.echo(f"{summary['out']}: {summary['records']} records")
    for name, counts in summary["metrics"].items():
        click.echo(f"  {name}: {counts['scored']} scored, {counts['failed']} failed")
        for reason, n in counts.get("reasons", {}).items():
            click.echo(f"    x{n}: {reason}")
    for flag, n in summary["flags"].items():
        click.echo(f"  flagged {flag}: {n}")
    silent = [m for m in judged if summary["metrics"][m]["scored"] == 0 and summary["records"]]
    if silent and judge is not None:
        scores = " or ".join(silent)
        click.echo(f"gradspec: error: no record got any {scores} score: no reply of --judge {judge} parsed", err=True)
        raise click.exceptions.Exit(1)


@config_command(app, "select", SelectConfig, extra=(json_flag(),))
def select(config: SelectConfig, as_json: bool = False) -> None:
    """Write the highest and lowest records by a score (and quantile groups) as JSON lists."""
    from gradspec.selection import select as run_select

    summary = run_select(config)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped"].items() if v)
    click.echo(f"{summary['candidates']} candidates by {config.by}" + (f" (dropped: {dropped})" if dropped else ""))
    for group, stats in summary["groups"].items():
        shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in stats.items()}
        click.echo(f"  {config.out_dir / group}.json: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    design = summary.get("length_design")
    if design and "pairs" in design:
        click.echo(
            f"  truncation-matched: {design['pairs']} pairs kept, {design.get('pairs_dropped', 0)} dropped "
            f"(no response token fits beside both prompts), {design['tokens_cut']} response tokens cut"
        )
    if "kept" in summary["files"]:
        click.echo(f"  {config.out_dir / summary['files']['kept']}: every record with a keep column")


@config_command(app, "filter", FilterConfig, extra=(json_flag(),))
def filter_(config: FilterConfig, as_json: bool = False) -> None:
    """Keep the records every rule holds for; write them all back with keep and drop_reason."""
    from gradspec.selection.filtering import filter_records

    summary = filter_records(config)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    click.echo(
        f"{config.out}: {summary['kept']} of {summary['records']} records kept, {summary['dropped']} dropped "
        f"({summary['not_scored']} of them not scored, which is not the same as scoring low)"
        + ("; only the kept records written" if config.kept_only else "")
    )
    if summary["own_ids"]:
        click.echo(
            f"  {summary['own_ids']} records carry a sample_id of their own: kept as it is, gradspec's id is "
            "in gradspec_sample_id"
        )
    for rule in summary["rules"]:
        click.echo(
            f"  {rule['rule']}: drops {rule['drops_alone']} alone, {rule['drops_in_turn']} after the rules before it"
            + (f"; cannot read {rule['not_scored_alone']} (not scored)" if rule["not_scored_alone"] else "")
            + (f" (threshold {rule['threshold']:.4g})" if rule["rule"].split()[-1].startswith("p") else "")
        )
