"""Options of ``gradspec select``: which field ranks the records, which groups are written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gradspec.config.data import parse_field_map
from gradspec.config.fields import Options
from gradspec.errors import ConfigError

GRAD_QUALITY = "grad_quality"


@dataclass(frozen=True)
class SelectConfig(Options):
    """What ``select`` writes."""

    data: Path = field(metadata={"argument": True})
    """A scored file (from gradspec score, or any file with score fields)."""

    by: str
    """Field to rank by: reward, ifd, instag, difficulty, grad_quality (with --run), ..."""

    out_dir: Path = field(metadata={"short": "-o"})
    """Folder for the group files and NAME_selection.json."""

    top: int = field(default=0, metadata={"min": 0})
    """Size of the highest group (0: none)."""

    bottom: int = field(default=0, metadata={"min": 0})
    """Size of the lowest group (0: none)."""

    quantiles: int | None = field(default=None, metadata={"min": 2})
    """Also write K quantile groups, lowest first (NAME_q1ofK.json ...)."""

    match_length: bool = False
    """Draw the highest and lowest groups with matched response-length distributions, bin by bin."""

    length_bins: int = field(default=10, metadata={"min": 1})
    """Response-length bins used by --match-length."""

    name: str | None = None
    """File-name stem of the groups (default: the data file's stem)."""

    field_map: dict[str, str] = field(default_factory=dict, metadata={"parse": parse_field_map})
    """Read other field names as the canonical ones, e.g. output=answer."""

    run: Path | None = None
    """The run folder computed on DATA, for --by grad_quality (a score from the run's gradients)."""

    def check(self) -> None:
        if self.by == GRAD_QUALITY and self.run is None:
            raise ConfigError("--by grad_quality needs --run RUN (the run computed on this data)")
        if not (self.top or self.bottom or self.quantiles):
            raise ConfigError("select: give --top N, --bottom N or --quantiles K")
        if self.match_length and self.top != self.bottom:
            raise ConfigError("--match-length pairs the groups: give --top and --bottom the same N")
