"""Targeted selection scores: how much a record's training would move the model towards a target set.

``target_similarity`` is the cosine between a record's exact response-loss gradient and the mean
gradient of the ``--target`` records (``spectra/target.py`` says how, and what it costs): in all
(every chosen module of every layer, concatenated), per module, and per module and layer. It is
what LESS estimates with random projections of LoRA gradients, computed exactly.

``rds`` is RDS+ (arXiv 2503.01807), the representation baseline that beat gradient methods at
scale: the cosine between a record's mean-pooled last-layer hidden state (over its prompt and
response tokens as ``compute`` encodes them) and the mean of the target records' pooled states.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from tqdm.auto import tqdm

from gradspec.capture import SampleFactors, collate, run_batch, token_batches
from gradspec.console import note
from gradspec.data import Record
from gradspec.errors import ConfigError
from gradspec.model import LayerProjection, find_projections
from gradspec.model.hf import num_layers
from gradspec.model.placement import input_device
from gradspec.prompting import Encoded, encode_records
from gradspec.score.context import ScoreContext
from gradspec.score.outcome import Scored, failed
from gradspec.score.registry import register_scorer
from gradspec.spectra.target import TargetGradient, defined, target_cosines

TARGET_FIELDS = ("target_similarity", "target_similarity_modules", "target_similarity_layers")
RDS_FIELDS = ("rds",)


def encoded(ctx: ScoreContext, records: Sequence[Record]) -> tuple[list[Encoded], dict[int, str]]:
    """(records as ``compute`` encodes them, {index: why a record cannot be})."""
    return encode_records(records, ctx.language_model().tokenizer, ctx.prompt)


def target_records(ctx: ScoreContext) -> list[Encoded]:
    """The ``--target`` file's records, encoded; refuses a target of which nothing can be measured."""
    records, read = ctx.target_records()
    ok, bad = encoded(ctx, records)
    if not ok:
        raise ConfigError(f"--target {ctx.config.target}: no record can be measured ({read} read, {len(bad)} skipped)")
    note(f"target: {len(ok)} of {read} records of {ctx.config.target}")
    return ok


def factors(
    ctx: ScoreContext, projections: Sequence[LayerProjection], samples: Sequence[Encoded], desc: str, progress: bool
) -> Iterator[tuple[Encoded, SampleFactors]]:
    """Each sample with its gradient factors, in token batches, with a progress bar."""
    model = ctx.language_model().model
    bar = tqdm(total=len(samples), desc=desc, unit="sample", disable=not progress, dynamic_ncols=True)
    for batch in token_batches(samples, ctx.batch_tokens):
        yield from zip(batch, run_batch(model, projections, batch))
        bar.update(len(batch))
    bar.close()


def target_gradient(
    ctx: ScoreContext, projections: Sequence[LayerProjection]
) -> tuple[dict[tuple[int, str], torch.Tensor], dict[tuple[int, str], float]]:
    """The target records' mean gradient per projection and its Frobenius norms."""
    mean = TargetGradient()
    for _, f in factors(ctx, projections, target_records(ctx), "target gradient", ctx.config.progress):
        if f.finite():  # a target record with a non-finite gradient would make every cosine NaN
            mean.add(f)
    if mean.count == 0:
        raise ConfigError(f"--target {ctx.config.target}: no target record has a finite gradient")
    gbar = mean.mean()
    return gbar, {key: float(torch.linalg.matrix_norm(g)) for key, g in gbar.items()}


@register_scorer("target_similarity", TARGET_FIELDS, needs_model=True, per_record=True)
def target_similarity_scores(ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    """Cosine of each record's gradient with the target records' mean gradient."""
    loaded = ctx.language_model()
    projections = find_projections(loaded.model, ctx.config.modules)
    n_layers = num_layers(loaded.model)
    gbar, gbar_norms = ctx.memo("target_gradient", lambda: target_gradient(ctx, projections))
    ok, bad = encoded(ctx, records)
    out = {index: failed(TARGET_FIELDS, why) for index, why in bad.items()}
    for enc, f in factors(ctx, projections, ok, "target similarity", ctx.progress):
        index = enc.index
        if not f.finite():
            out[index] = failed(TARGET_FIELDS, f"record {index}: the gradient is not finite")
            continue
        cos = target_cosines(f, gbar, gbar_norms, n_layers)
        out[index] = Scored(
            {
                "target_similarity": defined(cos.overall),
                "target_similarity_modules": {m: defined(c) for m, c in cos.modules.items()},
                "target_similarity_layers": cos.layers,
            }
        )
    return out


@torch.no_grad()
def pooled_states(ctx: ScoreContext, samples: Sequence[Encoded], desc: str, progress: bool) -> dict[int, torch.Tensor]:
    """{index: mean of the last layer's hidden states over the sample's tokens}, float64."""
    model = ctx.language_model().model
    device = input_device(model)
    out: dict[int, torch.Tensor] = {}
    bar = tqdm(total=len(samples), desc=desc, unit="sample", disable=not progress, dynamic_ncols=True)
    for batch in token_batches(samples, ctx.batch_tokens):
        ids, attn, _ = collate(batch, device)
        hidden = model(input_ids=ids, attention_mask=attn, output_hidden_states=True, use_cache=False).hidden_states[-1]
        weights = attn.to(torch.float64)[..., None].to(hidden.device)
        means = (hidden.double() * weights).sum(1) / weights.sum(1)
        for s, m in zip(batch, means.cpu()):
            out[s.index] = m
        bar.update(len(batch))
    bar.close()
    return out


@register_scorer("rds", RDS_FIELDS, needs_model=True, per_record=True)
def rds_scores(ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    """RDS+: cosine of each record's pooled hidden state with the target records' mean one."""

    def centre() -> torch.Tensor:
        states = pooled_states(ctx, target_records(ctx), "rds: target", ctx.config.progress)
        return torch.stack(list(states.values())).mean(0)

    target = ctx.memo("rds_target", centre)
    ok, bad = encoded(ctx, records)
    out = {index: failed(RDS_FIELDS, why) for index, why in bad.items()}
    for index, state in pooled_states(ctx, ok, "rds", ctx.progress).items():
        cos = float(torch.nn.functional.cosine_similarity(state, target, dim=0))
        out[index] = Scored({"rds": defined(cos)}) if cos == cos else failed(RDS_FIELDS, f"record {index}: not finite")
    return out
