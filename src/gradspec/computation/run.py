"""``gradspec compute``: resolve the config, open the run folder, write what the computation yields.

Samples already in the run folder are skipped, so running the same command again resumes;
bad and skipped records get their row too. Options that would make a different run are
refused before the model loads when they can be known then, and after it otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from gradspec.computation.batches import computed_batches, encode_pending, probe_of
from gradspec.computation.job import Job, identity, manifest, now, plan, unresolved
from gradspec.computation.rows import Rows
from gradspec.config.compute import ComputeConfig
from gradspec.config.fields import leaf_map, plain
from gradspec.console import note_once, warn
from gradspec.data import Dataset, load_dataset
from gradspec.distributed import join_world
from gradspec.errors import GradspecError
from gradspec.model import LoadedModel, load
from gradspec.store import Run, RunFolder, open_run
from gradspec.store.background import BackgroundWriter
from gradspec.store.folder import check_config
from gradspec.store.layout import QUARANTINE


def identity_defaults() -> dict[str, Any]:
    """Each option's default, for runs made before that option existed."""
    return {name: plain(leaf.default) for name, leaf in leaf_map(ComputeConfig).items() if leaf.identity}


def compute(config: ComputeConfig, loaded: LoadedModel | None = None) -> Run:
    """Compute (or resume) a run and return it opened for reading.

    ``loaded`` lets callers that compute several runs load the model once.
    """
    world = join_world()
    if world.size > 1 and config.loading.device_map is not None:
        raise GradspecError("--device-map spreads one model over every GPU: run it as one process, not with --workers")
    source = config.source
    dataset = load_dataset(source.data, source.field_map, source.limit)
    # Everything that needs no model is checked first: the folder, its lock, and the options.
    with RunFolder.claim(config.store.out, config.store.overwrite, world.rank) as run:
        defaults = identity_defaults()
        if not config.store.overwrite:
            early = identity(config, dataset.sha256)
            check_config(run.path, {k: v for k, v in early.items() if k not in unresolved(config)}, defaults)
        if loaded is None:
            loaded = load(config.loading, world.device(config.loading.device), progress=config.progress)
        job = plan(config, loaded, world)
        if not world.is_main:
            world.barrier()  # rank 0 creates (or replaces) the folder first
        run.start(identity(job.config, dataset.sha256), config.store.overwrite and world.is_main, defaults)
        for name in run.quarantined:
            warn(f"{run.path}: part {name} does not read; moved to {QUARANTINE}/ and its samples are computed again")
        record = manifest(job, dataset, run.manifest(), run.run_id)
        if world.is_main:
            run.write_manifest(record)
            world.barrier()
        return _compute_pending(job, run, dataset, record)


def _compute_pending(job: Job, run: RunFolder, dataset: Dataset, record: dict[str, Any]) -> Run:
    """Write what the computation yields for this rank's pending records, then the counts."""
    config, world = job.config, job.world
    started = time.perf_counter()
    done = run.done_ids()
    mine = [it for it in dataset.items if world.mine(it.index) and it.sample_id not in done]
    pending = encode_pending(job, mine)
    if pending.encoded and world.is_main:
        injected = record["prompt"]["injected_system_prompt"]
        note_once(f"template {config.prompt.template}: {record['prompt']['layout']!r}")
        if injected:
            note_once(
                f"the chat template adds the system prompt {injected!r} to records without one "
                "(--system-prompt gives another, --template plain none)"
            )
    if pending.rows:
        run.write_part({"samples": pending.rows})
    bar = tqdm(
        total=len(pending.encoded), unit="sample", desc="gradients", disable=not config.progress, dynamic_ncols=True
    )
    buffer: Rows = {}
    tokens = 0
    probe = probe_of(job, dataset.items) if pending.encoded else None
    with BackgroundWriter(run) as writer:
        for computed in computed_batches(job, pending.encoded, probe):
            for table, rows in computed.rows.items():
                buffer.setdefault(table, []).extend(rows)
            tokens += computed.tokens
            bar.update(computed.samples)
            bar.set_postfix_str(f"{tokens / max(time.perf_counter() - started, 1e-9):.0f} tok/s", refresh=False)
            if len(buffer.get("samples", ())) >= config.store.flush_every:
                writer.submit(buffer)
                buffer = {}
        if buffer.get("samples"):
            writer.submit(buffer)
    bar.close()
    world.barrier()  # every rank's parts are on disk
    seconds = time.perf_counter() - started

    result = open_run(run.path)
    if not world.is_main:
        return result
    record["counts"] = result.counts()
    record["checks"] = checks(result, record["counts"])
    for warning in record["checks"]["warnings"]:
        warn(f"{run.path}: {warning}")
    record["timing"]["compute_seconds"] = round(record["timing"]["compute_seconds"] + seconds, 3)
    record["updated_at"] = now()
    run.write_manifest(record)
    return result


SHORT = 8  # fewer prompt or response tokens than this earns a warning


def checks(run: Run, counts: dict[str, int]) -> dict[str, Any]:
    """Counts worth a second look, and a warning for each that is not zero (or too large a share)."""
    short_prompt = run.scalar(
        f"select count(*) from samples where status = 'ok' and truncated and n_prompt_tokens < {SHORT}"
    )
    short_response = run.scalar(f"select count(*) from samples where status = 'ok' and n_response_tokens < {SHORT}")
    skipped = counts.get("skipped", 0) + counts.get("error", 0)
    total = max(counts.get("total", 0), 1)
    warnings = []
    if skipped / total > 0.1:
        reasons = "; ".join(f"{n} {status}: {reason}" for status, n, reason in run.failure_summary(3))
        warnings.append(f"{skipped} of {total} samples ({skipped / total:.0%}) were not computed ({reasons})")
    if short_prompt:
        warnings.append(f"truncation left {short_prompt} sample(s) with fewer than {SHORT} prompt tokens")
    if short_response:
        warnings.append(f"{short_response} sample(s) have fewer than {SHORT} response tokens carrying loss")
    rule = run.manifest.get("config", {}).get("steps")
    stepless = 0
    if rule is not None and counts.get("ok", 0):
        with_steps = "select distinct sample_id from step_stats"
        query = f"select count(*) from samples where status = 'ok' and sample_id not in ({with_steps})"
        stepless = int(run.scalar(query)) if run.files("step_stats") else counts["ok"]
    if stepless:
        warnings.append(
            f"--steps {rule!r} left no step in {stepless} computed sample(s): it matches all of their text, or "
            "their steps hold no response token"
        )
    return {
        "short_prompt": int(short_prompt),
        "short_response": int(short_response),
        "stepless": stepless,
        "warnings": warnings,
    }


def compute_many(configs: Sequence[ComputeConfig], loaded: LoadedModel | None = None) -> list[Run]:
    """Compute several runs that share one model, loading it once (``loaded``: already loaded)."""
    if not configs:
        return []
    first = configs[0].loading
    if any(c.loading != first for c in configs):
        raise GradspecError("compute_many: every run must load the model with the same options")
    loaded = loaded or load(first, progress=configs[0].progress)
    return [compute(c, loaded) for c in configs]
