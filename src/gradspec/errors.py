"""Exceptions that carry a one-line, user-facing message, one class per cause.

The CLI prints ``str(exc)`` of these without a traceback and exits 2. Anything else is a bug in
gradspec: the CLI says so in one line and ``--debug`` shows its traceback; no code turns a bug into
one of these (a ``TypeError`` is never "damaged files").

    ConfigError     options that contradict each other, or a resume with other options
    InputError      an input file that cannot be used (missing, a pipe, too large, not text)
    DataFileError   ... a data file as a whole (wrong fields, unreadable rows)
    ModelError      a model that cannot be loaded or whose projections cannot be named
    DamagedError    an output folder whose files are damaged (run again with --overwrite)
    OutputError     an output that may not be written now (in use, of another kind, unwritable)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable


class GradspecError(Exception):
    """Base class of every error whose message is meant for the user."""


class InputError(GradspecError, ValueError):
    """An input file that cannot be used: missing, not a regular file, too large, not UTF-8."""


class DataFileError(InputError):
    """A data file that cannot be used as a whole (missing, unreadable, wrong field names)."""


class ConfigError(GradspecError, ValueError):
    """Options that contradict each other or a run folder made with other options."""


class DamagedError(GradspecError, ValueError):
    """An output folder whose files are damaged or were written by something else."""


class OutputError(GradspecError, ValueError):
    """An output that may not be written now: another process writes it, it is a folder of another
    kind, or the place is not writable."""


class ModelError(GradspecError, ValueError):
    """A model that cannot be loaded or whose projections cannot be named."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line reasons."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__


def reason_kind(reason: str | None) -> str:
    """A failure reason with its numbers written as N (record indices, token counts), so that
    reasons of one kind count together in summaries; digits inside names (``d2.json``) stay."""
    return _NUMBER.sub("N", reason or "no reason given")


# A number standing alone (a count, an index, a line), not digits inside a name like d2.json or 10k.
_NUMBER = re.compile(r"(?<![\w\-.])\d+(?:\.\d+)?(?![\w\-]|\.\w)")


def grouped(reasons: Iterable[str | None], top: int = 5) -> list[tuple[int, str]]:
    """(count, reason) of the commonest kinds of reason (``reason_kind``), most common first; each is
    shown by its first instance, with its real record and numbers, so the record can be found, and
    how many more are like it."""
    kinds: Counter[str] = Counter()
    first: dict[str, str] = {}
    for reason in reasons:
        kind = reason_kind(reason)
        kinds[kind] += 1
        first.setdefault(kind, reason or "no reason given")
    out = []
    for kind, n in kinds.most_common(top):
        out.append((n, first[kind] + (f" (and {n - 1} more like it)" if n > 1 else "")))
    return out
