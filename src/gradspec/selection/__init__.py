"""Selection stage: high/low and quantile subsets of scored records, optionally length-matched."""

from gradspec.selection.select import SelectConfig, select

__all__ = ["SelectConfig", "select"]
