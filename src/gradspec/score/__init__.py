"""Score stage: the data-quality metrics the field uses (IFD, reward, InsTag, difficulty, length).

Each metric maps records to ``Scored`` values; ``run.score`` writes every input record back
with the added fields, one output per input, in order.
"""

from gradspec.score.outcome import Scored
from gradspec.score.run import METRICS, ScoreConfig, score

__all__ = ["METRICS", "ScoreConfig", "Scored", "score"]
