"""Options of ``gradspec compare`` and ``gradspec correlate``, and the metric names they know."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gradspec.config.fields import Options
from gradspec.config.names import segment
from gradspec.errors import ConfigError
from gradspec.store.contract import METRICS

GRADIENT_METRICS: tuple[str, ...] = (*METRICS, "top_share", "nuclear_norm_sum")
"""Per-gradient metrics: ``layer_stats`` columns, sigma_1 / sum(sigma), and the nuclear norm times the
response tokens T (the nuclear norm of the sum-reduced loss's gradient: the mean-reduced loss divides
every gradient by T, and this undoes it)."""
COSINE_METRICS: tuple[str, ...] = ("adjacent_cosine", "same_layer_cosine", "distant_cosine", "probe_cosine")
"""Cosines of adjacent layers and within a layer, and their nulls: layers two apart, and another sample's
gradient at the same layer (the run's probe)."""
ALL_METRICS: tuple[str, ...] = (*GRADIENT_METRICS, *COSINE_METRICS)
AnalysisMetric = Literal[ALL_METRICS]  # type: ignore[valid-type]  # follows the contract's metric names

QUALITY_FIELDS = (
    "ifd",
    "reward",
    "instag",
    "difficulty",
    "ppl_conditioned",
    "ifd_gpt2",
    "ifd_qwen7b",
    "ppl_gpt2",
    "diff",
)
"""The quality scores correlate looks for by default (gradspec score's and the shared data's)."""


@dataclass(frozen=True)
class CompareConfig(Options):
    """Groups of samples compared with the first (the baseline)."""

    runs: tuple[Any, ...] = field(metadata={"argument": True})
    """Run folders, the first is the baseline (A); from Python or YAML a group may pool several runs (a list)."""

    out: Path = field(metadata={"short": "-o"})
    """Folder for the tables, figures and comparison.json."""

    labels: tuple[str, ...] | None = None
    """Group names, comma-separated (default: the folder names)."""

    metrics: tuple[AnalysisMetric, ...] = ALL_METRICS
    """Metrics to compare, comma-separated, or all."""

    n_boot: int = field(default=1000, metadata={"min": 1})
    """Bootstrap resamples for the confidence intervals."""

    sesoi: float = field(default=0.1, metadata={"min": 0.0})
    """The smallest effect of interest, as a share of A's mean: a difference whose 90% interval lies within
    plus or minus this is equivalent to zero ("disappears"); one that is neither significant nor within it is
    inconclusive."""

    caliper: float = field(default=0.1, metadata={"min": 0.0})
    """Largest log-length gap of a length-matched pair (0.1 is about 10%)."""

    seed: int = 0
    """Seed of the bootstrap."""

    figures: bool = True
    """Draw the figures (PNG and SVG); tables only without."""

    reference: Path | None = None
    """A comparison of the same groups at their natural lengths; when these runs have equal lengths by design
    (a response window, or truncation-matched pairs) the summary says whether its difference holds, disappears
    or reverses."""

    pair_by: str | None = None
    """Also compare B with A pair by pair, when both answer the same prompts: prompt (the record's prompt
    turns, hashed), index (its place in the file) or a record field (e.g. prompt_id). A pair whose other side
    was not computed is dropped whole and counted; writes paired.csv (median paired difference, sign and
    Wilcoxon tests, paired AUROC, equivalence, and a conditional-logistic test beyond loss and lengths)."""

    def check(self) -> None:
        if len(self.runs) < 2:
            raise ConfigError("compare needs at least two runs")
        if self.pair_by is not None and not re.fullmatch(r"[A-Za-z_][\w.\-]*", self.pair_by):
            raise ConfigError(f"--pair-by {self.pair_by!r}: give prompt, index or a record field's name")
        if self.labels is not None and len(self.labels) != len(self.runs):
            raise ConfigError(f"--labels: {len(self.labels)} labels for {len(self.runs)} runs")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ConfigError("--labels must be distinct")


@dataclass(frozen=True)
class CorrelateConfig(Options):
    """Quality scores against gradient metrics, sample by sample."""

    run: Path = field(metadata={"argument": True})
    """A run folder."""

    scored: Path
    """The scored data the run was computed on (gradspec score), joined on sample_id."""

    out: Path = field(metadata={"short": "-o"})
    """Folder for the tables and heat maps."""

    fields: tuple[str, ...] | None = None
    """Quality fields, comma-separated (default: those of ifd, reward, instag, difficulty, ... the file has)."""

    scores: bool = False
    """Also relate the quality scores to each other (score_correlations.csv): which scores agree, which measure
    something else."""

    within: str | None = None
    """Also read the correlations within blocks of records that share this field (e.g. prompt_id: several
    models' answers to one prompt): per block the Spearman rho of each gradient metric, the loss and the
    response length with each quality field, then their mean over blocks with an interval that resamples
    blocks (within.csv). Blocks of fewer than 3 records are left out."""

    def check(self) -> None:
        for name in self.fields or ():
            segment(name, "--fields: the field")  # each names a heat map's file


@dataclass(frozen=True)
class LengthCurveConfig(Options):
    """One comparison at several response windows, read as a curve."""

    comparisons: tuple[Path, ...] = field(metadata={"argument": True})
    """Comparison folders (gradspec compare) of the same groups, each computed at one --response-tokens K."""

    out: Path = field(metadata={"short": "-o"})
    """Folder for length_curve.csv/.md and the figures."""
