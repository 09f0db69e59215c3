"""Files a user names as input, opened within bounds.

A path on the command line or in a YAML file may name anything: a FIFO (a read waits forever for a
writer), ``/dev/zero`` (a read never ends and fills memory), a device. Every input file is checked
here before it is opened, and small text inputs (experiment files, recipes, judge prompts) are read
with a size cap, so a wrong path costs one line and exit 2, never a hang. Standard library only: the
config stage reads YAML through it.
"""

from __future__ import annotations

from pathlib import Path

from gradspec.errors import InputError

MAX_TEXT_BYTES = 16 << 20
"""Largest small text input (an experiment file, a recipe, a prompt template): real ones are a few KB."""


def check_input(path: str | Path, what: str) -> Path:
    """``path`` if it is a regular file or a folder; otherwise a one-line ``InputError`` naming ``what``
    (missing, or a pipe, device or socket that a read could hang on)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p}: no such file or folder")
    if not (p.is_file() or p.is_dir()):
        raise InputError(f"{what} {p}: not a regular file (a pipe, a device or a socket); give a file")
    return p


def read_text(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a small input file, refused in one line when it is not a regular file, is
    larger than ``limit`` bytes, cannot be read or is not UTF-8."""
    p = check_input(path, what)
    if p.is_dir():
        raise InputError(f"{what} {p}: is a folder; give a file")
    try:
        with p.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{what} {p}: cannot read it ({exc.strerror})") from exc
    if len(data) > limit:
        raise InputError(f"{what} {p}: larger than {limit >> 20} MiB; this is not the file meant here")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {p}: not UTF-8 text (byte {exc.start})") from exc
