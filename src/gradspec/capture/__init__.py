"""Capture stage: hooks that turn a forward/backward pass into per-sample gradient factors."""

from gradspec.capture.batch import (
    SampleFactors,
    collate,
    forward_losses,
    per_sample_loss,
    run_batch,
    run_batch_steps,
)
from gradspec.capture.budget import default_batch_tokens, token_batches
from gradspec.capture.hooks import Capture

__all__ = [
    "Capture",
    "SampleFactors",
    "collate",
    "default_batch_tokens",
    "forward_losses",
    "per_sample_loss",
    "run_batch",
    "run_batch_steps",
    "token_batches",
]
