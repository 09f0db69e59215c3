"""Analysis stage: long frames over run folders, group comparisons with length control,
correlations with quality scores, and figures."""

from gradspec.analysis.compare import CompareConfig, compare
from gradspec.analysis.figures import layerwise_figure
from gradspec.analysis.layerwise import layer_means

__all__ = ["CompareConfig", "compare", "layer_means", "layerwise_figure"]
