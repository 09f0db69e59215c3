"""Warnings for the person running gradspec: one line each on stderr, whether it runs from the
command line or from Python (a run that skipped most of its samples must not pass in silence)."""

from __future__ import annotations

import sys

from gradspec.secrets import scrub


def warn(message: str) -> None:
    """``gradspec: warning: message`` on stderr, on one line."""
    print("gradspec: warning: " + " ".join(scrub(str(message)).split()), file=sys.stderr, flush=True)


def note(message: str) -> None:
    """``gradspec: message`` on stderr: something the person running it should know, not a problem."""
    print("gradspec: " + " ".join(scrub(str(message)).split()), file=sys.stderr, flush=True)


_SAID: set[str] = set()


def note_once(message: str) -> None:
    """``note``, once per process: what holds for every run of one session (the template a callback's
    every measurement renders with, the demo's four runs) is said the first time only."""
    if message not in _SAID:
        _SAID.add(message)
        note(message)
