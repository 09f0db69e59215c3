"""Markers: written with every output folder, read to tell what a folder is.

``write_marker`` puts the kind, the format, the gradspec version, the time and the config that
made the output (with whatever else the stage records) into the kind's marker file, whole or not
at all. ``identify`` tells a folder's kind from its marker, refuses a marker of a newer format
in one line, and recognises folders written before markers by their files (``legacy``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gradspec import __version__
from gradspec.artifacts.kinds import KINDS, RUN, SCORE_STATE, SELECTION, Kind
from gradspec.errors import ConfigError, DamagedError
from gradspec.files import write_json_atomic
from gradspec.store.contract import is_run_manifest


class WrongKind(ConfigError):
    """A gradspec output folder of another kind than the one asked for."""


class NotAnOutput(ConfigError):
    """A path that holds no gradspec output at all (no marker, no file of any kind)."""


@dataclass(frozen=True)
class Found:
    """A folder (or scored file) and what it is."""

    kind: Kind
    path: Path
    marker: dict[str, Any]
    """The marker's content ({} for a folder written before markers)."""

    @property
    def legacy(self) -> bool:
        return not self.marker

    def describe(self) -> str:
        """One line: the path, the kind, who wrote it."""
        version = self.marker.get("gradspec_version")
        made = f", written by gradspec {version}, format {self.marker.get('format')}" if version else ""
        old = " (written before output folders carried markers)" if self.legacy else ""
        article = "an" if self.kind.name[0] in "aeiou" else "a"
        return f"{self.path}: {article} {self.kind.name}: {self.kind.what}{made}{old}"


def marker_content(kind: Kind, config: dict[str, Any] | None = None, **content: Any) -> dict[str, Any]:
    """A marker's JSON: kind, format, version, time, the config that made it, then ``content``."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    head = {"kind": kind.tag, "format": kind.format, "gradspec_version": __version__, "created_at": stamp}
    return {**head, "config": config or {}, **content}


def write_marker(folder: str | Path, kind: Kind, config: dict[str, Any] | None = None, **content: Any) -> Path:
    """Write ``folder``'s marker (made if needed); returns its path."""
    path = kind.marker_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, marker_content(kind, config, **content))
    return path


def read_marker(path: Path) -> dict[str, Any] | None:
    """A marker file's JSON object, None when the file is not one (absent, not JSON, not an object)."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def checked(kind: Kind, path: Path, marker: dict[str, Any]) -> Found:
    """``marker`` as ``kind``'s, refused when a newer gradspec wrote a format this one cannot read."""
    fmt = marker.get("format", 1)
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        raise DamagedError(f"{kind.marker_path(path)}: damaged marker (format {fmt!r})")
    if fmt > kind.format:
        raise ConfigError(
            f"{path}: a {kind.name} of format {fmt}, written by gradspec {marker.get('gradspec_version')}; "
            f"this gradspec ({__version__}) reads up to format {kind.format}: upgrade gradspec"
        )
    return Found(kind, path, marker)


def identify(path: str | Path) -> Found:
    """What ``path`` is (a ``Found``), or a one-line ``ConfigError`` when it is no gradspec output."""
    p = Path(path)
    if p.is_file() or (not p.exists() and Path(f"{p}.score").is_dir()):
        state = Path(f"{p}.score")
        marker = read_marker(SCORE_STATE.marker_path(state))
        if marker is not None and marker.get("kind") in (SCORE_STATE.tag, None):
            return checked(SCORE_STATE, state, marker)
        if p.name.endswith("_selection.json"):
            return Found(SELECTION, p.parent, read_marker(SELECTION.marker_path(p.parent)) or {})
        raise NotAnOutput(f"{p}: a file, and not one gradspec wrote (give an output folder)")
    if not p.is_dir():
        raise NotAnOutput(f"{p}: no such file or folder")
    damaged: Path | None = None
    for kind in KINDS.values():
        marker = read_marker(kind.marker_path(p))
        if marker is None:
            damaged = damaged or (kind.marker_path(p) if kind.marker_path(p).is_file() else None)
            continue
        if marker.get("kind") in (kind.tag, *kind.legacy_tags) or (kind is RUN and is_run_manifest(marker)):
            return checked(kind, p, marker)  # a run of format 1 has no kind: the store knows its keys
    for kind in KINDS.values():
        if any(next(p.glob(pattern), None) is not None for pattern in kind.legacy):
            return Found(kind, p, {})
    if damaged is not None:
        raise DamagedError(f"{damaged}: damaged (not a JSON object), so {p} cannot be read as gradspec output")
    known = ", ".join(KINDS)
    raise NotAnOutput(f"{p}: not a gradspec output folder (no marker of any kind: {known})")


def identify_as(path: str | Path, *kinds: Kind) -> Found:
    """``identify``, refused in one line unless the folder is one of ``kinds``."""
    found = identify(path)
    if found.kind not in kinds:
        wanted = " or ".join(k.name for k in kinds)
        raise WrongKind(f"{path}: a {found.kind.name}, not a {wanted}")
    return found
