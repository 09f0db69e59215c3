"""A ``transformers.TrainerCallback`` (TRL's SFTTrainer too) that measures how a fixed probe set's
gradient spectra change while the model learns.

Every ``every`` optimiser steps (and before the first) it computes the probe set's exact
layer-wise spectra at the current weights into ``OUT/step-NNNNNN/``, an ordinary run folder that
``show``, ``compare`` and ``report`` read, and adds the headline numbers (mean nuclear norm and
effective rank per module) to the trainer's logs, so ``report_to`` reaches TensorBoard or W&B
when the callback runs before the reporters (``attach`` puts it there). ``OUT`` carries a marker
of kind ``training-spectra`` listing the steps; the report draws each metric per layer across
them.

The measurement never touches the training: the weights are frozen and the model in eval mode
for it, and both are put back as they were, so no ``.grad`` is made or changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from gradspec.artifacts import RUN, TRAINING_SPECTRA, read_marker, write_marker
from gradspec.computation import compute
from gradspec.config.compute import ComputeConfig
from gradspec.config.prompt import PromptConfig
from gradspec.errors import OutputError
from gradspec.model.loading import LoadedModel


class GradspecCallback(TrainerCallback):
    """Spectra of ``probe`` (a data file) every ``every`` steps, written under ``out``."""

    def __init__(
        self,
        probe: str | Path,
        out: str | Path,
        tokenizer: Any,
        every: int = 50,
        prompt: PromptConfig | None = None,
        modules: tuple[str, ...] = ("q", "k", "v", "o"),
    ) -> None:
        self.probe, self.out, self.tokenizer, self.every = Path(probe), Path(out), tokenizer, max(1, every)
        self.prompt = prompt or PromptConfig(max_length=512)
        self.modules = modules
        self.latest: dict[str, float] = {}
        self._claimed = False

    def claim(self) -> None:
        """Refuse, before the first measurement, an ``out`` that holds anything but this callback's own
        output (a run folder, someone's files): it writes step folders and a marker there."""
        if self._claimed:
            return
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            marker = read_marker(TRAINING_SPECTRA.marker_path(self.out)) if self.out.is_dir() else None
            if marker is None or marker.get("kind") != TRAINING_SPECTRA.tag:
                raise OutputError(
                    f"{self.out}: not a folder of training spectra (it holds other files); give the callback a "
                    "new or empty folder"
                )
        self._claimed = True

    def steps(self) -> list[int]:
        """Every step measured in ``out``, by this callback or an earlier one (a resumed training)."""
        found = (p.name.removeprefix("step-") for p in self.out.glob("step-*") if RUN.marker_path(p).is_file())
        return sorted(int(s) for s in found if s.isdigit())

    def attach(self, trainer: Any) -> GradspecCallback:
        """Add the callback before the trainer's reporters, so its numbers reach them."""
        trainer.callback_handler.callbacks.insert(0, self)
        return self

    def measure(self, model: Any, step: int) -> dict[str, float]:
        """The probe set's spectra at the current weights, as a run folder; the headline numbers."""
        self.claim()
        flags = [p.requires_grad for p in model.parameters()]
        training = model.training
        model.eval()
        model.requires_grad_(False)
        try:
            device = next(model.parameters()).device
            loaded = LoadedModel(model, self.tokenizer, "training", str(self.out), device)
            config = ComputeConfig.of(
                data=self.probe,
                out=self.out / f"step-{step:06d}",
                prompt=self.prompt,
                modules=self.modules,
                progress=False,
                device=str(device),
                overwrite=True,
            )
            run = compute(config, loaded)
        finally:
            for p, flag in zip(model.parameters(), flags):
                p.requires_grad_(flag)
            model.train(training)
        rows = run.sql(
            "select module, avg(nuclear_norm), avg(effective_rank) from layer_stats group by module order by module"
        ).fetchall()
        self.latest = {
            f"gradspec/{name}_{m}": float(v)
            for m, nuc, er in rows
            for name, v in (("nuclear_norm", nuc), ("effective_rank", er))
            if v is not None
        }
        write_marker(
            self.out, TRAINING_SPECTRA, {"probe": str(self.probe.resolve()), "every": self.every}, steps=self.steps()
        )
        return self.latest

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **_: Any) -> Any:
        if model is not None:
            self.measure(model, state.global_step)
        return control

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **_: Any) -> Any:
        if model is not None and state.global_step % self.every == 0:
            self.measure(model, state.global_step)
            control.should_log = True
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **_: Any) -> Any:
        if logs is not None and self.latest:
            logs.update(self.latest)
            self.latest = {}
        return control
