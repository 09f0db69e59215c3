"""GPT-2: ``Conv1D`` modules, whose weight is stored [in, out] (the transpose of ``nn.Linear``).

``c_attn`` outputs are q | k | v, each ``n_embd`` wide (``split(split_size, dim=2)`` in
GPT2Attention), so the split runs along the *output* columns of the [in, 3*out] weight.
The MLP has no gate: ``c_fc`` is up, ``mlp.c_proj`` is down.
"""

from __future__ import annotations

from typing import Any

from gradspec.model.adapters.registry import Projection, register_adapter, stacked


@register_adapter("gpt2")
def gpt2(layer: Any, config: Any) -> dict[str, Projection]:
    attn, mlp = layer.attn, layer.mlp
    width = attn.c_proj.weight.shape[1]
    q, k, v = stacked([width, width, width])
    return {
        "q": Projection(attn.c_attn, q, "conv1d"),
        "k": Projection(attn.c_attn, k, "conv1d"),
        "v": Projection(attn.c_attn, v, "conv1d"),
        "o": Projection(attn.c_proj, None, "conv1d"),
        "up": Projection(mlp.c_fc, None, "conv1d"),
        "down": Projection(mlp.c_proj, None, "conv1d"),
    }
