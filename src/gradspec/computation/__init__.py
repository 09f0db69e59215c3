"""Compute stage (``gradspec compute``): records to a run folder (see ``run.compute``); ``batches`` is the computation
itself as a generator, ``job`` what is resolved before it starts, ``rows`` its table rows."""

from gradspec.computation.run import compute, compute_many
from gradspec.config.compute import ComputeConfig

__all__ = ["ComputeConfig", "compute", "compute_many"]
