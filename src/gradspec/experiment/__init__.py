"""Experiment stage: a YAML grid run end to end (score, select, compute, compare, correlate, report).

Reading and checking an experiment file (``config``) loads no torch; running one does.
"""

from gradspec.experiment.config import Experiment, load_experiment
from gradspec.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {"run_experiment": "gradspec.experiment.runner"})
__all__ = ["Experiment", "load_experiment", "run_experiment"]
