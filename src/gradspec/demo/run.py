"""``gradspec demo``: careful against poor answers to the same 24 instructions, read two ways.

Both groups are computed at their natural lengths (the raw reading, the one the papers print) and
again with every response cut to the same K tokens (K: the shortest response of both groups), so
that length cannot speak for quality: the prompts are the same instructions already, so both
readings hold the prompt fixed. Each reading is compared; the demo says what each found and what
equal length changed, and draws the raw layer-wise figure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path

import pandas as pd

from gradspec.analysis import CompareConfig, compare, layerwise_figure
from gradspec.analysis.findings import LENGTH_VERBS, comparison_findings, counted
from gradspec.artifacts import COMPARISON
from gradspec.computation import compute_many
from gradspec.config.compute import ComputeConfig
from gradspec.config.data import DataConfig
from gradspec.config.report import DemoConfig
from gradspec.config.store import RunConfig
from gradspec.data import Record, load_dataset
from gradspec.model import load
from gradspec.prompting import Encoded, encode_record, resolve_template
from gradspec.store import Run

DEMO_GROUPS = ("good", "poor")
MAIN = ("nuclear_norm", "effective_rank")


def demo_data(group: str) -> Path:
    """Path of a bundled demo file (``good`` or ``poor``)."""
    return Path(str(files("gradspec.demo") / f"{group}.json"))


@dataclass(frozen=True)
class DemoResult:
    runs: dict[str, Run]
    figures: list[Path]
    window: int
    findings: dict[str, list[str]]  # "raw" and "equal length": what each comparison found
    change: str  # what equal length did to the raw differences, in one sentence


def shortest_response(tokenizer: object, config: DemoConfig) -> int:
    """The fewest response tokens of any demo record under the demo's prompt options."""
    prompt = replace(config.prompt, template=resolve_template(config.prompt.template, tokenizer))
    lengths = [
        enc.n_response_tokens
        for group in DEMO_GROUPS
        for item in load_dataset(demo_data(group)).items
        if isinstance(item, Record) and isinstance(enc := encode_record(item, tokenizer, prompt), Encoded)
    ]
    return max(1, min(lengths))


def change_sentence(folder: Path, window: int) -> str:
    """How the raw differences of nuclear norm and effective rank fared at equal length."""
    summary = pd.read_csv(COMPARISON.file(folder, "summary"))
    verdicts = summary[summary.metric.isin(MAIN)]["length_control"].str.replace("equal length by design: ", "")
    return (
        f"What equal length changes: with every response cut to its first {counted(window, 'token')}, the "
        f"{len(verdicts)} nuclear-norm and effective-rank readings (per module) against the raw ones: "
        f"{verdict_counts(verdicts)}."
    )


def verdict_counts(verdicts: Iterable[str]) -> str:
    """``the difference holds in 3, disappears in 4``: the verdict words as the table writes them,
    most common first, each with its count (not ``4 disappears``)."""
    told = [f"{'' if word in LENGTH_VERBS else 'is '}{word} in {n}" for word, n in Counter(verdicts).most_common()]
    return "the difference " + ", ".join(told) if told else "none"


def demo(config: DemoConfig | None = None) -> DemoResult:
    """Compute ``out/good`` and ``out/poor`` raw and at equal length (``out/good@K``, ``out/poor@K``),
    compare each pair, and write ``out/layerwise.{png,svg}`` (defaults: ``DemoConfig()``)."""
    config = config or DemoConfig()
    out = Path(config.out)
    loaded = load(config.loading, progress=config.progress)
    window = shortest_response(loaded.tokenizer, config)
    equal = replace(config.prompt, response_tokens=window)
    names = [*DEMO_GROUPS, *(f"{g}@{window}" for g in DEMO_GROUPS)]
    configs = [
        ComputeConfig(
            source=DataConfig(demo_data(name.split("@")[0])),
            store=RunConfig(out / name, overwrite=config.overwrite),
            loading=config.loading,
            prompt=config.prompt if "@" not in name else equal,
            progress=config.progress,
        )
        for name in names
    ]
    runs = dict(zip(names, compute_many(configs, loaded)))
    raw, at_k = out / "compare-raw", out / f"compare-equal-length@{window}"
    # Both groups answer the same 24 instructions: each pair is read against itself too (paired.csv).
    compare(CompareConfig((out / "poor", out / "good"), raw, ("poor", "good"), figures=False, pair_by="prompt"))
    compare(
        CompareConfig(
            (out / f"poor@{window}", out / f"good@{window}"),
            at_k,
            ("poor", "good"),
            figures=False,
            reference=raw,
            pair_by="prompt",
        )
    )
    figures = layerwise_figure({g: runs[g] for g in DEMO_GROUPS}, out / "layerwise")
    findings = {"raw": comparison_findings(raw), "equal length": comparison_findings(at_k)}
    return DemoResult({g: runs[g] for g in names}, figures, window, findings, change_sentence(at_k, window))
