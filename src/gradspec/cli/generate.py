"""Command-line options generated from config fields, so each option is declared once.

Every option of a command is a field of its config dataclass (``gradspec.config``): its name
gives ``--the-name``, its type the value it takes, its default and choices the help text's
tail, and its docstring the help text. A command's function receives the config built from
what was given on the command line, checked by the same code that checks experiment files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from gradspec.config.fields import Leaf, Options, build, leaves
from gradspec.config.types import item_type, metavar

C = TypeVar("C", bound=Options)
CONFIGS: dict[str, type[Options]] = {}
"""Each config command's name -> the config class its options come from (for tools and tests)."""


def show_default(leaf: Leaf) -> str:
    """The help text's tail: what the option is when not given."""
    value = leaf.default
    if leaf.required or leaf.metadata.get("argument"):
        return ""
    if leaf.is_bool:
        return " [default: on]" if value else " [default: off]"
    if value is None or value == {} or value == ():
        return ""
    if isinstance(value, (tuple, list)):
        return f" [default: {','.join(map(str, value))}]"
    if isinstance(value, Path):
        return f" [default: {value}]"
    return f" [default: {value}]"


def option_help(leaf: Leaf) -> str:
    """The field's documentation, then its default (choices are in the value's name)."""
    return leaf.help() + show_default(leaf)


def parameter(leaf: Leaf) -> click.Parameter:
    """The click parameter of one option."""
    if leaf.metadata.get("argument"):
        many = item_type(leaf.type) is not None
        return click.Argument([leaf.name], nargs=-1 if many else 1, required=True, metavar=leaf.name.upper())
    names = [leaf.flag, *leaf.metadata.get("aliases", ())]
    if "short" in leaf.metadata:
        names.append(leaf.metadata["short"])
    if leaf.is_bool:
        decls = [f"{leaf.flag}/--no-{leaf.flag[2:]}", leaf.name]
        return click.Option(decls, default=bool(leaf.default), help=option_help(leaf))
    if leaf.metadata.get("multiple"):  # given once per value: --where A --where B
        return click.Option([*names, leaf.name], type=str, multiple=True, metavar="TEXT", help=option_help(leaf))
    return click.Option([*names, leaf.name], type=str, default=None, metavar=metavar(leaf.type), help=option_help(leaf))


def parameters(cls: type[Options], exclude: tuple[str, ...] = ()) -> list[click.Parameter]:
    """Arguments first, then options, each in declaration order."""
    params = [parameter(leaf) for leaf in leaves(cls) if leaf.metadata.get("cli", True) and leaf.name not in exclude]
    return sorted(params, key=lambda p: not isinstance(p, click.Argument))


def arguments_help(cls: type[Options]) -> str:
    """Positional arguments' documentation (click gives arguments no help of their own)."""
    lines = [f"{leaf.name.upper()}: {leaf.help()}" for leaf in leaves(cls) if leaf.metadata.get("argument")]
    return "\n\n".join(lines)


def given(ctx: click.Context) -> dict[str, Any]:
    """The parameters the user gave (not their defaults), as text or flags."""
    out: dict[str, Any] = {}
    for name, value in ctx.params.items():
        if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
            continue
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def config_command(
    group: click.Group, name: str, cls: type[C], extra: tuple[click.Parameter, ...] = ()
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``fn(config, **extra)`` as ``gradspec NAME`` with options generated from ``cls``.

    ``extra`` are parameters the command has besides its config (output switches such as
    ``--json``); they are passed to ``fn`` by name.
    """

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        extra_names = {p.name for p in extra}

        @click.pass_context
        def callback(ctx: click.Context, /, **_: Any) -> None:
            values = given(ctx)
            own = {k: v for k, v in values.items() if k not in extra_names}
            config = build(cls, own, where="command line")
            fn(config, **{k: ctx.params[k] for k in extra_names})

        doc = (fn.__doc__ or "").strip()
        arguments = arguments_help(cls)
        command = click.Command(
            name,
            callback=callback,
            params=[*parameters(cls), *extra],
            help=doc + ("\n\n" + arguments if arguments else ""),
            short_help=doc.splitlines()[0] if doc else None,
        )
        group.add_command(command)
        CONFIGS[name] = cls
        return fn

    return register


def json_flag() -> click.Option:
    """``--json``: print the command's result as one JSON document instead of text (for scripts)."""
    return click.Option(
        ["--json", "as_json"], is_flag=True, default=False, help="Print the result as JSON (for scripts)."
    )
