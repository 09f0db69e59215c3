"""Options of ``gradspec report``, ``gradspec show`` and ``gradspec demo``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gradspec.config.data import DataConfig
from gradspec.config.fields import Options
from gradspec.config.model import ModelConfig
from gradspec.config.prompt import PromptConfig


@dataclass(frozen=True)
class ReportConfig(Options):
    """One self-contained HTML page."""

    inputs: tuple[Path, ...] = field(metadata={"argument": True})
    """Run, comparison (gradspec compare) or correlation (gradspec correlate) folders."""

    out: Path = field(metadata={"short": "-o"})
    """report.html to write."""

    title: str = "gradspec report"
    """Title of the page."""


@dataclass(frozen=True)
class ShowConfig(Options):
    """What an output folder is; for a run, its counts and means."""

    folder: Path = field(metadata={"argument": True})
    """An output folder: a run, a comparison, a length curve, a correlation, a selection, a training, an
    experiment (or a scored file)."""


@dataclass(frozen=True)
class VerifyConfig(Options):
    """A run folder to check."""

    run: Path = field(metadata={"argument": True})
    """A run folder."""


@dataclass(frozen=True)
class DemoConfig(Options):
    """The bundled demo: careful against poor answers to the same 24 instructions, raw and at equal length."""

    out: Path = field(default=Path("demo-run"), metadata={"short": "-o"})
    """Folder for both runs and the figure."""

    loading: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=lambda: PromptConfig(max_length=512))

    overwrite: bool = False
    """Recompute both runs from scratch."""

    progress: bool = True
    """Show progress bars (rate and time left)."""


@dataclass(frozen=True)
class ExperimentConfig(Options):
    """Which experiment file, at which size, written where."""

    config: Path = field(metadata={"argument": True})
    """Experiment YAML (see configs/experiments/)."""

    full: bool = False
    """The full size (the file's full block); results go to a folder of their own."""

    out: Path | None = field(default=None, metadata={"short": "-o"})
    """Output folder (default: experiments/NAME, or experiments/NAME-full)."""

    data_root: Path | None = None
    """Where the file's data paths start (default: its data_root)."""


@dataclass(frozen=True)
class InspectConfig(Options):
    """The first records of a file (--limit of them, 3 by default) as the model will see them."""

    source: DataConfig
    loading: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)


@dataclass(frozen=True)
class ExploreConfig(Options):
    """A run's samples as one page to sort, filter, read and pick from."""

    run: Path = field(metadata={"argument": True})
    """A run folder."""

    out: Path = field(default=Path("explore.html"), metadata={"short": "-o"})
    """The HTML page to write (it works offline, from the file alone)."""

    scored: Path | None = None
    """The scored file the run was computed on: every numeric field becomes a column (nested ones by dotted path,
    e.g. scores.DeitaQScorer.score), short text fields (generator, drop_reason) columns the filter box searches,
    and a keep column (from select --keep-column or filter) ticks the rows it keeps."""

    first: tuple[str, ...] | None = None
    """Columns shown first, comma-separated; the page opens sorted by the first, highest first (default: index,
    status, the scores, then lengths, loss and the gradient metrics, sorted by index). A name that is no column is
    an error that lists them."""
