"""Instruction-following difficulty (Cherry LLM, Superfiltering).

IFD = PPL(response | prompt) / PPL(response alone). The conditioned perplexity is taken on
the response tokens of the same encoding that ``compute`` uses (template, truncation). The
response alone is tokenised by itself (with the tokenizer's own special tokens, as
``tokenizer.encode`` does in those projects), cut to ``max_length - prompt tokens + 1`` tokens,
and its first token is not predicted, so both perplexities cover the same response span.
An IFD above 1 means the prompt makes the response harder to predict: such samples are
flagged here and dropped by ``select``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradspec.data import Record
from gradspec.prompting import Encoded, encode_record
from gradspec.score.context import ScoreContext
from gradspec.score.outcome import Scored, failed
from gradspec.score.perplexity import response_losses
from gradspec.score.registry import register_scorer

FIELDS = ("ifd", "ppl_conditioned", "ppl_response")


def response_alone(record: Record, tokenizer: object, n_tokens: int) -> Encoded | None:
    """The response by itself, ``n_tokens`` at most; ``None`` when no token can be predicted."""
    ids = list(tokenizer(record.response, add_special_tokens=True)["input_ids"])[:n_tokens]  # type: ignore[operator]
    if len(ids) < 2:
        return None
    return Encoded(record.sample_id, record.index, ids, [t >= 1 for t in range(len(ids))], 0, False)


def _ppl(loss: float) -> float | None:
    return math.exp(loss) if math.isfinite(loss) and loss < 700 else None


@register_scorer("ifd", FIELDS, needs_model=True, per_record=True)
def ifd_scores(ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    """IFD and both perplexities of every record."""
    loaded, prompt, batch_tokens, progress = ctx.language_model(), ctx.prompt, ctx.batch_tokens, ctx.progress
    out: dict[int, Scored] = {}
    conditioned: list[Encoded] = []
    alone: list[Encoded] = []
    for item in records:
        enc = encode_record(item, loaded.tokenizer, prompt)
        if not isinstance(enc, Encoded):
            out[item.index] = failed(FIELDS, enc.reason)
            continue
        conditioned.append(enc)
        solo = response_alone(item, loaded.tokenizer, prompt.max_length - enc.n_prompt_tokens + 1)
        if solo is None:
            out[item.index] = failed(FIELDS, f"record {item.index}: response alone has fewer than 2 tokens")
        else:
            alone.append(solo)
    cond_loss = response_losses(loaded.model, conditioned, batch_tokens, "ifd: conditioned", progress)
    alone_loss = response_losses(loaded.model, alone, batch_tokens, "ifd: response alone", progress)
    for index, loss in cond_loss.items():
        if index in out:
            continue
        p_cond, p_alone = _ppl(loss), _ppl(alone_loss[index])
        if p_cond is None or p_alone is None:
            which = "conditioned" if p_cond is None else "response-alone"
            out[index] = failed(FIELDS, f"record {index}: {which} loss is not finite", ppl_conditioned=p_cond)
            continue
        ifd = p_cond / p_alone
        out[index] = Scored(
            {"ifd": ifd, "ppl_conditioned": p_cond, "ppl_response": p_alone},
            flags=("ifd_above_1",) if ifd > 1 else (),
        )
    return out
