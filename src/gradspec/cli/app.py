"""The ``gradspec`` Typer app, the ``--debug`` switch, and the one-line error exit."""

from __future__ import annotations

from typing import NoReturn

import typer

app = typer.Typer(
    help="Exact layer-wise gradient spectra of language models, per post-training sample.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_state = {"debug": False}


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    _state["debug"] = debug


def fail(exc: BaseException) -> NoReturn:
    if _state["debug"]:
        raise exc
    typer.echo(f"gradspec: error: {exc}", err=True)
    raise typer.Exit(2)
