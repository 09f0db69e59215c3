"""The ``gradspec`` command group: one error style, ``--debug`` anywhere, ``--version``.

Errors meant for the user (``GradspecError``), refusals of the system (``OSError``, with the path)
and usage mistakes end as one line on stderr, ``gradspec: error: ...``, with exit code 2. Any other
exception is a bug in gradspec: one line that says so, exit code 1. ``--debug`` anywhere on the
line shows the traceback instead. Commands import what they need (torch, pandas) inside their bodies, so
``--help`` and ``--version`` start without them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from gradspec import __version__
from gradspec.errors import GradspecError, first_line
from gradspec.secrets import scrub

DEBUG = "--debug"
_state = {"debug": False}


def error_line(message: str) -> str:
    """One line, whatever the message holds."""
    return "gradspec: error: " + " ".join(scrub(str(message)).split())


def os_error(exc: OSError) -> str:
    """What the system refused, and where: ``PATH: No space left on device``."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    why = exc.strerror or first_line(exc)
    return f"{where}: {why}" if where else f"system error: {why}"


def bug_line(exc: BaseException) -> str:
    """What an unexpected exception is: a bug, its type and first line, and how to see its traceback."""
    return (
        f"gradspec: internal error (a bug in gradspec, not in your input): {type(exc).__name__}: "
        f"{' '.join(scrub(first_line(exc)).split())}; run the command again with --debug for the traceback, "
        "and report it"
    )


class App(click.Group):
    """A click group whose ``main`` turns user errors into one line and strips ``--debug``."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        _state["debug"] = DEBUG in argv
        argv = [a for a in argv if a != DEBUG]
        extra.pop("standalone_mode", None)
        try:
            code = super().main(argv, prog_name or "gradspec", standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("gradspec: interrupted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            if _state["debug"]:
                raise
            click.echo(error_line(exc.format_message()), err=True)
            sys.exit(exc.exit_code)
        except GradspecError as exc:
            if _state["debug"]:
                raise
            click.echo(error_line(str(exc)), err=True)
            sys.exit(2)
        except OSError as exc:  # no space, read-only, no permission, ...: the path and why, in one line
            if _state["debug"]:
                raise
            click.echo(error_line(os_error(exc)), err=True)
            sys.exit(2)
        except Exception as exc:  # anything else is gradspec's own bug: said as one, never as bad input
            if _state["debug"]:
                raise
            click.echo(bug_line(exc), err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(
    cls=App,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    help="Exact layer-wise gradient spectra of language models, per post-training sample.\n\n"
    "Add --debug anywhere to see the full traceback of an error.",
)
@click.version_option(__version__, "--version", prog_name="gradspec", message="%(prog)s %(version)s")
def app() -> None:
    pass
