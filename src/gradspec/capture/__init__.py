"""Capture stage: hooks that turn a forward/backward pass into per-sample gradient factors."""

from gradspec.capture.batch import SampleFactors, run_batch
from gradspec.capture.hooks import Capture

__all__ = ["Capture", "SampleFactors", "run_batch"]
