"""``gradspec compute``: the pipeline from a data file to a run folder.

records -> token ids and masks -> batched forward/backward with hooks -> per-sample factors
-> spectra and similarities -> Parquet parts. Samples already in the run folder are skipped,
so re-running the same command resumes; bad and skipped records get their row too.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from gradspec import __version__
from gradspec.capture import SampleFactors, default_batch_tokens, run_batch, token_batches
from gradspec.data import BadRecord, Record, load_dataset
from gradspec.distributed import join_world
from gradspec.errors import ConfigError, GradspecError
from gradspec.model import DTYPES, MODULES, LoadedModel, Target, find_targets, load_model, validate
from gradspec.model.loading import DType
from gradspec.prompting import Encoded, PromptConfig, Skipped, encode, resolve_template
from gradspec.spectra import same_layer_notes, sample_spectra
from gradspec.store import Run, RunFolder, open_run
from gradspec.store.background import BackgroundWriter
from gradspec.store.rows import SPECTRA_PRECISIONS, SpectraPrecision, sample_row, spectra_rows

DEFAULT_MODULES = ("q", "k", "v", "o")
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


@dataclass(frozen=True)
class ComputeConfig:
    """Everything ``compute`` needs.

    Attributes:
        data: the data file or ``datasets`` folder.
        out: the run folder.
        model: ``default``, a short name, a model folder, a ``.gguf`` file or a hub id.
        prompt: templates, system prompt, max length and truncation.
        modules: canonical projections to measure; ``None`` means every one the model has.
        dtype: the model's dtype; spectral maths is float32/float64 whatever it is.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        device_map: spread the model over every GPU with accelerate (``auto``, ``balanced``,
            ``sequential``), for a model larger than one device; ``device`` is then not used.
            One process only (several ranks each take a whole GPU).
        spectra: also store every singular value (``spectra/`` table).
        spectra_precision: ``float32`` (every value as computed, lossless) or ``bfloat16`` (each
            value rounded to 8 significant bits, at most 0.4% off, ~3x smaller; metrics are
            computed from the exact values either way).
        overwrite: replace an existing run made with other options.
        limit: only the first N records of the file.
        field_map: {canonical field: field in the file}.
        batch_tokens: most padded tokens in one forward/backward batch (a longer sample gets a
            batch of its own); ``None`` picks by device: 512 on CPU, where bigger batches of long
            samples were measured slower per sample (2.9 s alone, 3.3 s in twos, 4.1 s in fours
            at 512 tokens on 2 cores) while short samples still gain from packing; on CUDA what
            fits in the free memory (``capture.batch.memory_batch_tokens``).
        flush_every: samples per Parquet part (at most this much work is redone after a crash).
        progress: show a progress bar.
        trust_remote_code: let transformers run the model repository's own code.
        checkpointing: recompute each decoder layer during backward (less memory for long
            samples, about one more forward pass of time; the numbers do not change).
    """

    data: str | Path
    out: str | Path
    model: str = "default"
    prompt: PromptConfig = field(default_factory=PromptConfig)
    modules: tuple[str, ...] | None = DEFAULT_MODULES
    dtype: DType = "float32"
    device: str = "auto"
    device_map: str | None = None
    spectra: bool = False
    spectra_precision: SpectraPrecision = "float32"
    overwrite: bool = False
    limit: int | None = None
    field_map: dict[str, str] = field(default_factory=dict)
    batch_tokens: int | None = None
    flush_every: int = 32
    progress: bool = True
    trust_remote_code: bool = False
    checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.modules is not None:
            unknown = [m for m in self.modules if m not in MODULES]
            if unknown or not self.modules:
                raise ConfigError(
                    f"--modules: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(MODULES)} or all"
                )
        if self.dtype not in DTYPES:
            raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1, got {self.limit}")
        if self.device_map is not None and self.device_map not in DEVICE_MAPS:
            raise ConfigError(f"--device-map must be one of {', '.join(DEVICE_MAPS)}, got {self.device_map!r}")
        if self.spectra_precision not in SPECTRA_PRECISIONS:
            raise ConfigError(
                f"--spectra-precision must be one of {', '.join(SPECTRA_PRECISIONS)}, got {self.spectra_precision!r}"
            )
        if self.batch_tokens is not None and self.batch_tokens < 1:
            raise ConfigError(f"--batch-tokens must be at least 1, got {self.batch_tokens}")


def parse_modules(spec: str) -> tuple[str, ...] | None:
    """``q,k,v,o`` -> tuple; ``all`` -> None (every projection the model has)."""
    if spec.strip() == "all":
        return None
    return tuple(m.strip() for m in spec.split(",") if m.strip())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def compute(config: ComputeConfig, loaded: LoadedModel | None = None) -> Run:
    """Compute (or resume) a run and return it opened for reading.

    ``loaded`` lets callers that compute several runs load the model once.
    """
    world = join_world()
    dataset = load_dataset(config.data, config.field_map, config.limit)
    if config.device_map is not None and world.size > 1:
        raise ConfigError("--device-map spreads one model over every GPU: run it as one process, not with --workers")
    if loaded is None:
        loaded = load_model(
            config.model,
            config.dtype,
            world.device(config.device),
            config.trust_remote_code,
            device_map=config.device_map,
        )
    load_seconds = loaded.load_seconds

    model = loaded.model
    targets = find_targets(model, config.modules)
    modules = list(dict.fromkeys(t.name for t in targets))
    n_layers = model.config.num_hidden_layers
    shapes = {t.name: (t.projection.d_out, t.projection.d_in) for t in targets if t.layer == 0}
    template = resolve_template(config.prompt.template, loaded.tokenizer)
    prompt = PromptConfig(template, config.prompt.system_prompt, config.prompt.max_length, config.prompt.truncation)
    batch_tokens = config.batch_tokens or default_batch_tokens(str(loaded.device), loaded.model)
    described = loaded.describe()

    identity = {
        "model": config.model,
        "data_sha256": dataset.sha256,
        "template": template,
        "system_prompt": prompt.system_prompt,
        "max_length": prompt.max_length,
        "truncation": prompt.truncation,
        "modules": modules,
        "dtype": described["dtype"],
        "spectra": config.spectra,
        "field_map": dict(sorted(config.field_map.items())),
        "trust_remote_code": config.trust_remote_code,
    }
    if config.spectra and config.spectra_precision != "float32":  # absent by default: older runs still resume
        identity["spectra_precision"] = config.spectra_precision
    if not world.is_main:
        world.barrier()  # rank 0 creates (or replaces) the folder first
    run = RunFolder.open(config.out, identity, config.overwrite and world.is_main, world.rank)
    previous = run.manifest()
    manifest: dict[str, Any] = {
        "format": 1,
        "gradspec_version": __version__,
        "created_at": previous.get("created_at", _now()),
        "updated_at": _now(),
        "config": identity,
        "options": {
            "limit": config.limit,
            "batch_tokens": batch_tokens,
            "device": config.device,
            "device_map": config.device_map,
            "world_size": world.size,
            "checkpointing": config.checkpointing,
        },
        "model": described,
        "data": {"path": str(Path(config.data).resolve()), "sha256": dataset.sha256, "n_records": len(dataset.items)},
        "modules": modules,
        "shapes": {m: list(s) for m, s in shapes.items()},
        "similarity": {
            "adjacent": "cosine of module m's gradient at layer i and at layer i+1, stored at layer i",
            "same_layer": same_layer_notes(shapes, modules),
        },
        "unnamed_projections": [str(p) for p in validate(model)],
        "environment": {"python": platform.python_version(), "platform": platform.platform()},
        "counts": previous.get("counts", {}),
        "timing": {
            "load_seconds": round(load_seconds, 3),
            "compute_seconds": previous.get("timing", {}).get("compute_seconds", 0.0),
        },
    }
    if world.is_main:
        run.write_manifest(manifest)
        world.barrier()

    t1 = time.perf_counter()
    mine = [it for it in dataset.items if world.mine(it.index)]
    _compute_pending(run, mine, loaded, targets, modules, n_layers, prompt, batch_tokens, config)
    world.barrier()  # every rank's parts are on disk
    compute_seconds = time.perf_counter() - t1

    result = open_run(run.path)
    if not world.is_main:
        return result
    counts = dict(result.sql("select status, count(*) from samples group by status").fetchall())
    manifest["counts"] = {s: int(counts.get(s, 0)) for s in ("ok", "skipped", "error")} | {
        "total": int(sum(counts.values()))
    }
    manifest["timing"]["compute_seconds"] = round(manifest["timing"]["compute_seconds"] + compute_seconds, 3)
    manifest["updated_at"] = _now()
    run.write_manifest(manifest)
    return result


def _compute_pending(
    run: RunFolder,
    items: Sequence[Record | BadRecord],
    loaded: LoadedModel,
    targets: Sequence[Target],
    modules: Sequence[str],
    n_layers: int,
    prompt: PromptConfig,
    batch_tokens: int,
    config: ComputeConfig,
) -> None:
    done = run.done_ids()
    pending = [it for it in items if it.sample_id not in done]
    immediate: list[dict[str, Any]] = []
    encoded: list[Encoded] = []
    for item in pending:
        if isinstance(item, BadRecord):
            immediate.append(sample_row(item.sample_id, item.index, "error", item.reason))
            continue
        enc = encode(item, loaded.tokenizer, prompt)
        if isinstance(enc, Skipped):
            immediate.append(
                sample_row(
                    enc.sample_id,
                    enc.index,
                    "skipped",
                    enc.reason,
                    n_tokens=enc.n_tokens,
                    n_response_tokens=0,
                    n_prompt_tokens=enc.n_prompt_tokens,
                )
            )
        else:
            encoded.append(enc)
    if immediate:
        run.write_part({"samples": immediate})

    buffer: dict[str, list[dict[str, Any]]] = {"samples": [], "layer_stats": [], "similarity": [], "spectra": []}
    bar = tqdm(total=len(encoded), unit="sample", desc="gradients", disable=not config.progress, dynamic_ncols=True)
    tokens, started = 0, time.perf_counter()
    keep = config.spectra_precision if config.spectra else None
    with BackgroundWriter(run) as writer:
        for batch in token_batches(encoded, batch_tokens):
            for enc, factors in zip(batch, run_batch(loaded.model, targets, batch, config.checkpointing)):
                for table, rows in sample_rows(enc, factors, modules, n_layers, keep).items():
                    buffer[table].extend(rows)
            tokens += sum(s.n_tokens for s in batch)
            bar.update(len(batch))
            bar.set_postfix_str(f"{tokens / max(time.perf_counter() - started, 1e-9):.0f} tok/s", refresh=False)
            if len(buffer["samples"]) >= config.flush_every:
                writer.submit(buffer)
                buffer = {k: [] for k in buffer}
        if buffer["samples"]:
            writer.submit(buffer)
    bar.close()


def sample_rows(
    enc: Encoded,
    factors: SampleFactors,
    modules: Sequence[str],
    n_layers: int,
    keep_spectra: SpectraPrecision | None,
) -> dict[str, list[dict[str, Any]]]:
    """All table rows of one computed sample; a non-finite loss or gradient is an error row only.

    ``keep_spectra``: the precision every singular value is stored in, or None to store none.
    """
    sizes = dict(
        n_tokens=enc.n_tokens,
        n_response_tokens=enc.n_response_tokens,
        n_prompt_tokens=enc.n_prompt_tokens,
        truncated=enc.truncated,
    )
    if not math.isfinite(factors.loss):
        reason = f"record {enc.index}: loss is {factors.loss}"
        return {"samples": [sample_row(enc.sample_id, enc.index, "error", reason, **sizes)]}
    if not factors.finite():
        reason = f"record {enc.index}: gradient has NaN or Inf (try --dtype float32)"
        return {"samples": [sample_row(enc.sample_id, enc.index, "error", reason, loss=factors.loss, **sizes)]}
    spectra = sample_spectra(factors, modules, n_layers)
    rows = spectra_rows(enc.sample_id, spectra, keep_spectra)
    rows["samples"] = [sample_row(enc.sample_id, enc.index, "ok", loss=factors.loss, **sizes)]
    return rows


def compute_many(configs: Sequence[ComputeConfig]) -> list[Run]:
    """Compute several runs that share one model, loading it once."""
    if not configs:
        return []
    first = configs[0]
    placed = (first.model, first.dtype, first.device, first.device_map)
    if any((c.model, c.dtype, c.device, c.device_map) != placed for c in configs):
        raise GradspecError("compute_many: every run must use the same model, dtype, device and device map")
    loaded = load_model(first.model, first.dtype, first.device, first.trust_remote_code, device_map=first.device_map)
    return [compute(c, loaded) for c in configs]


__all__ = ["ComputeConfig", "compute", "compute_many", "parse_modules"]
