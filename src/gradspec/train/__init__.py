"""Train stage: fine-tune a model on a selection with a fixed, seeded recipe, and measure it on
held-out sets no selection could have seen. It closes the loop from a quality score to a model."""

from gradspec.config.train import TrainConfig
from gradspec.train.evaluate import evaluate
from gradspec.train.run import train

__all__ = ["TrainConfig", "evaluate", "train"]
