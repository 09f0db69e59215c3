"""Analysis stage: long frames over run folders, group comparisons with length control,
correlations with quality scores, and figures."""

from gradspec.analysis.compare import compare
from gradspec.analysis.figures import layerwise_figure
from gradspec.config.analysis import CompareConfig

__all__ = ["CompareConfig", "compare", "layerwise_figure"]
