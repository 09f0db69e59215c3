"""``gradspec baseline``: does a selection beat random draws of the same token budget?

The recipe docs/selection.md gives a curator, as one command: the selection and ``--draws`` random
draws from the same pool, each holding the selection's budget of response tokens that fit in
``--max-length``, are fine-tuned with one recipe and measured on the same held-out sets. The
selection is then read against the draws' own spread: its percentile among them, its difference
to their mean with their SD, and the item-by-item test (``train/results.py``; a
verdict needs the item test and the draw test both to survive FDR).

It is an experiment like any other: this writes ``OUT/baseline.yaml`` (the draws as selections,
the trainings, the evaluation) and runs it, so a second call resumes, ``gradspec experiment
OUT/baseline.yaml -o OUT`` does the same, and ``report``/``show`` read the folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gradspec.config.baseline import BaselineConfig
from gradspec.config.fields import flatten
from gradspec.data import BadRecord, Record, load_dataset
from gradspec.errors import ConfigError
from gradspec.experiment.config import TRAINING_OPTIONS, load_experiment
from gradspec.experiment.runner import run_experiment
from gradspec.files import atomic_write
from gradspec.selection.select import fitting_tokens

RANDOM = "random"
PLAN = "baseline.yaml"


def token_budget_of(path: Path, max_length: int) -> int:
    """The response tokens of ``path``'s records that fit in ``max_length``: what every draw holds. A record
    without token lengths is an error naming it (a budget in characters would not be the same budget)."""
    total = 0.0
    for item, row in load_dataset(path).with_rows():
        if isinstance(item, BadRecord):
            continue  # never trained on, so none of the budget
        tokens = fitting_tokens(row.value, item, max_length) if isinstance(row.value, dict) else None
        if tokens is None:
            raise ConfigError(
                f"{path}: record {item.index}: no n_response_tokens and n_prompt_tokens (score the pool with --metrics "
                "length before select), or give --budget N"
            )
        total += tokens
    return int(total)


def check_pool(path: Path) -> None:
    """The draws need token lengths in the pool: a pool without them would be drawn by characters."""
    pairs = load_dataset(path).with_rows()
    if not any(
        isinstance(row.value, dict) and isinstance(item, Record) and fitting_tokens(row.value, item, None) is not None
        for item, row in pairs
    ):
        raise ConfigError(
            f"{path}: no record has n_response_tokens and n_prompt_tokens: score it with --metrics length"
        )


def plan(config: BaselineConfig) -> dict[str, Any]:
    """The experiment: the draws as selections of the pool, the trainings, the evaluation, the report."""
    max_length = int(config.prompt.max_length)
    check_pool(config.pool)
    budget = config.budget or token_budget_of(config.selection, max_length)
    method = config.method or config.selection.stem
    if method == RANDOM:
        raise ConfigError(f"--method {RANDOM}: that names the draws; call the selection something else")
    options = {k: v for k, v in flatten(config).items() if k in TRAINING_OPTIONS and v is not None}
    held = {kind: [str(Path(f).resolve()) for f in files] for kind, files in config.evaluation.files().items()}
    evaluation: dict[str, Any] = {**held, "baseline": RANDOM}
    return {
        "name": "baseline",
        **options,
        "grid": {"draw": list(range(config.draws))},
        "selections": [
            {
                "name": "random-{draw}",
                "data": str(config.pool.resolve()),
                "by": RANDOM,
                "top": f"{budget} tokens",
                "seed": "{draw}",
                "max_length": max_length,
            },
        ],
        "evaluation": evaluation,
        "trainings": [
            {"name": method, "method": method, "data": str(config.selection.resolve())},
            {"name": "random-{draw}", "method": RANDOM, "data": "@random-{draw}/highest", "seed": "{draw}"},
        ],
        "report": {"title": f"{method} against {config.draws} random draws of {budget} tokens"},
    }


def run_baseline(config: BaselineConfig, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Write ``OUT/baseline.yaml`` and run it (resuming what is done); the experiment's result."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    file = out / PLAN
    text = yaml.safe_dump(plan(config), sort_keys=False, allow_unicode=True)
    atomic_write(file, lambda p: p.write_text(text, encoding="utf-8"))
    return run_experiment(load_experiment(file), out, say)
