"""Model loading rules and the architecture adapters' naming of projections."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, BloomConfig

from gradspec.errors import ModelError
from gradspec.model import find_projections, load_model, supported_model_types, validate
from gradspec.model.adapters.gpt_neox import per_head_interleaved

from conftest import save_tiny
from tiny_models import CONFIGS, tiny_model


def test_every_tested_architecture_is_supported_and_fully_named(arch: str) -> None:
    assert arch in supported_model_types()
    assert validate(tiny_model(arch)) == []


def test_registry_covers_exactly_the_tested_architectures() -> None:
    assert set(supported_model_types()) - {"gemma3"} == set(CONFIGS)


def test_unsupported_architecture_lists_the_supported_ones() -> None:
    model = AutoModelForCausalLM.from_config(BloomConfig(vocab_size=64, hidden_size=16, n_layer=2, n_head=4))
    with pytest.raises(ModelError, match="architecture 'bloom' has no adapter; supported: .*llama"):
        find_projections(model)


def test_missing_module_names_what_the_model_has() -> None:
    with pytest.raises(ModelError, match="has no projection gate; it has q, k, v, o, up, down"):
        find_projections(tiny_model("gpt2"), ["q", "gate"])


def test_gpt_neox_split_matches_the_models_own_q_k_v() -> None:
    model = tiny_model("gpt_neox")
    attn = model.gpt_neox.layers[0].attention
    x = torch.randn(1, 5, 16, dtype=torch.float64)
    qkv = attn.query_key_value(x)
    heads, size = model.config.num_attention_heads, 16 // model.config.num_attention_heads
    # The model's own reading (GPTNeoXAttention.forward): view per head, then chunk q, k, v.
    q, k, v = qkv.view(1, 5, heads, 3 * size).chunk(3, dim=-1)
    for part, want in enumerate((q, k, v)):
        torch.testing.assert_close(qkv[..., per_head_interleaved(heads, size, part)], want.reshape(1, 5, -1))


def test_pickle_checkpoints_are_refused(tmp_path: Path) -> None:
    folder = save_tiny(tmp_path / "m")
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="pickle files .* safetensors or GGUF only"):
        load_model(str(folder), device="cpu")


def test_loaded_model_is_frozen_and_in_eval_mode(tiny_llama_dir: Path) -> None:
    loaded = load_model(str(tiny_llama_dir), device="cpu")
    assert not loaded.model.training
    assert not any(p.requires_grad for p in loaded.model.parameters())
    assert loaded.describe()["model_type"] == "llama" and loaded.describe()["num_layers"] == 3


@pytest.mark.parametrize("spec", ["/no/such/model.gguf", "/no/such/folder/"])
def test_missing_model_paths(spec: str) -> None:
    with pytest.raises(ModelError):
        load_model(spec, device="cpu")


def test_chunked_models_are_joined_and_hash_checked(tmp_path: Path) -> None:
    import hashlib

    from gradspec.model.shipped import join_chunks

    chunks = []
    for i, data in enumerate((b"abc" * 1000, b"def" * 7, b"g")):
        chunks.append(tmp_path / f"part{i}")
        chunks[-1].write_bytes(data)
    whole = b"abc" * 1000 + b"def" * 7 + b"g"
    out = join_chunks(chunks, tmp_path / "model.gguf", hashlib.sha256(whole).hexdigest())
    assert out.read_bytes() == whole
    with pytest.raises(ModelError, match="expected sha256"):
        join_chunks(chunks, tmp_path / "bad.gguf", "0" * 64)
    assert not (tmp_path / "bad.gguf").exists() and not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ModelError, match="missing"):
        join_chunks([tmp_path / "nope"], tmp_path / "x.gguf", None)


def test_models_list_names_every_shipped_model() -> None:
    from click.testing import CliRunner

    from gradspec.cli.main import app
    from gradspec.model.shipped import SHIPPED, shipped

    result = CliRunner().invoke(app, ["models", "list"])
    assert result.exit_code == 0
    for name in SHIPPED:
        assert name in result.output
    assert shipped("gemma3").name == "gemma3-270m" and shipped("default").name == "smollm2-135m-instruct"
    bad = CliRunner().invoke(app, ["models", "install", "nope"])
    assert bad.exit_code == 2 and "unknown model 'nope'" in bad.output
