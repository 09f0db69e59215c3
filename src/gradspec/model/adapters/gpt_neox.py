"""GPT-NeoX (Pythia): ``query_key_value`` interleaved per head.

Its output is viewed as (heads, 3 * head_size) and chunked into q, k, v on the last axis
(GPTNeoXAttention.forward), so head h's q, k, v occupy features
``h*3*hs + [0, hs)``, ``h*3*hs + [hs, 2hs)`` and ``h*3*hs + [2hs, 3hs)``. Splitting it as
stacked thirds would mix heads of q, k and v.
"""

from __future__ import annotations

from typing import Any

import torch

from gradspec.model.adapters.registry import Projection, register_adapter


def per_head_interleaved(n_heads: int, head_size: int, part: int) -> torch.Tensor:
    """Output features of ``part`` (0 q, 1 k, 2 v) in a per-head [q|k|v] layout."""
    heads = torch.arange(n_heads).unsqueeze(1) * 3 * head_size
    return (heads + part * head_size + torch.arange(head_size)).reshape(-1)


@register_adapter("gpt_neox")
def gpt_neox(layer: Any, config: Any) -> dict[str, Projection]:
    attn, mlp = layer.attention, layer.mlp
    n_heads = config.num_attention_heads
    head_size = config.hidden_size // n_heads
    q, k, v = (per_head_interleaved(n_heads, head_size, part) for part in range(3))
    return {
        "q": Projection(attn.query_key_value, q),
        "k": Projection(attn.query_key_value, k),
        "v": Projection(attn.query_key_value, v),
        "o": Projection(attn.dense),
        "up": Projection(mlp.dense_h_to_4h),
        "down": Projection(mlp.dense_4h_to_h),
    }
