"""Reward-model scores: one scalar per (prompt, response) from a sequence-classification model.

The conversation is rendered the way such models are trained to read it: the tokenizer's chat
template over the user turns and the assistant's response (``plain`` text otherwise). Batches
are right-padded; the model reads its score at each sample's last real token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from tqdm.auto import tqdm

from gradspec.data import Record
from gradspec.errors import ConfigError, ModelError
from gradspec.model import LoadedModel, load
from gradspec.model.hf import hf
from gradspec.prompting.templates import turns_with_system
from gradspec.score.context import ScoreContext
from gradspec.score.outcome import Scored, failed
from gradspec.score.registry import register_scorer

FIELDS = ("reward",)


def reward_text(record: Record, tokenizer: object, system_prompt: str | None) -> tuple[str, bool]:
    """The whole conversation as the reward model reads it, and whether to add special tokens."""
    turns = [*turns_with_system(record, system_prompt)]
    if getattr(tokenizer, "chat_template", None):
        chat = [{"role": m.role, "content": m.content} for m in turns]
        chat.append({"role": "assistant", "content": record.response})
        return tokenizer.apply_chat_template(chat, tokenize=False), False  # type: ignore[attr-defined]
    return "".join(f"{m.content}\n" for m in turns) + record.response, True


def reward_model(ctx: ScoreContext) -> LoadedModel:
    """The ``--reward-model``, loaded and checked: one output, a pad token."""
    cfg = ctx.config
    if cfg.reward_model is None:
        raise ConfigError("--metrics reward needs --reward-model (a sequence-classification model folder)")
    loaded = load(replace(cfg.loading, model=cfg.reward_model, device_map=None), head="reward", progress=cfg.progress)
    model, tok = loaded.model, loaded.tokenizer
    n_labels = int(getattr(model.config, "num_labels", 1))
    if n_labels != 1:
        raise ModelError(f"reward model '{loaded.spec}' has {n_labels} outputs; gradspec reads single-score models")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if getattr(hf(model).config, "pad_token_id", None) is None:
        hf(model).config.pad_token_id = tok.pad_token_id
    return loaded


@register_scorer("reward", FIELDS, needs_model=False, per_record=True)
def reward_scores(ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    """The reward of every record (longest first, in batches of ``--reward-batch-size``)."""
    cfg = ctx.config
    loaded = ctx.memo("reward_model", lambda: reward_model(ctx))
    max_length, batch_size, system_prompt = cfg.prompt.max_length, cfg.reward_batch_size, cfg.prompt.system_prompt
    model, tok = loaded.model, loaded.tokenizer
    out: dict[int, Scored] = {}
    encoded: list[tuple[int, list[int], bool]] = []
    for item in records:
        text, special = reward_text(item, tok, system_prompt)
        ids = tok(text, add_special_tokens=special)["input_ids"]
        encoded.append((item.index, ids[:max_length], len(ids) > max_length))
    encoded.sort(key=lambda e: len(e[1]), reverse=True)
    bar = tqdm(total=len(encoded), desc="reward", unit="sample", disable=not ctx.progress)
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start : start + batch_size]
        width = max(len(ids) for _, ids, _ in batch)
        ids_t = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
        attn = torch.zeros_like(ids_t)
        for b, (_, ids, _) in enumerate(batch):
            ids_t[b, : len(ids)] = torch.tensor(ids)
            attn[b, : len(ids)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids_t.to(loaded.device), attention_mask=attn.to(loaded.device)).logits
        for (index, _, cut), value in zip(batch, logits[:, 0].float().tolist()):
            if value != value or value in (float("inf"), float("-inf")):
                out[index] = failed(FIELDS, f"record {index}: reward is not finite")
            else:
                out[index] = Scored({"reward": value}, flags=("reward_truncated",) if cut else ())
        bar.update(len(batch))
    bar.close()
    return out
