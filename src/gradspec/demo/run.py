"""``gradspec demo``: compute both demo groups on one model and draw the first figure."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from gradspec.analysis import layerwise_figure
from gradspec.compute import ComputeConfig, compute_many
from gradspec.prompting import PromptConfig
from gradspec.store import Run

DEMO_GROUPS = ("good", "poor")


def demo_data(group: str) -> Path:
    """Path of a bundled demo file (``good`` or ``poor``)."""
    return Path(str(files("gradspec.demo") / f"{group}.json"))


@dataclass(frozen=True)
class DemoResult:
    runs: dict[str, Run]
    figures: list[Path]


def demo(
    out: str | Path = "demo-run",
    model: str = "default",
    max_length: int = 512,
    template: str = "auto",
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> DemoResult:
    """Compute ``out/good`` and ``out/poor`` and write ``out/layerwise.{png,svg}``."""
    out = Path(out)
    prompt = PromptConfig(template=template, max_length=max_length)  # type: ignore[arg-type]
    configs = [
        ComputeConfig(
            data=demo_data(group),
            out=out / group,
            model=model,
            prompt=prompt,
            device=device,
            overwrite=overwrite,
            progress=progress,
        )
        for group in DEMO_GROUPS
    ]
    runs = dict(zip(DEMO_GROUPS, compute_many(configs)))
    figures = layerwise_figure(runs, out / "layerwise")
    return DemoResult(runs, figures)
