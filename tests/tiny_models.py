"""Tiny random models of every supported architecture, built in process from configs.

Sizes follow TRL's tiny models (hidden 8-16, 4 heads, 2 KV heads, 2 layers); head counts are
chosen so that fused layouts (Phi-3 stacked q|k|v with GQA, GPT-NeoX per-head interleaving)
have parts of different sizes and a wrong split would be caught.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    Gemma3TextConfig,
    GemmaConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    Phi3Config,
    PretrainedConfig,
    Qwen2Config,
    Qwen3Config,
)

VOCAB = 272  # covers the byte tokenizer of conftest (256 bytes + specials)
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=16,
    intermediate_size=24,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
)

CONFIGS: dict[str, Callable[[], PretrainedConfig]] = {
    "llama": lambda: LlamaConfig(**COMMON),
    "mistral": lambda: MistralConfig(**COMMON, sliding_window=None),
    "qwen2": lambda: Qwen2Config(**COMMON),
    "qwen3": lambda: Qwen3Config(**COMMON, head_dim=4),
    "gemma": lambda: GemmaConfig(**COMMON, head_dim=4),
    "gemma2": lambda: Gemma2Config(**COMMON, head_dim=4),
    # q is 32x16 and o is 16x32 here, as in Gemma 3 270M (q 1024x640, o 640x1024).
    "gemma3_text": lambda: Gemma3TextConfig(**COMMON, head_dim=8, sliding_window=8),
    "phi3": lambda: Phi3Config(**COMMON, pad_token_id=0, bos_token_id=1, eos_token_id=2),
    "gpt2": lambda: GPT2Config(
        vocab_size=VOCAB, n_embd=16, n_layer=3, n_head=4, n_positions=256, bos_token_id=1, eos_token_id=2
    ),
    # GPT-NeoX has no grouped KV heads: every other size as above.
    "gpt_neox": lambda: GPTNeoXConfig(**{k: v for k, v in COMMON.items() if k != "num_key_value_heads"}),
}


def tiny_model(arch: str, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """A frozen, eval-mode random model of ``arch`` (float64 by default, so that any
    difference from the oracle beyond ~1e-10 is a bug, not round-off).

    Weights are re-drawn at a larger scale than the default init so that gradients are far
    from zero and every layer matters.
    """
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(CONFIGS[arch](), dtype=dtype)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3)
            elif "norm" in name or "ln" in name:
                p.uniform_(0.5, 1.5)
    model.eval()
    model.requires_grad_(False)
    return model
