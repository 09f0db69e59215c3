"""Options of ``gradspec baseline``: does a selection beat random draws of the same token budget?"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gradspec.config.fields import Options
from gradspec.config.model import ModelConfig
from gradspec.config.names import segment
from gradspec.config.prompt import PromptConfig
from gradspec.config.train import EvalConfig, RecipeConfig
from gradspec.errors import ConfigError


@dataclass(frozen=True)
class BaselineConfig(Options):
    """A selection and N random draws of its token budget from the same pool, trained alike and read
    against each other (the verdict docs/selection.md describes)."""

    selection: Path = field(metadata={"argument": True})
    """A group file written by select (e.g. OUT/pool_highest_3000tokens.json): the records to train on."""

    pool: Path
    """The scored pool the selection was made from (score --metrics length gives every record its token
    lengths, which a budget needs): the random draws come from it."""

    out: Path = field(metadata={"short": "-o"})
    """Folder of the experiment this builds (baseline.yaml, the draws, the trainings, summary and report);
    run again, it resumes."""

    draws: int = field(default=10, metadata={"min": 2})
    """Random draws of the same budget, each trained once with its own seed: the spread a selection is read
    against (its percentile among them, and the difference to their mean in units of their own SD)."""

    budget: int | None = field(default=None, metadata={"min": 1})
    """Response tokens (those that fit in --max-length) each draw holds; default: the selection's own."""

    method: str | None = None
    """The selection's name in the tables (default: its file's stem)."""

    loading: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=lambda: PromptConfig(max_length=256))
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)

    progress: bool = field(default=True, metadata={"identity": False})
    """Show progress bars (rate and time left)."""

    def check(self) -> None:
        if self.method is not None:
            segment(self.method, "--method")
        if not self.evaluation.eval_instruction and not self.evaluation.eval_reasoning:
            raise ConfigError("baseline: give held-out sets (--eval-instruction FILE and/or --eval-reasoning FILE)")
        if self.prompt.response_tokens is not None or self.prompt.record_windows:
            raise ConfigError("baseline: response windows are for measuring gradients, not for training")
