"""The ``gradspec`` command group: one error style, ``--debug`` anywhere, ``--version``.

Errors meant for the user (``GradspecError``) and usage mistakes end as one line on stderr,
``gradspec: error: ...``, with exit code 2; ``--debug`` anywhere on the line shows the
traceback instead. Commands import what they need (torch, pandas) inside their bodies, so
``--help`` and ``--version`` start without them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from gradspec import __version__
from gradspec.errors import GradspecError

DEBUG = "--debug"
_state = {"debug": False}


def debugging() -> bool:
    return _state["debug"]


def error_line(message: str) -> str:
    """One line, whatever the message holds."""
    return "gradspec: error: " + " ".join(str(message).split())


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
