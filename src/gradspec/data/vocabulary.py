"""The data stage's vocabulary: the record fields gradspec recognises, how a file's own names map
onto them, and the record files it writes. Declared here, where the data stage lives; the
configs and the writers read it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gradspec.errors import ConfigError

RECORD_SUFFIXES = (".json", ".jsonl", ".parquet")
"""Files gradspec writes records into (a JSON list, JSON lines or Parquet)."""


def check_record_path(path: str | Path, option: str = "--out") -> Path:
    """``path`` when it names a record file gradspec can write, else ConfigError."""
    p = Path(path)
    if p.suffix.lower() not in RECORD_SUFFIXES:
        raise ConfigError(f"{option} {p}: give a file ending in {', '.join(RECORD_SUFFIXES)}")
    return p


CANONICAL_FIELDS = (
    "instruction",
    "input",
    "output",
    "prompt",
    "response",
    "system",
    "conversations",
    "messages",
    "response_window",
)
"""Field names the record layouts are recognised by; ``field_map`` maps a file's own names onto them."""


def parse_field_map(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"output=answer,instruction=question"`` (or a mapping) -> {canonical field: field in the file}."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        pairs = [(str(k), str(v)) for k, v in spec.items()]
    elif isinstance(spec, str):
        pairs = []
        for item in filter(None, (s.strip() for s in spec.split(","))):
            if "=" not in item:
                raise ValueError(f"--field-map entry '{item}' must look like canonical=source (e.g. output=answer)")
            key, _, value = item.partition("=")
            pairs.append((key.strip(), value.strip()))
    else:
        raise ValueError(f"--field-map expects canonical=source pairs, got {type(spec).__name__}")
    out: dict[str, str] = {}
    for key, value in pairs:
        if key not in CANONICAL_FIELDS:
            raise ValueError(f"--field-map: unknown field '{key}'; use one of {', '.join(CANONICAL_FIELDS)}")
        out[key] = value
    return out
