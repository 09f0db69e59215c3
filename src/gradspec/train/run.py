"""``gradspec train``: a selection in; the training curve and held-out results out.

The results folder holds ``train.json`` (the recipe, the selection file's hash, the model's
identity, the loss of every step, every held-out number), ``loss_curve.csv``, ``eval.csv`` and
``eval_items.csv`` (each held-out item's value, for comparisons item by item) and
``eval_answers.csv`` (each judged answer's loss, to re-measure on a subset of them). Weights are
written only with ``save_model``. The same config on the same folder is not trained again.
A held-out set that shares an instruction with the selection is refused: no number may come
from data the selection could have seen.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from gradspec.artifacts import TRAINING
from gradspec.artifacts.markers import marker_content
from gradspec.capture import default_batch_tokens
from gradspec.config.fields import flatten, plain, split_identity
from gradspec.config.train import TrainConfig
from gradspec.data import Dataset, Record, load_dataset
from gradspec.errors import ConfigError, first_line
from gradspec.files import WriterLock, check_output_folder, write_csv, write_json_atomic
from gradspec.model import load
from gradspec.model.hf import hf
from gradspec.prompting import encode_records, resolve_template
from gradspec.train.evaluate import evaluate, held_out_records, instruction_of
from gradspec.train.examples import Examples
from gradspec.train.fine_tune import Curve, fine_tune

RESULTS = TRAINING.marker
KIND = TRAINING.tag
OUTPUTS = (RESULTS, *TRAINING.files.values())


def check_held_out(records: list[Record], config: TrainConfig) -> None:
    """Refuse held-out files that share a record or an instruction with the training selection."""
    ids = {r.sample_id for r in records}
    asked = {instruction_of(r).strip() for r in records}
    for kind, files in config.evaluation.files().items():
        for path in files:
            _refuse_shared(Path(path), held_out_records(kind, Path(path), config.evaluation), ids, asked)


def _refuse_shared(path: Path, records: list[Record], ids: set[str], asked: set[str]) -> None:
    shared = [r for r in records if r.sample_id in ids or instruction_of(r).strip() in asked]
    if shared:
        raise ConfigError(
            f"{path}: {len(shared)} held-out record(s) also in the training selection (record {shared[0].index}); "
            "evaluate on data no selection could have seen"
        )


def finished(out: Path) -> dict[str, Any] | None:
    """The results a training wrote into ``out`` before (None if none); refuses (``ConfigError``) a
    folder whose files gradspec's training did not write, before anything is trained."""
    check_output_folder(out)
    marker = out / RESULTS
    if not marker.exists():
        clash = [name for name in OUTPUTS if (out / name).exists()]
        if clash:
            raise ConfigError(f"--out {out}: holds {', '.join(clash)} but no {RESULTS}; not a training gradspec wrote")
        return None
    try:
        done = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{marker}: not a results file gradspec wrote ({first_line(exc)})") from exc
    if not isinstance(done, dict) or done.get("kind") != KIND:
        raise ConfigError(f"{marker}: not a results file gradspec wrote (no kind {KIND!r}); choose another --out")
    return done


def train(config: TrainConfig) -> dict[str, Any]:
    """Fine-tune, evaluate, write the results folder; return ``train.json``'s content."""
    out = Path(config.out)
    done = finished(out)
    dataset = load_dataset(config.source.data, config.source.field_map, config.source.limit)
    identity = plain({**split_identity(config)[0], "data_sha256": dataset.sha256})
    if done is not None and done.get("identity") == identity:
        return done  # trained already with these options on this selection
    records = [r for r in dataset.items if isinstance(r, Record)]
    check_held_out(records, config)
    out.mkdir(parents=True, exist_ok=True)
    with WriterLock(out / ".lock", f"{out} is being trained into by another gradspec process; choose another --out"):
        return _train(config, out, dataset, records, identity)


def _train(
    config: TrainConfig, out: Path, dataset: Dataset, records: list[Record], identity: dict[str, Any]
) -> dict[str, Any]:
    loaded = load(config.loading, progress=config.progress)
    prompt = replace(config.prompt, template=resolve_template(config.prompt.template, loaded.tokenizer))
    examples = Examples(*encode_records(records, loaded.tokenizer, prompt))
    if not examples.encoded:
        raise ConfigError(f"{dataset.path}: no record can be trained on ({len(examples.skipped)} skipped)")
    started = time.perf_counter()
    losses: list[dict[str, float]] = []
    steps = 0
    model = loaded.model
    batch_tokens = default_batch_tokens(str(loaded.device), model)
    losses_only = replace(config.evaluation, eval_reasoning=(), eval_judged=())  # the curve: response loss, cheap
    curve = Curve(config.evaluation.eval_at, lambda m: evaluate(m, loaded.tokenizer, losses_only, prompt, batch_tokens))
    if config.recipe.epochs > 0:
        pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
        trained = fine_tune(model, pad, examples.encoded, config.recipe, config.progress, [curve])
        model, losses, steps = trained.model, trained.losses, trained.steps
    train_seconds = time.perf_counter() - started
    measured = evaluate(model, loaded.tokenizer, config.evaluation, prompt, batch_tokens)
    if config.evaluation.eval_at:
        final = [{"step": steps, **m.summary()} for m in measured]
        rows = [r for r in curve.rows if r["step"] < steps] + final
        write_csv(
            pd.DataFrame(rows, columns=["step", "set", "measure", "value", "n", "skipped"]), TRAINING.file(out, "curve")
        )
    write_csv(pd.DataFrame(losses, columns=["step", "epoch", "loss", "learning_rate"]), TRAINING.file(out, "losses"))
    write_csv(pd.DataFrame([m.summary() for m in measured]), TRAINING.file(out, "eval"))
    items = [{"set": m.set, "measure": m.measure, "item": i, "value": v} for m in measured for i, v in m.items.items()]
    write_csv(pd.DataFrame(items, columns=["set", "measure", "item", "value"]), TRAINING.file(out, "items"))
    answers = [{"set": s, **a} for s, rows in {m.set: m.answers for m in measured if m.answers}.items() for a in rows]
    columns = ["set", "item", "prompt", "index", "sample_id", "quality", "loss"]
    write_csv(pd.DataFrame(answers, columns=columns), TRAINING.file(out, "answers"))
    lengths = [e.n_response_tokens for e in examples.encoded]
    epochs = config.recipe.epochs  # 0: the model as it is, trained on nothing
    result = marker_content(TRAINING, flatten(config)) | {
        "identity": identity,
        "recipe": flatten(config.recipe)
        | {"template": prompt.template, "loss": "mean over response tokens of a batch"},
        "selection": {
            "path": str(Path(dataset.path).resolve()),
            "sha256": dataset.sha256,
            "records": len(dataset.items),
            "trained_on": len(examples.encoded),
            "skipped": {str(k): v for k, v in examples.skipped.items()},
            "mean_response_tokens": statistics.fmean(lengths),
        },
        "model": loaded.describe(),
        "steps": steps,
        "tokens_trained": sum(lengths) * (min(epochs, 1) if config.recipe.optimizer_steps else epochs),
        "losses": losses,
        "results": [m.summary() for m in measured],
        "timing": {"train_seconds": round(train_seconds, 1), "load_seconds": round(loaded.load_seconds, 1)},
    }
    if config.save_model:
        hf(model).save_pretrained(TRAINING.file(out, "model"), safe_serialization=True)
        loaded.tokenizer.save_pretrained(TRAINING.file(out, "model"))
    write_json_atomic(out / RESULTS, result)
    return result
