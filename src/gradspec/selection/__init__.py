"""Selection stage: high/low and quantile subsets of scored records, optionally length-matched."""

from gradspec.config.selection import SelectConfig
from gradspec.selection.select import select

__all__ = ["SelectConfig", "select"]
