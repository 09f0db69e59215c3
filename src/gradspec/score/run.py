"""``gradspec score``: every input record written back with the requested metrics added.

One output record per input record, in file order. A record that could not be scored keeps
``null`` for that metric and says why in ``score_errors`` ({metric: reason}); flagged values
are listed in ``score_flags``. Every output carries its ``sample_id``, the id ``compute``
gives the same record, so scores and gradient runs join on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradspec.capture import default_batch_tokens
from gradspec.data import load_dataset
from gradspec.errors import ConfigError
from gradspec.files import check_record_path, write_records
from gradspec.model import LoadedModel, load_model
from gradspec.model.loading import DType
from gradspec.prompting import PromptConfig, resolve_template
from gradspec.score.ifd import ifd_scores
from gradspec.score.judge import LocalJudge, ReplyCache, judged_scores, make_judge
from gradspec.score.judge.prompts import load_template
from gradspec.score.length import length_scores
from gradspec.score.outcome import Scored
from gradspec.score.reward import reward_scores

METRICS = ("ifd", "reward", "instag", "difficulty", "length")
JUDGED = ("instag", "difficulty")


@dataclass(frozen=True)
class ScoreConfig:
    """Everything ``score`` needs.

    Attributes:
        data: the data file or ``datasets`` folder.
        out: ``.jsonl``, ``.json`` or ``.parquet`` file to write.
        metrics: any of ``METRICS``.
        model: the causal LM for ``ifd`` and ``length`` (what ``compute`` takes).
        prompt: template, system prompt, max length, truncation (as ``compute``).
        reward_model: a sequence-classification model folder or hub id, for ``reward``.
        judge: ``openai:MODEL`` or ``hf:SPEC``, for ``instag`` and ``difficulty``.
        judge_base_url: endpoint of an OpenAI-compatible server.
        judge_options: settings of the judge client (``concurrency``, ``max_retries``,
            ``timeout``, ``backoff``, ``max_tokens``; see ``make_judge``).
        judge_cache: the reply cache file (default: in the gradspec cache folder).
        instag_prompt, difficulty_prompt: files with the user's own templates.
        reuse_raw: re-parse ``raw_instag`` / ``raw_diff`` already in a record instead of asking.
        reward_batch_size: records per reward-model batch.
    """

    data: str | Path
    out: str | Path
    metrics: tuple[str, ...] = ("ifd", "length")
    model: str = "default"
    prompt: PromptConfig = field(default_factory=PromptConfig)
    dtype: DType = "float32"
    device: str = "auto"
    limit: int | None = None
    field_map: dict[str, str] = field(default_factory=dict)
    reward_model: str | None = None
    judge: str | None = None
    judge_base_url: str | None = None
    judge_options: dict[str, Any] = field(default_factory=dict)
    judge_cache: str | Path | None = None
    instag_prompt: str | Path | None = None
    difficulty_prompt: str | Path | None = None
    reuse_raw: bool = False
    batch_tokens: int | None = None
    reward_batch_size: int = 8
    progress: bool = True
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise ConfigError(f"--metric: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(METRICS)}")
        check_record_path(self.out)
        if "reward" in self.metrics and not self.reward_model:
            raise ConfigError("--metric reward needs --reward-model (a sequence-classification model folder)")
        if any(m in JUDGED for m in self.metrics) and not (self.judge or self.reuse_raw):
            raise ConfigError("--metric instag/difficulty needs --judge openai:MODEL or hf:default (or --reuse-raw)")


def parse_metrics(spec: str) -> tuple[str, ...]:
    """``ifd,reward`` -> tuple; ``all`` -> every metric."""
    if spec.strip() == "all":
        return METRICS
    return tuple(dict.fromkeys(m.strip() for m in spec.split(",") if m.strip()))


def merge(value: Any, sample_id: str, results: Mapping[str, Scored | None]) -> dict[str, Any]:
    """The record as read, with ``sample_id``, each metric's fields, errors and flags."""
    record = dict(value) if isinstance(value, Mapping) else {"record": value}
    record["sample_id"] = sample_id
    errors: dict[str, str] = {}
    flags: list[str] = []
    for metric, scored in results.items():
        if scored is None:
            continue
        record.update(scored.fields)
        if scored.error:
            errors[metric] = scored.error
        flags.extend(scored.flags)
    record["score_errors"] = errors or None
    record["score_flags"] = flags or None
    return record


def score(config: ScoreConfig, loaded: LoadedModel | None = None) -> dict[str, Any]:
    """Score ``config.data`` into ``config.out``; returns a summary (counts, errors by metric)."""
    dataset = load_dataset(config.data, config.field_map, config.limit)
    items = dataset.items
    results: dict[str, dict[int, Scored]] = {}
    needs_lm = "ifd" in config.metrics or "length" in config.metrics
    if needs_lm and loaded is None:
        loaded = load_model(config.model, config.dtype, config.device, config.trust_remote_code)
    prompt = config.prompt
    if loaded is not None:
        template = resolve_template(prompt.template, loaded.tokenizer)
        prompt = PromptConfig(template, prompt.system_prompt, prompt.max_length, prompt.truncation)

    if "length" in config.metrics:
        assert loaded is not None
        results["length"] = length_scores(items, loaded.tokenizer, prompt)
    if "ifd" in config.metrics:
        assert loaded is not None
        batch_tokens = config.batch_tokens or default_batch_tokens(str(loaded.device), loaded.model)
        results["ifd"] = ifd_scores(items, loaded, prompt, batch_tokens, config.progress)
    if "reward" in config.metrics:
        assert config.reward_model is not None
        rm = load_model(config.reward_model, config.dtype, config.device, config.trust_remote_code, head="reward")
        results["reward"] = reward_scores(
            items, rm, prompt.max_length, config.reward_batch_size, prompt.system_prompt, config.progress
        )
    judged = [m for m in config.metrics if m in JUDGED]
    if judged:
        judge = (
            make_judge(config.judge, config.judge_base_url, config.device, **config.judge_options)
            if config.judge
            else None
        )
        if isinstance(judge, LocalJudge) and loaded is not None and judge.spec == config.model:
            judge.loaded = loaded
        cache = ReplyCache(config.judge_cache) if judge is not None else None
        raw_values = {item.index: row.value for item, row in dataset.with_rows() if isinstance(row.value, Mapping)}
        try:
            for kind in judged:
                template = load_template(kind, config.instag_prompt if kind == "instag" else config.difficulty_prompt)
                results[kind] = judged_scores(
                    kind, items, raw_values, judge, template, cache, config.reuse_raw, config.progress
                )
        finally:
            if cache is not None:
                cache.close()

    records = []
    for item, row in dataset.with_rows():
        value = row.value if row.error is None else (row.raw_text or "")
        records.append(merge(value, item.sample_id, {m: results[m].get(item.index) for m in config.metrics}))
    write_records(config.out, records)
    return summarise(records, config.metrics, Path(config.out))


def summarise(records: list[dict[str, Any]], metrics: tuple[str, ...], out: Path) -> dict[str, Any]:
    """Counts of scored and failed records per metric, the commonest reasons, and flags."""
    failures: dict[str, Counter[str]] = {m: Counter() for m in metrics}
    flags: Counter[str] = Counter()
    for r in records:
        for metric, reason in (r["score_errors"] or {}).items():
            failures[metric][reason.split(": ", 1)[-1]] += 1
        flags.update(r["score_flags"] or [])
    summary: dict[str, Any] = {"out": str(out), "records": len(records), "metrics": {}}
    for m in metrics:
        n_failed = sum(failures[m].values())
        summary["metrics"][m] = {"scored": len(records) - n_failed, "failed": n_failed}
        if n_failed:
            summary["metrics"][m]["reasons"] = dict(failures[m].most_common(5))
    summary["flags"] = dict(flags)
    return summary
