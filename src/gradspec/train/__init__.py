"""Train stage: fine-tune a model on a selection with a fixed, seeded recipe, and measure it on
held-out sets no selection could have seen (``run``, ``evaluate``); read finished fine-tunes
against random's draws (``results``, torch-free). It closes the loop from a quality score to a
model. The names below load on first use, so reading results never imports torch."""

from gradspec.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {"TrainConfig": "gradspec.config.train", "evaluate": "gradspec.train.evaluate", "train": "gradspec.train.run"},
)
__all__ = ["TrainConfig", "evaluate", "train"]
