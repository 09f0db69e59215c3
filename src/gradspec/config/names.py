"""Names that become file or folder names: one path segment, never a path.

An experiment's pool, selection, run, comparison, correlation and training names, ``select
--name`` and correlate's quality fields are joined under an output folder; a name holding a
separator, ``..`` or an absolute path would write elsewhere. The rule is checked where the name
is read (the config), so nothing is written before the error.
"""

from __future__ import annotations

import re

from gradspec.errors import ConfigError

MAX_NAME = 200
_BAD = re.compile(r"[/\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Separators, control characters (C0, DEL, C1) and the bidirectional controls that make a name read
as another (U+202E before ``gnp.exe`` shows ``evil`` + it as ``evilexe.png``)."""


def segment(value: object, what: str) -> str:
    """``value`` when it is a usable single file name, else ``ConfigError`` (a ``ValueError``) naming ``what``.

    Refused: an empty name, ``.`` or ``..``, a leading dot (gradspec keeps its own state in dot
    files), path separators of any OS, control and bidirectional-override characters, and more than
    ``MAX_NAME`` characters.
    """
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be text, got {type(value).__name__} {value!r}")
    if not value or value.startswith(".") or _BAD.search(value) or len(value) > MAX_NAME:
        raise ConfigError(
            f"{what} {value!r} is not a plain name: it becomes a file name, so it may not be empty, start with "
            f"a dot, hold / or \\ or control or direction characters, or be longer than {MAX_NAME} characters"
        )
    return value
