"""``gradspec demo``: compute both demo groups on one model and draw the first figure."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from gradspec.analysis import layerwise_figure
from gradspec.computation import compute_many
from gradspec.config.compute import ComputeConfig
from gradspec.config.data import DataConfig
from gradspec.config.report import DemoConfig
from gradspec.config.store import RunConfig
from gradspec.store import Run

DEMO_GROUPS = ("good", "poor")


def demo_data(group: str) -> Path:
    """Path of a bundled demo file (``good`` or ``poor``)."""
    return Path(str(files("gradspec.demo") / f"{group}.json"))


@dataclass(frozen=True)
class DemoResult:
    runs: dict[str, Run]
    figures: list[Path]


def demo(config: DemoConfig | None = None) -> DemoResult:
    """Compute ``out/good`` and ``out/poor`` and write ``out/layerwise.{png,svg}`` (defaults: ``DemoConfig()``)."""
    config = config or DemoConfig()
    out = Path(config.out)
    configs = [
        ComputeConfig(
            source=DataConfig(demo_data(group)),
            store=RunConfig(out / group, overwrite=config.overwrite),
            loading=config.loading,
            prompt=config.prompt,
            progress=config.progress,
        )
        for group in DEMO_GROUPS
    ]
    runs = dict(zip(DEMO_GROUPS, compute_many(configs)))
    figures = layerwise_figure(runs, out / "layerwise")
    return DemoResult(runs, figures)
