"""Everything ``gradspec compute`` takes: the stage configs it composes, and two of its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from gradspec.config.capture import CaptureConfig
from gradspec.config.data import DataConfig
from gradspec.config.fields import Options
from gradspec.config.model import ModelConfig
from gradspec.config.prompt import PromptConfig
from gradspec.config.spectra import SpectraConfig
from gradspec.config.store import RunConfig
from gradspec.errors import ConfigError


@dataclass(frozen=True)
class ComputeConfig(Options):
    """A run: records in, run folder out.

    Build it from options by name with ``ComputeConfig.of(data=..., out=..., max_length=512)``;
    change one with ``dataclasses.replace`` on its section or ``replace_leaves(config, ...)``.
    """

    store: RunConfig
    source: DataConfig
    loading: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    spectral: SpectraConfig = field(default_factory=SpectraConfig)

    progress: bool = field(default=True, metadata={"identity": False})
    """Show progress bars (rate and time left)."""

    workers: int = field(default=1, metadata={"min": 1, "identity": False})
    """Processes (one per GPU, or sharing the CPU cores), launched through torchrun."""

    def check(self) -> None:
        if self.capture.steps is not None and self.capture.checkpointing:
            raise ConfigError("--steps backpropagates once per step through one kept graph: it cannot --checkpointing")
        if self.loading.device_map is not None and self.workers > 1:
            raise ConfigError(
                "--device-map spreads one model over every GPU: run it as one process, not with --workers"
            )
