"""Whole-file writes: written under a temporary name, fsynced and renamed, so a crash leaves
either the old file or the new one, never half of one. Used by run folders and record files."""

from __future__ import annotations

import fcntl
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gradspec.data.vocabulary import check_record_path
from gradspec.errors import OutputError, first_line
from gradspec.secrets import scrub, scrub_value


def json_text(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON text that UTF-8 can always encode: readable characters as they are, and
    ``\\uXXXX`` escapes where a text holds a lone surrogate (which has no UTF-8 form)."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, indent=indent)
    return text


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp)`` and move ``tmp`` onto ``path`` once it is on disk."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with naming(path):
            write(tmp)
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """Re-raise an ``OSError`` that names no file as one naming ``path``: a write that fills the disk
    says only "No space left on device", and the user must be told which output it was."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or first_line(exc), str(path)) from exc


def under(root: Path, *names: str) -> Path:
    """``root / names...``, refused (``ConfigError``) unless it stays inside ``root``: the last line of
    defence behind the name checks (``config.names.segment``), against a name that is a path."""
    path = root.joinpath(*names)
    base = root.resolve()
    if not path.resolve().is_relative_to(base):
        raise OutputError(f"{'/'.join(names)}: would be written outside {root}; give a plain name")
    return path


def check_parent(p: Path, option: str = "--out") -> None:
    """Refuse a path whose nearest existing ancestor is a file or is not writable: nothing could be made there."""
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{option} {p}: {parent} is a file, so nothing can be made under it")
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {p}: {parent} is not writable")


def check_output_folder(path: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output folder that cannot be written: a file, a folder under a
    file or in a read-only place, or an existing folder that is not writable."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{option} {p} is a file, not a folder; choose another {option}")
    check_parent(p, option)
    if p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {p} is not writable")
    return p


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output file that cannot be written (a folder, a file as parent)."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{option} {p} is a folder; give a file")
    check_parent(p, option)
    return p


FORMULA = re.compile(r"^[-=+@\t\r]")
"""What a spreadsheet may evaluate at the start of a cell (OWASP's CSV injection list)."""


def inert(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``-2+3+cmd|...``, a
    group label taken from a folder name) with a leading apostrophe, so it is shown, not run. Numbers,
    and text that is a number as a whole (``-1.5``), are left as they are."""
    if not isinstance(value, str) or not FORMULA.match(value):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def write_csv(frame: Any, path: Path) -> None:
    """A pandas frame as CSV, every text cell and column name that a spreadsheet would evaluate made
    inert (``inert``): labels, file and group names come from users."""
    text = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype) in ("string", "str")]
    safe = frame.assign(**{c: frame[c].map(inert) for c in text}) if text else frame
    safe.rename(columns=lambda c: inert(c) if isinstance(c, str) else c).to_csv(path, index=False)


def write_json_atomic(path: Path, data: Any) -> None:
    text = scrub(json_text(data, indent=2) + "\n")
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_records(path: str | Path, records: Sequence[Mapping[str, Any]]) -> Path:
    """Write records as a JSON list, JSON lines or Parquet, chosen by the file's suffix."""
    p = check_record_path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        try:
            table = pa.Table.from_pylist([dict(scrub_value(r)) for r in records])
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError) as exc:
            raise OutputError(f"{p}: these records do not fit one Parquet schema ({exc}); write .jsonl") from exc
        atomic_write(p, lambda t: pq.write_table(table, t))
    elif suffix == ".jsonl":
        lines = scrub("".join(json_text(r) + "\n" for r in records))
        atomic_write(p, lambda t: t.write_text(lines, encoding="utf-8"))
    else:
        write_json_atomic(p, list(records))
    return p


class WriterLock:
    """An OS lock on ``path`` (created if needed) held by one process at a time: a second writer of
    the same output is refused at once with ``busy`` (a one-line ``ConfigError``). The OS lets go
    when the process ends, however it ends, so a killed writer leaves nothing to clean up."""

    def __init__(self, path: Path, busy: str) -> None:
        self.path = path
        self._fd: int | None = None  # set before anything can fail: __del__ reads it
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"{path}: cannot create the lock file ({exc.strerror})") from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise OutputError(busy) from None

    @staticmethod
    def held(path: Path) -> bool:
        """Whether another process holds the lock on ``path`` now (a write in progress)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
