"""Packages only some commands need, installed with an extra (``pip install 'gradspec[EXTRA]'``):
one import that says, in one line, which extra to install when the package is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from gradspec.errors import ConfigError


def require(module: str, extra: str, what: str) -> ModuleType:
    """``module`` imported, or a ``ConfigError`` naming ``what`` needs it and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise ConfigError(f"{what} needs the {top} package: pip install 'gradspec[{extra}]'") from exc
