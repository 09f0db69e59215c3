"""A computation planned in full before any sample runs: the resolved options, the model, what
it measures, the run's identity and its manifest.

Resolving turns the options a user gave into the ones used (``template auto`` becomes what the
tokenizer has, ``modules all`` the projections the model has, the batch size the device's);
the manifest records both kinds, and a run resumes only with the same identity.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from gradspec import __version__
from gradspec.capture import default_batch_tokens
from gradspec.config.compute import ComputeConfig
from gradspec.config.fields import replace_leaves, split_identity
from gradspec.data import Dataset
from gradspec.distributed import World
from gradspec.model import LayerProjection, LoadedModel, find_projections, validate
from gradspec.model.hf import num_layers
from gradspec.prompting import resolve_template
from gradspec.prompting.templates import injected_system_prompt, layout
from gradspec.spectra import same_layer_notes
from gradspec.store.contract import RUN_FORMAT, RUN_KIND


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def identity(config: ComputeConfig, data_sha256: str) -> dict[str, Any]:
    """What a run's numbers depend on: every option that can change one, and the data's hash."""
    return {**split_identity(config)[0], "data_sha256": data_sha256}


def unresolved(config: ComputeConfig) -> set[str]:
    """Options whose value is only known once the model is loaded (left out of the early check)."""
    pending = set()
    if config.prompt.template == "auto":
        pending.add("template")
    if config.capture.modules is None:
        pending.add("modules")
    return pending


@dataclass(frozen=True)
class Job:
    """The resolved config, the loaded model and the projections it measures."""

    config: ComputeConfig
    loaded: LoadedModel
    projections: list[LayerProjection]
    world: World

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(self.config.capture.modules or ())

    @property
    def n_layers(self) -> int:
        return num_layers(self.loaded.model)

    @property
    def shapes(self) -> dict[str, tuple[int, int]]:
        return {t.name: (t.projection.d_out, t.projection.d_in) for t in self.projections if t.layer == 0}


def plan(config: ComputeConfig, loaded: LoadedModel, world: World) -> Job:
    """Resolve every option that depends on the model, its tokenizer or the device."""
    projections = find_projections(loaded.model, config.capture.modules)
    modules = tuple(dict.fromkeys(t.name for t in projections))
    resolved = replace_leaves(
        config,
        template=resolve_template(config.prompt.template, loaded.tokenizer),
        modules=modules,
        batch_tokens=config.capture.batch_tokens or default_batch_tokens(str(loaded.device), loaded.model),
    )
    return Job(resolved, loaded, projections, world)


def manifest(job: Job, dataset: Dataset, previous: dict[str, Any], run_id: str) -> dict[str, Any]:
    """``run.json``: identity (``config``), the other options, the model, data, shapes, counts, timing.

    ``run_id`` is also written into every part, so parts copied in from another run are told apart."""
    same, other = split_identity(job.config)
    shapes = job.shapes
    return {
        "kind": RUN_KIND,
        "format": RUN_FORMAT,
        "run_id": run_id,
        "gradspec_version": __version__,
        "created_at": previous.get("created_at", now()),
        "updated_at": now(),
        "config": identity(job.config, dataset.sha256),
        "options": {**other, "world_size": job.world.size},
        "model": job.loaded.describe(),
        "data": {
            "path": str(dataset.path.resolve()) if dataset.path.exists() else str(dataset.path),  # a hub id stays one
            "sha256": dataset.sha256,
            "n_records": len(dataset.items),
        },
        "prompt": {
            "layout": layout(job.loaded.tokenizer, job.config.prompt),
            "injected_system_prompt": injected_system_prompt(job.loaded.tokenizer, job.config.prompt),
        },
        "modules": list(job.modules),
        "shapes": {m: list(s) for m, s in shapes.items()},
        "similarity": {
            "adjacent": "cosine of module m's gradient at layer i and at layer i+1, stored at layer i",
            "distant": "cosine of module m's gradient at layer i and at layer i+2, stored at layer i",
            "same_layer": same_layer_notes(shapes, job.modules),
            "probe": "cosine of module m's gradient at layer i with the probe's (the first record of the data file "
            "that computes) at layer i: the alignment of unrelated samples' gradients; none for the probe itself",
        },
        "unnamed_projections": [str(p) for p in validate(job.loaded.model)],
        "environment": {"python": platform.python_version(), "platform": platform.platform()},
        "counts": previous.get("counts", {}),
        "timing": {
            "load_seconds": round(job.loaded.load_seconds, 3),
            "compute_seconds": previous.get("timing", {}).get("compute_seconds", 0.0),
        },
    }
