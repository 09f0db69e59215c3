"""The contract of every output folder: its kind, marker, files and format (``kinds``), and how
a folder is told apart and checked (``markers``). Torch-free and pandas-free."""

from gradspec.artifacts.kinds import (
    COMPARISON,
    CORRELATION,
    EXPERIMENT,
    KINDS,
    LENGTH_CURVE,
    RUN,
    SCORE_STATE,
    SELECTION,
    SELECTION_RESULTS,
    TRAINING,
    TRAINING_SPECTRA,
    Kind,
)
from gradspec.artifacts.markers import Found, identify, identify_as, read_marker, write_marker

__all__ = [
    "COMPARISON",
    "CORRELATION",
    "EXPERIMENT",
    "KINDS",
    "LENGTH_CURVE",
    "RUN",
    "SCORE_STATE",
    "SELECTION",
    "SELECTION_RESULTS",
    "TRAINING",
    "TRAINING_SPECTRA",
    "Found",
    "Kind",
    "identify",
    "identify_as",
    "read_marker",
    "write_marker",
]
