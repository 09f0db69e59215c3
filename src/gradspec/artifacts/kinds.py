"""Every kind of output gradspec writes, declared once: its marker, its files, its format.

A run, a comparison, a length curve, a correlation, a selection, a scored file, a training, the
summary of several trainings and an experiment are each a folder (a scored file: a file and its
state folder) that carries a marker, a JSON file holding ``kind`` (``gradspec-<name>``), the
``format`` of its layout, the ``gradspec_version`` that wrote it and the ``config`` that made
it. Readers tell a folder's kind from its marker (``markers.identify``), and every stage names
the files of another stage through these declarations, never by spelling them.

Nothing here imports more than the standard library: configs, the CLI's ``--help`` and other
programs read these names without loading pandas or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gradspec.store.contract import MANIFEST, RUN_FORMAT, RUN_KIND, TABLES


@dataclass(frozen=True)
class Kind:
    """One kind of output folder."""

    name: str
    """Short name, as ``gradspec show`` prints it (``comparison``)."""
    marker: str
    """The marker's file name inside the folder."""
    format: int
    """The layout version this gradspec writes; a reader refuses a newer one."""
    what: str
    """What the folder is, in a few words."""
    files: dict[str, str] = field(default_factory=dict)
    """Role -> file (or folder) name: what other stages read from it."""
    legacy: tuple[str, ...] = ()
    """Files that tell a folder of this kind written before markers (read once, upgraded on rewrite)."""
    legacy_tags: tuple[str, ...] = ()
    """Other values of ``kind`` older markers hold."""
    own_tag: str | None = None
    """The marker's ``kind`` where it is not ``gradspec-<name>`` (kept from before this registry)."""

    @property
    def tag(self) -> str:
        """The marker's ``kind`` value."""
        return self.own_tag or f"gradspec-{self.name}"

    def marker_path(self, folder: str | Path) -> Path:
        return Path(folder) / self.marker

    def file(self, folder: str | Path, role: str) -> Path:
        """The path of one of the folder's declared files (``KeyError`` for a role it lacks)."""
        return Path(folder) / self.files[role]

    def stem(self, folder: str | Path, role: str) -> Path:
        """A declared table's path without its suffix (tables are written as .csv and .md)."""
        return self.file(folder, role).with_suffix("")


RUN = Kind(
    "run",
    MANIFEST,
    RUN_FORMAT,
    "per-sample gradient spectra of one data file (gradspec compute)",
    files={t: t for t in TABLES},
    own_tag=RUN_KIND,
)
COMPARISON = Kind(
    "comparison",
    "comparison.json",
    2,
    "groups of samples compared (gradspec compare)",
    files={
        "summary": "summary.csv",
        "layerwise": "layerwise.csv",
        "per_layer": "per_layer.csv",
        "curves": "curves.csv",
        "curve_shapes": "curve_shapes.csv",
        "beyond": "beyond.csv",
        "steps": "step_kinds.csv",
        "paired": "paired.csv",
        "primary": "primary.csv",
    },
    legacy_tags=("comparison",),
)
LENGTH_CURVE = Kind(
    "length-curve",
    "length_curve.json",
    1,
    "one comparison at several response windows (gradspec length-curve)",
    files={"table": "length_curve.csv"},
    legacy=("length_curve.csv",),
)
CORRELATION = Kind(
    "correlation",
    "correlation.json",
    1,
    "quality scores against gradient metrics (gradspec correlate)",
    files={
        "table": "correlations.csv",
        "by_layer": "correlations_by_layer.csv",
        "scores": "score_correlations.csv",
        "within": "within.csv",
    },
    legacy=("correlations.csv",),
)
SELECTION = Kind(
    "selection",
    "selection.json",
    1,
    "groups of records chosen by a score (gradspec select)",
    legacy=("*_selection.json",),
)
SCORE_STATE = Kind(
    "score-state",
    "identity.json",
    1,
    "what gradspec score finished for one output file (resumes it)",
    legacy_tags=(),
)
TRAINING = Kind(
    "training",
    "train.json",
    1,
    "a fine-tune on a selection and its held-out measures (gradspec train)",
    files={
        "losses": "loss_curve.csv",
        "eval": "eval.csv",
        "items": "eval_items.csv",
        "answers": "eval_answers.csv",
        "curve": "curve.csv",
        "model": "model",
    },
    own_tag="gradspec-train",
)
SELECTION_RESULTS = Kind(
    "selection-results",
    "selection_results.json",
    1,
    "fine-tunes of several selections against a baseline",
    files={"table": "selection_results.csv", "curves": "learning_curves.csv"},
    legacy=("selection_results.csv",),
)
EXPERIMENT = Kind(
    "experiment",
    "experiment.json",
    2,  # 2: stage markers in .stages/, ``stages`` in the marker (1: .steps/, ``steps``; read and renamed)
    "a YAML grid run end to end (gradspec experiment)",
    legacy=("experiment.json",),
)

TRAINING_SPECTRA = Kind(
    "training-spectra",
    "training_spectra.json",
    1,
    "a probe set's spectra at steps of a training (GradspecCallback)",
)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        RUN,
        COMPARISON,
        LENGTH_CURVE,
        CORRELATION,
        SELECTION,
        SCORE_STATE,
        TRAINING,
        SELECTION_RESULTS,
        EXPERIMENT,
        TRAINING_SPECTRA,
    )
}
"""Every kind by name, in the order a folder is tried."""
