"""What an option's type annotation says: optional or not, its choices, list or mapping, and
how its value looks on the command line."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin


def strip_optional(tp: Any) -> Any:
    """``X | None`` -> ``X`` (other types unchanged)."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def allows_none(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)


def literal_choices(tp: Any) -> tuple[Any, ...] | None:
    """Choices of a ``Literal`` (or ``Literal | None``), else None."""
    inner = strip_optional(tp)
    return get_args(inner) if get_origin(inner) is Literal else None


def item_type(tp: Any) -> Any | None:
    """The item type of ``tuple[X, ...]`` / ``list[X]`` (optional or not), else None."""
    inner = strip_optional(tp)
    if get_origin(inner) in (tuple, list, Sequence):
        args = [a for a in get_args(inner) if a is not Ellipsis]
        return args[0] if args else Any
    return None


def is_mapping(tp: Any) -> bool:
    return get_origin(strip_optional(tp)) in (dict, Mapping)


def metavar(tp: Any) -> str:
    """How a value of type ``tp`` looks on the command line: choices, a list of them, or a name."""
    choices = literal_choices(tp)
    if choices is not None:
        return "[" + "|".join(map(str, choices)) + "]"
    item = item_type(tp)
    if item is not None:
        item_choices = literal_choices(item)
        words = ",".join(map(str, item_choices)) if item_choices else "A,B,..."
        return f"[{words}|all]" if item_choices else words
    if is_mapping(tp):
        return "KEY=VALUE,..."
    return {int: "N", float: "X", Path: "PATH"}.get(strip_optional(tp), "TEXT")
