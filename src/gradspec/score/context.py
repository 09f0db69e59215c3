"""What a metric may use while scoring one file: the config, the records as read, and the
causal LM (loaded on first use, once, and shared by every metric that needs it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from gradspec.capture import default_batch_tokens
from gradspec.computation import compute
from gradspec.config.compute import ComputeConfig
from gradspec.config.prompt import PromptConfig
from gradspec.config.score import ScoreConfig
from gradspec.data import Dataset, Record, load_dataset
from gradspec.model import LoadedModel, load
from gradspec.prompting import resolve_template
from gradspec.score.grad_quality import grad_quality
from gradspec.score.judge import Judge, LocalJudge, ReplyCache, make_judge
from gradspec.store import open_run

T = TypeVar("T")


@dataclass
class ScoreContext:
    config: ScoreConfig
    dataset: Dataset
    loaded: LoadedModel | None = None
    _prompt: PromptConfig | None = field(default=None, repr=False)
    _judge: Judge | None = field(default=None, repr=False)
    _cache: ReplyCache | None = field(default=None, repr=False)
    _gradients: tuple[pd.DataFrame, dict[str, str]] | None = field(default=None, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)
    in_parts: bool = False
    """Whether the metric runs over one part of the records at a time (the score shows one bar for
    all of them, so a metric's own bars stay off)."""

    @property
    def progress(self) -> bool:
        """Whether a metric shows its own progress bars."""
        return self.config.progress and not self.in_parts

    def forget(self) -> None:
        """Drop what a finished metric kept (its second model, its target), before the next one."""
        self._memo.clear()

    def memo(self, key: str, make: Callable[[], T]) -> T:
        """``make()``, made once per score and kept: what a metric computes once for every part of
        the records (a target's mean gradient, a second model)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def language_model(self) -> LoadedModel:
        """The causal LM of ``--model`` (what ``compute`` takes)."""
        if self.loaded is None:
            self.loaded = load(self.config.loading, progress=self.config.progress)
        return self.loaded

    @property
    def prompt(self) -> PromptConfig:
        """The prompt options with ``template auto`` resolved against the LM's tokenizer."""
        if self._prompt is None:
            p = self.config.prompt
            self._prompt = replace(p, template=resolve_template(p.template, self.language_model().tokenizer))
        return self._prompt

    @property
    def batch_tokens(self) -> int:
        loaded = self.language_model()
        return self.config.batch_tokens or default_batch_tokens(str(loaded.device), loaded.model)

    def target_records(self) -> tuple[list[Record], int]:
        """(the ``--target`` file's usable records, how many items it holds): what a targeted metric aims at."""
        path = self.config.target
        assert path is not None  # ScoreConfig.check
        items = load_dataset(path).items
        return [r for r in items if isinstance(r, Record)], len(items)

    @property
    def raw_values(self) -> Mapping[int, Any]:
        """Each record as read (a mapping), by index: fields a metric may reuse."""
        return {item.index: row.value for item, row in self.dataset.with_rows() if isinstance(row.value, Mapping)}

    def judge(self) -> Judge | None:
        """The LLM judge of ``--judge`` (None without one), made once; a local judge that is the
        scoring model itself shares it."""
        spec = self.config.judging.judge
        if spec is None:
            return None
        if self._judge is None:
            judging = self.config.judging
            self._judge = make_judge(
                spec, judging.judge_base_url, self.config.loading.device, **judging.client_options()
            )
            if (
                isinstance(self._judge, LocalJudge)
                and self.loaded is not None
                and self._judge.spec == self.config.loading.model
            ):
                self._judge.loaded = self.loaded
        return self._judge

    def reply_cache(self) -> ReplyCache:
        if self._cache is None:
            self._cache = ReplyCache(self.config.judging.judge_cache)
        return self._cache

    def gradient_table(self) -> tuple[pd.DataFrame, dict[str, str]]:
        """(grad_quality's table by sample_id, {sample_id: why it has no row}) of the run on this file:
        ``--gradient-run``, or one computed now (resumed when it exists) next to the output."""
        if self._gradients is None:
            cfg = self.config
            if cfg.gradient_run is not None:
                run = open_run(cfg.gradient_run)
            else:
                values = {
                    "data": cfg.source.data,
                    "field_map": cfg.source.field_map,
                    "limit": cfg.source.limit,
                    "out": Path(cfg.out).with_suffix(".run"),
                    "progress": cfg.progress,
                }
                config = ComputeConfig.of(**values, loading=cfg.loading, prompt=cfg.prompt)
                run = compute(config, self.language_model())
            table = grad_quality(run).set_index("sample_id")
            reasons = dict(run.sql("select sample_id, reason from samples where status <> 'ok'").fetchall())
            self._gradients = (table, reasons)
        return self._gradients

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
