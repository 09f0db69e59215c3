"""Everything ``gradspec score`` takes: metrics, the judge, and the stage configs it shares with compute."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from gradspec.config.capture import DEFAULT_MODULES
from gradspec.config.data import DataConfig
from gradspec.config.fields import Options
from gradspec.config.model import ModelConfig
from gradspec.config.prompt import PromptConfig
from gradspec.data.vocabulary import check_record_path
from gradspec.errors import ConfigError
from gradspec.store.contract import Module

ScoreMetric = Literal[
    "ifd", "reward", "instag", "difficulty", "length", "gradient", "grad_quality", "target_similarity", "rds", "tfidf"
]
SCORE_METRICS: tuple[str, ...] = get_args(ScoreMetric)
JUDGED = ("instag", "difficulty")
TARGETED = ("target_similarity", "rds", "tfidf")


@dataclass(frozen=True)
class JudgeConfig(Options):
    """The LLM judge behind InsTag and difficulty, and how it is asked."""

    judge: str | None = None
    """openai:MODEL (any OpenAI-compatible endpoint; key from OPENAI_API_KEY) or hf:PATH (a local instruct model
    folder, offline). hf:default is the 135M default model: a placeholder that runs the pipeline offline but does
    not follow the reply format (its replies rarely parse); use it to try gradspec, not to score."""

    judge_base_url: str | None = None
    """Endpoint of an OpenAI-compatible server, e.g. http://localhost:8000/v1."""

    judge_concurrency: int = field(default=8, metadata={"min": 1, "identity": False})
    """Judge requests in flight at once."""

    judge_retries: int = field(default=5, metadata={"min": 0, "identity": False})
    """Retries of a request that failed for a passing reason (429, 5xx, timeouts, malformed replies)."""

    judge_timeout: float = field(default=60.0, metadata={"min": 0.001, "identity": False})
    """Seconds before a judge request times out."""

    judge_backoff: float = field(default=1.0, metadata={"min": 0.0, "identity": False})
    """Seconds before the first retry; each further retry waits about twice as long (at most 30 s)."""

    judge_max_tokens: int = field(default=1024, metadata={"min": 1})
    """Most tokens in a judge's reply (a local judge keeps at most 512)."""

    judge_cache: Path | None = field(default=None, metadata={"identity": False})
    """Reply cache file (default: judge.sqlite in the gradspec cache folder)."""

    instag_prompt: Path | None = None
    """Your own InsTag template file; {instruction} marks where the instruction goes."""

    difficulty_prompt: Path | None = None
    """Your own difficulty template file; {instruction} marks where the instruction goes."""

    reuse_raw: bool = False
    """Re-parse the raw_instag / raw_diff replies a record already holds instead of asking the judge."""

    def check(self) -> None:
        if self.judge is not None:
            kind, _, name = self.judge.partition(":")
            if kind not in ("openai", "hf") or not name:
                raise ConfigError(f"--judge {self.judge!r}: give openai:MODEL or hf:default or hf:PATH")

    def client_options(self) -> dict[str, object]:
        """Keyword arguments of the judge client (``score.judge.make_judge``)."""
        if self.judge and self.judge.startswith("hf:"):
            return {"max_tokens": min(self.judge_max_tokens, 512)}
        return {
            "concurrency": self.judge_concurrency,
            "max_retries": self.judge_retries,
            "timeout": self.judge_timeout,
            "backoff": self.judge_backoff,
            "max_tokens": self.judge_max_tokens,
        }


@dataclass(frozen=True)
class ScoreConfig(Options):
    """Records in, the same records with data-quality metrics out."""

    source: DataConfig

    out: Path = field(metadata={"short": "-o", "identity": False})
    """SCORED.jsonl, .json or .parquet to write (every input record, in order, with the added fields)."""

    metrics: tuple[ScoreMetric, ...] = field(default=("ifd", "length"), metadata={"aliases": ("--metric",)})
    """Metrics to add, comma-separated, or all."""

    loading: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    judging: JudgeConfig = field(default_factory=JudgeConfig)

    reward_model: str | None = None
    """Sequence-classification (reward) model folder or hub id, for the reward metric."""

    gradient_run: Path | None = None
    """A run computed on DATA (gradspec compute) to read the gradient and grad_quality metrics from (default:
    compute one, q/k/v/o, into OUT's name with .run)."""

    target: Path | None = None
    """Target records (any data file) for target_similarity, rds and tfidf: the examples of what the selection should
    serve (e.g. a few answers of the task to fine-tune for); never the held-out set it is judged on."""

    modules: tuple[Module, ...] | None = DEFAULT_MODULES
    """Projections whose gradients target_similarity compares, comma-separated, or all."""

    batch_tokens: int | None = field(default=None, metadata={"min": 1, "identity": False})
    """Most padded tokens per batch of IFD, target_similarity and rds (default: as for compute)."""

    reward_batch_size: int = field(default=8, metadata={"min": 1, "identity": False})
    """Records per reward-model batch."""

    overwrite: bool = field(default=False, metadata={"identity": False})
    """Score again from scratch, replacing OUT and what was kept to resume it."""

    progress: bool = field(default=True, metadata={"identity": False})
    """Show progress bars (rate and time left)."""

    def check(self) -> None:
        check_record_path(self.out)
        if "reward" in self.metrics and not self.reward_model:
            raise ConfigError("--metrics reward needs --reward-model (a sequence-classification model folder)")
        if any(m in TARGETED for m in self.metrics) and self.target is None:
            raise ConfigError(f"--metrics {'/'.join(TARGETED)} needs --target FILE (the records to aim at)")
        if any(m in JUDGED for m in self.metrics) and not (self.judging.judge or self.judging.reuse_raw):
            raise ConfigError("--metrics instag/difficulty needs --judge openai:MODEL or hf:default (or --reuse-raw)")
