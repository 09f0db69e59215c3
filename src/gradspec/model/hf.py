"""Hugging Face models seen through torch's types.

A ``PreTrainedModel``'s own methods and config (``get_input_embeddings``, ``generate``,
``config.num_hidden_layers``) are invisible to ``nn.Module``'s type, which reads any unknown
attribute as a tensor or a submodule. ``hf`` marks each place gradspec relies on them.
"""

from __future__ import annotations

from typing import Any, cast

from torch import nn


def hf(model: nn.Module) -> Any:
    """``model`` as the Hugging Face model it is (its methods and ``config`` typed as they come)."""
    return cast(Any, model)


def num_layers(model: nn.Module) -> int:
    """The model's decoder layers, from its config."""
    return int(hf(model).config.num_hidden_layers)
