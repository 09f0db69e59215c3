"""Load a causal LM and its tokenizer from a short name, a folder, a ``.gguf`` file or a hub id.

Weights load through safetensors or GGUF only (``use_safetensors`` where a folder has them),
never remote code unless asked. The model comes back in eval mode (no dropout) with every
parameter frozen: the capture stage needs activation gradients only.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from gradspec.config.model import DType, ModelConfig
from gradspec.errors import ModelError, first_line
from gradspec.model.hf import hf
from gradspec.model.placement import device_summary, input_device
from gradspec.model.shipped import cache_root, convert_gguf, converted_path, shipped

Head = Literal["causal", "reward"]
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    """A frozen model, its tokenizer, and what the manifest records about it."""

    model: nn.Module
    tokenizer: Any
    spec: str
    path: str
    device: torch.device
    load_seconds: float = 0.0

    def describe(self) -> dict[str, Any]:
        cfg = hf(self.model).config
        known = shipped(self.spec)
        return {
            "spec": self.spec,
            "name": known.description if known is not None else Path(self.path).name,
            "path": self.path,
            "architecture": type(self.model).__name__,
            "model_type": cfg.model_type,
            "num_layers": cfg.num_hidden_layers,
            "hidden_size": getattr(cfg, "hidden_size", None),
            "dtype": str(next(self.model.parameters()).dtype).removeprefix("torch."),
            "device": str(self.device),
            "device_map": device_summary(self.model),
        }


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"--device {device}: no CUDA device is available; use --device cpu")
    return torch.device(device)


def resolve_path(spec: str) -> Path | str:
    """A local checkpoint folder for ``spec``, or the hub id itself."""
    known = shipped(spec)
    if known is not None:
        return converted_path(known)
    p = Path(spec).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelError(f"{p}: no such GGUF file")
        stat = p.stat()
        key = hashlib.sha256(f"{p.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
        target = cache_root() / "models" / f"gguf-{p.stem}-{key}"
        return target if (target / "config.json").exists() else convert_gguf(p, target)
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ModelError(f"{p}: folder has no config.json, so it is not a Hugging Face model folder")
        pickles = [f for pattern in ("*.bin", "*.pt", "*.pth") for f in p.glob(pattern)]
        if pickles and not any(p.glob("*.safetensors")):
            raise ModelError(
                f"{p}: weights are pickle files (.bin/.pt), which can run code when loaded; gradspec loads "
                "safetensors or GGUF only: save the model with save_pretrained(..., safe_serialization=True)"
            )
        return p
    if p.exists():
        raise ModelError(f"{p}: not a model folder or a .gguf file")
    return spec  # a hub id; from_pretrained finds it in the local hub cache or downloads it


def load_model(
    spec: str = "default",
    dtype: DType = "float32",
    device: str = "auto",
    trust_remote_code: bool = False,
    head: Head = "causal",
    device_map: str | dict[str, Any] | None = None,
    progress: bool = True,
) -> LoadedModel:
    """Load ``spec`` frozen and in eval mode on ``device``.

    ``head="reward"`` loads a sequence-classification model (a reward model) instead of a
    causal LM, through the same safe-loading rules.

    ``device_map`` (``auto``, ``balanced``, ``sequential`` or an explicit map) lets accelerate
    spread a model too large for one device over every GPU (then CPU memory, then disk, under
    the model cache); ``device`` is then not used, and inputs go where the embeddings are.
    """
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    auto = AutoModelForCausalLM if head == "causal" else AutoModelForSequenceClassification

    started = time.perf_counter()
    where = resolve_path(spec)
    dev = resolve_device(device)
    # transformers draws its own bar while it loads weights; --no-progress silences it too.
    (hf_logging.enable_progress_bar if progress else hf_logging.disable_progress_bar)()  # type: ignore[no-untyped-call]
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=trust_remote_code)
        placement: dict[str, Any] = {}
        if device_map is not None:  # weights that fit nowhere else go to a folder of this load's own
            placement = {"device_map": device_map, "offload_folder": tempfile.mkdtemp(prefix="gradspec-offload-")}
        model = auto.from_pretrained(
            where, dtype=DTYPES[dtype], trust_remote_code=trust_remote_code, use_safetensors=True, **placement
        )
    except (OSError, ValueError) as exc:
        first = first_line(exc)
        raise ModelError(f"cannot load model '{spec}': {first}") from exc
    if device_map is None:
        hf(model).to(dev)
    else:
        weakref.finalize(model, shutil.rmtree, placement["offload_folder"], True)
        dev = input_device(model)
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(model, tokenizer, spec, str(where), dev, time.perf_counter() - started)


def load(config: ModelConfig, device: str | None = None, head: Head = "causal", progress: bool = True) -> LoadedModel:
    """The model ``config`` names; ``device`` overrides its device (a rank's own GPU)."""
    return load_model(
        config.model, config.dtype, device or config.device, config.trust_remote_code, head, config.device_map, progress
    )


def load_tokenizer(config: ModelConfig) -> Any:
    """The tokenizer alone (what ``inspect`` needs): no weights are read."""
    from transformers import AutoTokenizer

    where = resolve_path(config.model)
    try:
        return AutoTokenizer.from_pretrained(where, trust_remote_code=config.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the tokenizer of '{config.model}': {first_line(exc)}") from exc
