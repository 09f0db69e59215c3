"""Writing an HTML page gradspec made: whole or not at all, and never over a file it did not make.

Every page carries ``GENERATOR`` in its head. An existing file at ``--out`` is replaced only when
it carries it too: ``--out run.json`` or ``--out data.json`` by mistake is refused, not lost.
"""

from __future__ import annotations

from pathlib import Path

from gradspec.errors import ConfigError, OutputError
from gradspec.files import atomic_write, check_output_file

GENERATOR = '<meta name="generator" content="gradspec">'


def check_page_out(path: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an ``--out`` that cannot be written or is a file gradspec did not make."""
    p = check_output_file(path, option)
    if p.exists() or p.is_symlink():
        if p.is_symlink() or not p.is_file():
            raise OutputError(f"{option} {p} exists and is not a page gradspec wrote; choose another {option}")
        with p.open("rb") as fh:
            head = fh.read(4096)
        if GENERATOR.encode() not in head:
            raise ConfigError(
                f"{option} {p} exists and is not a page gradspec wrote; refusing to replace it: choose another {option}"
            )
    return p


def write_page(path: str | Path, page: str) -> Path:
    """``page`` written whole to ``path`` (checked again: the file may have appeared meanwhile)."""
    p = check_page_out(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(p, lambda t: t.write_text(page, encoding="utf-8"))
    return p
