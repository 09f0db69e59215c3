"""Options of ``gradspec train``: fine-tune a model on a selection with a fixed recipe, then
evaluate it on held-out sets that no selection could have seen."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gradspec.config.data import DataConfig
from gradspec.config.fields import Options
from gradspec.config.model import ModelConfig
from gradspec.config.prompt import PromptConfig
from gradspec.errors import ConfigError

Schedule = Literal["cosine", "linear", "constant"]


def parse_step_list(value: Any) -> tuple[int, ...]:
    """Optimiser steps: ``"2,4,8"`` or a list of positive whole numbers, in order, once each."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"expects steps like 2,4,8, got {value!r}")
    steps = []
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not text.isdigit() or int(text) < 1:
            raise ValueError(f"expects positive step numbers like 2,4,8, got {item!r}")
        steps.append(int(text))
    return tuple(sorted(set(steps)))


@dataclass(frozen=True)
class RecipeConfig(Options):
    """How the model is trained; every part of it is recorded in the results."""

    epochs: int = field(default=1, metadata={"min": 0})
    """Passes over the selection (0: no training, the model as it is is evaluated: the baseline)."""

    learning_rate: float = field(default=3e-5, metadata={"min": 0.0})
    """Peak learning rate (AdamW)."""

    batch_size: int = field(default=8, metadata={"min": 1})
    """Records per optimiser step (unless --optimizer-steps)."""

    optimizer_steps: int | None = field(default=None, metadata={"min": 1})
    """Train in exactly this many optimiser steps, one pass, each on an equal share of the selection's response
    tokens (records in seeded order, cut into runs of about total/N tokens): selections of one token budget then
    take the same steps of the same size, whatever their record counts (--epochs and --batch-size are then not
    used)."""

    schedule: Schedule = "cosine"
    """Learning-rate schedule after the warm-up."""

    warmup_ratio: float = field(default=0.1, metadata={"min": 0.0})
    """Share of the steps spent warming the learning rate up."""

    weight_decay: float = field(default=0.0, metadata={"min": 0.0})
    """AdamW weight decay."""

    seed: int = 0
    """Seed of the training order and of any initialisation (LoRA)."""

    lora: bool = False
    """Train low-rank adapters (peft) instead of every weight."""

    lora_rank: int = field(default=16, metadata={"min": 1})
    """Rank of the LoRA adapters (with --lora)."""


@dataclass(frozen=True)
class EvalConfig(Options):
    """Held-out sets: instruction data from other sources (response loss) and reasoning tasks."""

    eval_instruction: tuple[Path, ...] = ()
    """Held-out instruction files: the mean response loss on each (lower is better)."""

    eval_reasoning: tuple[Path, ...] = ()
    """Held-out task files of the fast/slow-thinking data (answer-only files, e.g. ecqa_train_no_cot.json):
    multiple-choice accuracy by log-likelihood where the task has choices, answer loss otherwise."""

    eval_judged: tuple[Path, ...] = ()
    """Held-out judged answers: several answers to each prompt, each with a quality (--eval-judged-quality), e.g.
    strong and weak models' answers to the same prompts. Two measures over the first --eval-response-tokens of
    every answer: preference_accuracy (per prompt, the share of its pairs of answers of unequal quality in which
    the better one has the lower loss; higher is better) and quality_gap (per prompt, the mean loss of its answers
    above the prompt's median quality minus that of those below; lower is better). They can see answer quality
    where the response loss on one model's answers sees closeness to that model."""

    eval_judged_by: str = "prompt_id"
    """Field of a judged answer naming its prompt (answers are compared only with answers to the same prompt)."""

    eval_judged_quality: str = "generator_lc_winrate"
    """Field of a judged answer holding its quality (higher is better; a number or a number written as text)."""

    eval_limit: int = field(default=48, metadata={"min": 1})
    """Records taken from each held-out file (the first ones; of a judged file, the answers to its first this many
    prompts)."""

    eval_response_tokens: int | None = field(default=None, metadata={"min": 1})
    """Held-out response loss over the first K tokens of each response only, so the reference answers' lengths
    drop out of the comparison: a response with fewer than K tokens that fit beside its prompt is skipped (and
    counted in eval.csv's skipped), so every item has exactly K."""

    eval_at: tuple[int, ...] = field(default=(), metadata={"parse": parse_step_list})
    """Also measure the held-out instruction sets' response loss after these optimiser steps, comma-separated:
    a learning curve (curve.csv, with every final measure at the last step)."""

    def check(self) -> None:
        if self.eval_judged and self.eval_response_tokens is None:
            raise ConfigError("--eval-judged compares answers over their first K tokens: give --eval-response-tokens K")

    def files(self) -> dict[str, tuple[Path, ...]]:
        """Every held-out file by its kind (HELD_OUT's keys)."""
        return {kind: getattr(self, name) for kind, name in HELD_OUT.items()}


HELD_OUT = {"instruction": "eval_instruction", "reasoning": "eval_reasoning", "judged": "eval_judged"}
"""The kinds of held-out set (an experiment's ``evaluation`` keys) and the option that holds each's files."""


@dataclass(frozen=True)
class TrainConfig(Options):
    """A fine-tune: a selection in, the training curve and held-out results out."""

    source: DataConfig

    out: Path = field(metadata={"short": "-o", "identity": False})
    """Folder for train.json (recipe, selection hash, model, loss curve, results) and the tables."""

    loading: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=lambda: PromptConfig(max_length=256))
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)

    save_model: bool = field(default=False, metadata={"identity": False})
    """Also write the fine-tuned weights (safetensors) into OUT/model."""

    progress: bool = field(default=True, metadata={"identity": False})
    """Show progress bars (rate and time left)."""

    def check(self) -> None:
        if self.prompt.response_tokens is not None or self.prompt.record_windows:
            raise ConfigError("train: response windows are for measuring gradients, not for training")
