"""Phi-3: fused ``qkv_proj`` and ``gate_up_proj`` (``nn.Linear``, weight [out, in]).

``qkv_proj`` outputs are stacked q | k | v, with q of ``heads * head_dim`` features and k, v
of ``kv_heads * head_dim`` each; ``gate_up_proj`` outputs are gate | up, halves of equal size
(``chunk(2, dim=-1)`` in Phi3MLP).
"""

from __future__ import annotations

from typing import Any

from gradspec.model.adapters.registry import Projection, register_adapter, stacked


@register_adapter("phi3")
def phi3(layer: Any, config: Any) -> dict[str, Projection]:
    attn, mlp = layer.self_attn, layer.mlp
    head_dim = attn.head_dim
    q_size = config.num_attention_heads * head_dim
    kv_size = config.num_key_value_heads * head_dim
    q, k, v = stacked([q_size, kv_size, kv_size])
    half = mlp.gate_up_proj.weight.shape[0] // 2
    gate, up = stacked([half, half])
    return {
        "q": Projection(attn.qkv_proj, q),
        "k": Projection(attn.qkv_proj, k),
        "v": Projection(attn.qkv_proj, v),
        "o": Projection(attn.o_proj),
        "gate": Projection(mlp.gate_up_proj, gate),
        "up": Projection(mlp.gate_up_proj, up),
        "down": Projection(mlp.down_proj),
    }
