"""Options of ``gradspec select``: which field ranks the records, which groups are written."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gradspec.config.fields import Options
from gradspec.config.names import segment
from gradspec.data.vocabulary import parse_field_map
from gradspec.errors import ConfigError

GRAD_QUALITY = "grad_quality"
RANDOM = "random"
FITTING = "fitting_tokens"
"""--by fitting_tokens: the response tokens of a record that fit beside its prompt in --max-length."""
MatchLength = Literal["bins", "truncate"]
Pairing = Literal["rank", "random"]
MAX_QUANTILES = 100
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_TOKENS = re.compile(r"^\s*(\d+)\s*tokens?\s*$")


SizeUnit = Literal["records", "percent", "tokens"]


@dataclass(frozen=True)
class Size:
    """A group size, read once from ``64``, ``"25%"`` or ``"16000 tokens"``: a count of records, a share
    of the candidates, or a budget of response tokens that fit. It is written back as it was given (an
    int for a count, else its text), so manifests and fingerprints keep their old values."""

    amount: float
    unit: SizeUnit = "records"

    @classmethod
    def parse(cls, value: Any) -> Size:
        if isinstance(value, Size):
            return value
        if isinstance(value, bool):
            raise ValueError(f"expects a count or a percentage, got {value!r}")
        if isinstance(value, int):
            if value < 0:
                raise ValueError(f"must be 0 or more, got {value}")
            return cls(value)
        if isinstance(value, str):
            text = value.strip()
            if text.isdigit():
                return cls(int(text))
            m = _SIZE.match(text)
            if m and 0 < float(m.group(1)) <= 100:
                return cls(float(m.group(1)), "percent")
            m = _TOKENS.match(text)
            if m and int(m.group(1)) > 0:
                return cls(int(m.group(1)), "tokens")
        raise ValueError(f"expects a count (64), a percentage (25%) or a token budget (16000 tokens), got {value!r}")

    def __bool__(self) -> bool:
        return self.amount > 0

    def __str__(self) -> str:
        return {"records": f"{int(self.amount)}", "percent": f"{self.amount:g}%"}.get(
            self.unit, f"{int(self.amount)} tokens"
        )

    def plain(self) -> int | str:
        """As JSON keeps it: ``64``, ``"25%"``, ``"16000 tokens"``."""
        return int(self.amount) if self.unit == "records" else str(self)

    @property
    def budget(self) -> int | None:
        """The token budget, or None for a count or a share."""
        return int(self.amount) if self.unit == "tokens" else None

    def records(self, candidates: int) -> int:
        """How many records it means among ``candidates`` (a percentage rounds to the nearest)."""
        if self.unit == "tokens":
            raise ValueError(f"{self} is a token budget, not a count")
        return int(self.amount) if self.unit == "records" else round(self.amount / 100 * candidates)


def parse_match_length(value: Any) -> str | None:
    """``bins`` or ``truncate``; ``true`` (older files) means bins."""
    if value is True:
        return "bins"
    if value is False or value is None:
        return None
    if value in ("bins", "truncate"):
        return str(value)
    raise ValueError(f"must be bins or truncate, got {value!r}")


@dataclass(frozen=True)
class SelectConfig(Options):
    """What ``select`` writes."""

    data: Path = field(metadata={"argument": True})
    """A scored file (from gradspec score, or any file with score fields)."""

    by: str
    """Field to rank by (reward, ifd, instag, difficulty, nuclear_norm, grad_quality, n_response_tokens, ...), or
    random."""

    out_dir: Path = field(metadata={"short": "-o"})
    """Folder for the group files and NAME_selection.json."""

    top: Size = field(default=Size(0), metadata={"parse": Size.parse})
    """Size of the highest group: a count (64), a share of the candidates (25%), or a budget of response tokens
    (16000 tokens: records in score order while their tokens that fit in --max-length stay within it, so methods
    compared at one budget train on the same number of tokens); 0: none."""

    bottom: Size = field(default=Size(0), metadata={"parse": Size.parse})
    """Size of the lowest group: a count, a share of the candidates or a token budget; 0: none."""

    residualise: bool = False
    """Rank by what length does not explain: the score's residual after a least-squares fit on log response
    tokens and log prompt tokens (score --metrics length writes both)."""

    strata: int | None = field(default=None, metadata={"min": 2})
    """Take the groups from K response-length strata in turn (the best of each stratum, then the next of
    each ...), so a group spans the pool's lengths instead of following the score's length bias."""

    minimum: float | None = field(default=None, metadata={"aliases": ("--min",)})
    """Keep only records whose value is at least this (before the groups are drawn)."""

    maximum: float | None = field(default=None, metadata={"aliases": ("--max",)})
    """Keep only records whose value is at most this (before the groups are drawn)."""

    quantiles: int | None = field(default=None, metadata={"min": 2})
    """Also write K quantile groups, lowest first (NAME_q1ofK.json ...); at most 100."""

    keep_column: bool = False
    """Also write the whole file (NAME_kept.jsonl) with a boolean keep column: in the highest group, or within
    --min/--max when no --top is given."""

    ignore_keep: bool = False
    """Rank every record, also those a keep field marks false (gradspec filter's output); by default they are
    left out, as filter decided, and counted among the dropped."""

    match_length: MatchLength | None = field(default=None, metadata={"parse": parse_match_length})
    """bins: draw the highest and lowest groups bin by bin over response length; truncate: pair them one to one
    and cut each pair to its shorter member's length (response_window), so both groups have the same lengths
    token for token (compute them with --record-windows)."""

    max_length: int | None = field(default=None, metadata={"min": 1})
    """The max length (prompt plus response tokens) of the runs or the training the groups are for: a record's
    length then counts only the response tokens that fit beside its prompt (n_prompt_tokens), for token budgets,
    --by fitting_tokens and --match-length truncate (so every pair's window fits and no run skips one member)."""

    pairing: Pairing = "rank"
    """How --match-length truncate pairs the two groups: rank (the i-th shortest with the i-th shortest) or
    random (seeded)."""

    length_bins: int = field(default=10, metadata={"min": 1})
    """Response-length bins used by --match-length bins."""

    seed: int = 0
    """Seed of --by random and --pairing random."""

    name: str | None = None
    """File-name stem of the groups (default: the data file's stem)."""

    field_map: dict[str, str] = field(default_factory=dict, metadata={"parse": parse_field_map})
    """Read other field names as the canonical ones, e.g. output=answer."""

    run: Path | None = None
    """The run folder computed on DATA, for --by grad_quality when the file has no grad_quality field (score
    --metrics grad_quality writes it)."""

    @classmethod
    def missing(cls, name: str, values: Mapping[str, Any]) -> str:
        """Without --by: the fields of DATA that --by can rank by."""
        if name != "by" or "data" not in values:
            return ""
        from gradspec.data import load_dataset
        from gradspec.data.values import numeric_fields
        from gradspec.errors import GradspecError

        try:
            records = [row.value for row in load_dataset(values["data"]).rows if isinstance(row.value, Mapping)]
        except GradspecError:  # the data's own problem is said when it is read for real
            return ""
        fields = numeric_fields(records)
        return f"; numeric fields of {values['data']}: {', '.join(fields[:30]) or 'none'} (or random, fitting_tokens)"

    def __post_init__(self) -> None:
        for option in ("top", "bottom"):  # a size given in Python (top=64, top="25%") is read here, once
            try:
                object.__setattr__(self, option, Size.parse(getattr(self, option)))
            except ValueError as exc:
                raise ConfigError(f"--{option} {exc}") from None
        super().__post_init__()

    def check(self) -> None:
        if self.name is not None:
            segment(self.name, "--name")
        if self.quantiles is not None and self.quantiles > MAX_QUANTILES:
            raise ConfigError(f"--quantiles {self.quantiles}: at most {MAX_QUANTILES} groups (one file each)")
        if not (self.top or self.bottom or self.quantiles or self.keep_column):
            raise ConfigError("select: give --top N, --bottom N, --quantiles K or --keep-column")
        if self.match_length and self.top != self.bottom:
            raise ConfigError("--match-length pairs the groups: give --top and --bottom the same N")
        if self.by == RANDOM and (self.bottom or self.quantiles or self.match_length):
            raise ConfigError("--by random draws one group: give --top N only")
        budgets = [size.budget for size in (self.top, self.bottom)]
        if any(budgets) and self.max_length is None:
            raise ConfigError("a token budget counts the tokens that fit: give --max-length (the training's)")
        if self.by == FITTING and self.max_length is None:
            raise ConfigError("--by fitting_tokens needs --max-length (the training's)")
        if any(budgets) and self.match_length:
            raise ConfigError("--match-length draws groups of N records each; a token budget is not a count")
        if (self.residualise or self.strata) and (self.match_length or self.by == RANDOM):
            raise ConfigError("--residualise and --strata rank by a score: not with --match-length or --by random")
