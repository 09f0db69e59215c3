"""One fine-tune with transformers' ``Trainer``: the recipe, seeded, on response tokens only.

Full fine-tuning by default; ``lora`` trains low-rank adapters through peft instead. The loss
is transformers' causal-LM loss over every labelled (response) token of a batch. Nothing is
saved unless asked: the caller keeps the trained model in memory to evaluate it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from torch import nn
from tqdm.auto import tqdm

from gradspec.config.train import RecipeConfig
from gradspec.extras import require
from gradspec.prompting import Encoded
from gradspec.train.examples import collate, labels_of, token_steps


def collate_run(items: Sequence[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """One optimiser step's run of samples (``--optimizer-steps``) as one padded batch."""
    (item,) = items
    return collate(item["run"], pad_id)


@dataclass(frozen=True)
class Trained:
    model: nn.Module
    losses: list[dict[str, float]]  # per optimiser step: step, epoch, loss, learning_rate
    steps: int


class Callback:
    """A ``TrainerCallback`` by duck typing: every Trainer event a subclass does not handle does nothing."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


class Curve(Callback):
    """Held-out measures after chosen optimiser steps (``--eval-at``): the learning curve's rows."""

    def __init__(self, at: Sequence[int], measure: Callable[[nn.Module], Sequence[Any]]) -> None:
        self.at = set(at)
        self.measure = measure
        self.rows: list[dict[str, Any]] = []

    def on_step_end(self, args: Any, state: Any, control: Any, model: nn.Module | None = None, **_: Any) -> None:
        if state.global_step in self.at and model is not None:
            model.eval()
            self.rows += [{"step": state.global_step, **m.summary()} for m in self.measure(model)]
            model.train()


class LossBar(Callback):
    """A progress bar over the optimiser steps, with rate, time left and the last loss."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.bar = tqdm(total=state.max_steps, desc="train", unit="step", dynamic_ncols=True)

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix_str(f"loss {float(logs['loss']):.3f}", refresh=False)

    def on_train_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if self.bar is not None:
            self.bar.close()


def trainable(model: nn.Module, recipe: RecipeConfig) -> nn.Module:
    """The model ready to train: every weight (full fine-tuning) or LoRA adapters on its projections."""
    model.train()
    if not recipe.lora:
        model.requires_grad_(True)
        return model
    peft = require("peft", "train", "--lora")
    model.requires_grad_(False)
    config = peft.LoraConfig(
        r=recipe.lora_rank, lora_alpha=2 * recipe.lora_rank, target_modules="all-linear", lora_dropout=0.0
    )
    return peft.get_peft_model(model, config)


def fine_tune(
    model: nn.Module,
    pad_id: int,
    samples: Sequence[Encoded],
    recipe: RecipeConfig,
    progress: bool,
    callbacks: Sequence[Any] = (),
) -> Trained:
    """Train ``model`` in place on ``samples`` with ``recipe``; the loss of every step. ``callbacks``
    (``TrainerCallback``s, e.g. ``gradspec.integrations.GradspecCallback``) run before the rest."""
    from transformers import PrinterCallback, ProgressCallback, Trainer, TrainingArguments, set_seed

    set_seed(recipe.seed)
    rows: list[Any] = [{"input_ids": s.input_ids, "labels": labels_of(s)} for s in samples]
    per_step, epochs, collator = recipe.batch_size, recipe.epochs, partial(collate, pad_id=pad_id)
    if recipe.optimizer_steps is not None:  # one item per optimiser step: a run of equal response tokens
        runs = token_steps(samples, recipe.optimizer_steps, recipe.seed)
        rows = [{"run": [{"input_ids": s.input_ids, "labels": labels_of(s)} for s in run]} for run in runs]
        per_step, epochs, collator = 1, 1, partial(collate_run, pad_id=pad_id)
    net = trainable(model, recipe)
    with tempfile.TemporaryDirectory(prefix="gradspec-train-") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=per_step,
            num_train_epochs=epochs,
            learning_rate=recipe.learning_rate,
            lr_scheduler_type=recipe.schedule,
            warmup_steps=recipe.warmup_ratio,  # a float below 1 is a share of the steps
            weight_decay=recipe.weight_decay,
            seed=recipe.seed,
            data_seed=recipe.seed,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            use_cpu=not any(p.is_cuda for p in net.parameters()),
            disable_tqdm=not progress,
            dataloader_num_workers=0,
            remove_unused_columns=False,
        )
        trainer = Trainer(model=net, args=args, train_dataset=rows, data_collator=collator)
        # One bar with the loss instead of a printed dictionary per step.
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        if progress:
            trainer.add_callback(cast(Any, LossBar()))  # a TrainerCallback by duck typing
        for callback in reversed(callbacks):
            trainer.callback_handler.callbacks.insert(0, callback)
        result = trainer.train()
    losses = [
        {"step": h["step"], "epoch": h["epoch"], "loss": h["loss"], "learning_rate": h["learning_rate"]}
        for h in trainer.state.log_history
        if "loss" in h and "step" in h
    ]
    trained = net.merge_and_unload() if recipe.lora else net  # type: ignore[operator]
    trained.eval()
    trained.requires_grad_(False)
    return Trained(trained, losses, int(result.global_step))
