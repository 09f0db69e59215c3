"""Score stage: the data-quality metrics the field uses (IFD, reward, InsTag, difficulty,
length), the gradients' own per-sample score (``grad_quality``) and the targeted ones (exact
gradient similarity to a target set, RDS+, TF-IDF).

Each metric is one file that registers itself (``registry.py``); ``run.score`` loads them all
and writes every input record back with the added fields, one output per input, in order. The
names below load on first use, so a reader of scores (selection, the report) never imports torch.
"""

from gradspec.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SCORERS": "gradspec.score.run",
        "ScoreConfig": "gradspec.config.score",
        "Scored": "gradspec.score.outcome",
        "score": "gradspec.score.run",
        "grad_quality": "gradspec.score.grad_quality",
    },
)
__all__ = ["SCORERS", "ScoreConfig", "Scored", "grad_quality", "score"]
