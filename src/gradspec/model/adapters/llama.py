"""Separate q/k/v/o and gate/up/down ``nn.Linear`` modules: the Llama layout.

Shared by Llama, Mistral, Qwen2/Qwen3 and Gemma 1/2/3, which name them alike.
"""

from __future__ import annotations

from typing import Any

from gradspec.model.adapters.registry import Projection, register_adapter


@register_adapter("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text")
def llama(layer: Any, config: Any) -> dict[str, Projection]:
    attn, mlp = layer.self_attn, layer.mlp
    return {
        "q": Projection(attn.q_proj),
        "k": Projection(attn.k_proj),
        "v": Projection(attn.v_proj),
        "o": Projection(attn.o_proj),
        "gate": Projection(mlp.gate_proj),
        "up": Projection(mlp.up_proj),
        "down": Projection(mlp.down_proj),
    }
