"""``gradspec score`` and ``gradspec select``: data-quality metrics and the splits made from them."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from gradspec.cli import options
from gradspec.cli.app import app, fail
from gradspec.errors import GradspecError


@app.command()
def score(
    data: Path = typer.Argument(..., help="JSON list, JSONL, Parquet, CSV, or a datasets folder."),
    out: Path = typer.Option(..., "--out", "-o", help="SCORED.jsonl, .json or .parquet to write."),
    metric: str = typer.Option("ifd,length", help="Comma-separated of ifd,reward,instag,difficulty,length, or all."),
    model: str = typer.Option("default", help="Causal LM for ifd and length (as for compute)."),
    template: str = options.TEMPLATE,
    system_prompt: str | None = options.SYSTEM_PROMPT,
    max_length: int = options.MAX_LENGTH,
    truncation: str = options.TRUNCATION,
    limit: int | None = options.LIMIT,
    field_map: str | None = options.FIELD_MAP,
    reward_model: str | None = typer.Option(None, help="Sequence-classification model folder or hub id."),
    judge: str | None = typer.Option(None, help="openai:MODEL (key from OPENAI_API_KEY) | hf:default | hf:PATH."),
    judge_base_url: str | None = typer.Option(None, help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."),
    judge_concurrency: int = typer.Option(8, help="Judge requests in flight at once."),
    judge_retries: int = typer.Option(5, help="Retries of a judge request (429, 5xx, timeouts, malformed)."),
    judge_timeout: float = typer.Option(60.0, help="Seconds before a judge request times out."),
    judge_max_tokens: int = typer.Option(1024, help="Most tokens in a judge reply."),
    judge_cache: Path | None = typer.Option(None, help="Reply cache file [default: in the gradspec cache]."),
    instag_prompt: Path | None = typer.Option(None, help="Your InsTag template; {instruction} marks the slot."),
    difficulty_prompt: Path | None = typer.Option(None, help="Your difficulty template; {instruction} marks the slot."),
    reuse_raw: bool = typer.Option(False, "--reuse-raw", help="Re-parse stored raw_instag/raw_diff, not re-ask."),
    dtype: str = options.DTYPE,
    device: str = options.DEVICE,
    batch_tokens: int | None = typer.Option(None, help="Most padded tokens per IFD batch."),
    trust_remote_code: bool = options.TRUST_REMOTE_CODE,
    progress: bool = options.PROGRESS,
) -> None:
    """Add data-quality metrics (IFD, reward, InsTag, difficulty, length) to every record of DATA."""
    from gradspec.data import parse_field_map
    from gradspec.prompting import PromptConfig
    from gradspec.score import ScoreConfig
    from gradspec.score import score as run_score
    from gradspec.score.run import parse_metrics

    try:
        cfg = ScoreConfig(
            data=data,
            out=out,
            metrics=parse_metrics(metric),
            model=model,
            prompt=PromptConfig(template, system_prompt, max_length, truncation),  # type: ignore[arg-type]
            dtype=dtype,  # type: ignore[arg-type]
            device=device,
            limit=limit,
            field_map=parse_field_map(field_map),
            reward_model=reward_model,
            judge=judge,
            judge_base_url=judge_base_url,
            judge_options=_judge_options(judge, judge_concurrency, judge_retries, judge_timeout, judge_max_tokens),
            judge_cache=judge_cache,
            instag_prompt=instag_prompt,
            difficulty_prompt=difficulty_prompt,
            reuse_raw=reuse_raw,
            batch_tokens=batch_tokens,
            progress=progress,
            trust_remote_code=trust_remote_code,
        )
        summary = run_score(cfg)
    except (GradspecError, ValueError) as exc:
        fail(exc)
    typer.echo(f"{summary['out']}: {summary['records']} records")
    for name, counts in summary["metrics"].items():
        typer.echo(f"  {name}: {counts['scored']} scored, {counts['failed']} failed")
        for reason, n in counts.get("reasons", {}).items():
            typer.echo(f"    x{n}: {reason}")
    for flag, n in summary["flags"].items():
        typer.echo(f"  flagged {flag}: {n}")


def _judge_options(judge: str | None, concurrency: int, retries: int, timeout: float, max_tokens: int) -> dict:
    if judge and judge.startswith("hf:"):
        return {"max_tokens": min(max_tokens, 512)}
    return {"concurrency": concurrency, "max_retries": retries, "timeout": timeout, "max_tokens": max_tokens}


@app.command()
def select(
    data: Path = typer.Argument(..., help="A scored file (from gradspec score, or with score fields)."),
    by: str = typer.Option(..., "--by", help="Field to rank by: reward, ifd, instag, difficulty, ..."),
    out_dir: Path = typer.Option(..., "--out-dir", "-o", help="Folder for the group files."),
    top: int = typer.Option(0, help="Size of the highest group."),
    bottom: int = typer.Option(0, help="Size of the lowest group."),
    quantiles: int | None = typer.Option(None, help="Also write K quantile groups, lowest first."),
    match_length: bool = typer.Option(False, "--match-length", help="Match response-length distributions."),
    length_bins: int = typer.Option(10, help="Response-length bins used by --match-length."),
    name: str | None = typer.Option(None, help="File-name stem [default: the data file's stem]."),
    field_map: str | None = typer.Option(None, help="Rename fields, e.g. output=answer."),
    run: Path | None = typer.Option(None, help="Run folder computed on DATA (for --by grad_quality)."),
) -> None:
    """Write the highest and lowest records by a score (and quantile groups) as JSON lists."""
    from gradspec.data import parse_field_map
    from gradspec.selection import SelectConfig
    from gradspec.selection import select as run_select

    try:
        cfg = SelectConfig(
            data, by, out_dir, top, bottom, quantiles, match_length, length_bins, name, parse_field_map(field_map), run
        )
        summary = run_select(cfg)
    except (GradspecError, ValueError) as exc:
        fail(exc)
    dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped"].items() if v)
    typer.echo(f"{summary['candidates']} candidates by {by}" + (f" (dropped: {dropped})" if dropped else ""))
    for group, stats in summary["groups"].items():
        typer.echo(f"  {out_dir / group}.json: {json.dumps(stats)}")
