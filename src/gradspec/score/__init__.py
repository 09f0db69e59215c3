"""Score stage: the data-quality metrics the field uses (IFD, reward, InsTag, difficulty,
length) and the targeted ones (exact gradient similarity to a target set, RDS+, TF-IDF).

Each metric is one file that registers itself (``registry.py``); ``run.score`` writes every
input record back with the added fields, one output per input, in order.
"""

from gradspec.config.score import ScoreConfig
from gradspec.score import difficulty, gradient, ifd, instag, length, lexical, reward, target  # noqa: F401 (registration)
from gradspec.score.outcome import Scored
from gradspec.score.registry import SCORERS
from gradspec.score.run import score

__all__ = ["SCORERS", "ScoreConfig", "Scored", "score"]
