"""Analysis stage: aggregates and figures over run folders."""

from gradspec.analysis.figures import layerwise_figure
from gradspec.analysis.layerwise import layer_means

__all__ = ["layer_means", "layerwise_figure"]
