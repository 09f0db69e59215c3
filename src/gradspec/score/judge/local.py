"""A judge that generates on this machine with a causal LM (``hf:default``, ``hf:PATH``): offline.

Greedy decoding, left-padded batches, the model's chat template when it has one. Small local
models follow the reply formats loosely; their replies go through the same bounded parsers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from gradspec.model import LoadedModel, load_model
from gradspec.model.hf import hf
from gradspec.score.judge.base import OnReply


@dataclass
class LocalJudge:
    """``--judge hf:SPEC``, where SPEC is what ``--model`` takes."""

    spec: str
    device: str = "auto"
    max_tokens: int = 256
    batch_size: int = 4
    loaded: LoadedModel | None = None

    def __post_init__(self) -> None:
        self.id = f"hf:{self.spec}"

    @property
    def settings(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "decoding": "greedy"}

    def _text(self, tokenizer: Any, prompt: str) -> str:
        if getattr(tokenizer, "chat_template", None):
            chat = [{"role": "user", "content": prompt}]
            return tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        return prompt + "\n"

    def ask(self, prompts: Sequence[str], on_reply: OnReply, progress: bool = True) -> None:
        if self.loaded is None:
            self.loaded = load_model(self.spec, device=self.device, progress=progress)
        model, tok = self.loaded.model, self.loaded.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        side, tok.padding_side = tok.padding_side, "left"
        add_special = not getattr(tok, "chat_template", None)
        bar = tqdm(total=len(prompts), desc=f"judge {self.id}", unit="prompt", disable=not progress)
        try:
            for start in range(0, len(prompts), self.batch_size):
                chunk = prompts[start : start + self.batch_size]
                texts = [self._text(tok, p) for p in chunk]
                batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=add_special)
                batch = batch.to(self.loaded.device)
                with torch.no_grad():
                    out = hf(model).generate(
                        **batch, do_sample=False, max_new_tokens=self.max_tokens, pad_token_id=tok.pad_token_id
                    )
                width = batch["input_ids"].shape[1]
                for i, row in enumerate(out[:, width:]):
                    on_reply(start + i, tok.decode(row, skip_special_tokens=True), None)
                bar.update(len(chunk))
        finally:
            tok.padding_side = side
            bar.close()
