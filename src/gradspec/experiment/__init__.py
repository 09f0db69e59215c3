"""Experiment stage: a YAML grid run end to end (score, select, compute, compare, correlate, report)."""

from gradspec.experiment.config import Experiment, load_experiment
from gradspec.experiment.runner import run_experiment

__all__ = ["Experiment", "load_experiment", "run_experiment"]
