"""Where a model's inputs go, also when accelerate spreads it over several devices.

With ``device_map`` (see ``loading.load_model``) each decoder layer sits on its own device;
the capture hooks keep every factor where its layer ran, and the spectra gather one
module's layers on one device.
"""

from __future__ import annotations

import torch
from torch import nn

from gradspec.model.hf import hf


def _as_device(where: object) -> torch.device:
    return torch.device(f"cuda:{where}" if isinstance(where, int) else str(where))


def input_device(model: nn.Module) -> torch.device:
    """The device token ids must be on: the input embeddings', or for a dispatched model whose
    embeddings are offloaded, the first device of its map that can compute."""
    weight = hf(model).get_input_embeddings().weight
    if weight.device.type != "meta":
        return weight.device
    placed = [_as_device(d) for d in getattr(model, "hf_device_map", {}).values() if d != "disk"]
    return next((d for d in placed if d.type != "meta"), torch.device("cpu"))


def device_summary(model: nn.Module) -> dict[str, int] | None:
    """{device: number of placed modules} of a dispatched model, for the manifest; else None."""
    mapping = getattr(model, "hf_device_map", None)
    if not mapping:
        return None
    counts: dict[str, int] = {}
    for where in mapping.values():
        key = "disk" if where == "disk" else str(_as_device(where))
        counts[key] = counts.get(key, 0) + 1
    return counts
