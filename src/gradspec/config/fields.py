"""Options declared once, as typed and documented dataclass fields.

Every option of gradspec is a field of one frozen dataclass (one per stage, composed by the
commands), with its documentation in an attribute docstring right below it::

    max_length: int = field(default=2048, metadata={"min": 2})
    \"\"\"Most tokens of prompt plus response that are kept.\"\"\"

From those fields alone come the command-line options (``cli/generate.py``: name, type,
default, choices, help), the keys an experiment YAML may use and how their values are checked
(``build``), and what a run's manifest records (``flatten``). Nothing here imports more than
the standard library, so ``gradspec --help`` stays fast.

A composite config (``ComputeConfig``) has sections (other configs) and leaves (options). Leaf
names are unique within a composite, so the flat view (CLI, YAML, manifest) uses them as they
are: ``max_length`` is ``--max-length``, the YAML key ``max_length`` and ``config.max_length``
in ``run.json``.

Field metadata understood here:
    min: smallest allowed number.
    parse: a function turning a text (command line) or YAML value into the field's value.
    identity: False for options that cannot change a number a run stores (device, batch
        size, progress bars): a run resumes with other values of these.
    argument: the option is a positional command-line argument.
    short: a one-letter alias, e.g. ``-o``.
    cli: False to keep a field out of the command line (Python and YAML only).
    multiple: the option is given once per value on the command line (``--where A --where B``).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from gradspec.config.types import allows_none, is_mapping, item_type, literal_choices, strip_optional
from gradspec.errors import ConfigError

C = TypeVar("C", bound="Options")
R = TypeVar("R")


class Options:
    """Base of every config dataclass: checks ``Literal`` choices and minimums, then ``check``."""

    def __post_init__(self) -> None:
        for leaf in own_leaves(type(self)):
            validate(leaf, getattr(self, leaf.name))
        self.check()

    def check(self) -> None:
        """Rules that span several fields; raise ``ConfigError`` naming them."""

    @classmethod
    def missing(cls, name: str, values: Mapping[str, Any]) -> str:
        """What to add to "--NAME is required" (the choices the given values allow); nothing by default."""
        return ""

    @classmethod
    def of(cls: type[C], **values: Any) -> C:
        """Build from leaf names (``max_length=64``) and sections given whole (``prompt=PromptConfig()``)."""
        return build(cls, values, "options", convert_text=False)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One option: where it sits in a composite config, its type, default and documentation."""

    name: str
    path: tuple[str, ...]  # section attribute names from the composite down to the leaf's owner
    owner: type
    type: Any
    default: Any
    doc: str
    metadata: Mapping[str, Any]

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    @property
    def identity(self) -> bool:
        return bool(self.metadata.get("identity", True))

    @property
    def choices(self) -> tuple[Any, ...] | None:
        return literal_choices(self.type)

    @property
    def is_bool(self) -> bool:
        return strip_optional(self.type) is bool

    def help(self) -> str:
        """The documentation as one paragraph (what ``--help`` shows before the default)."""
        return " ".join(self.doc.split())


def is_options(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp) and issubclass(tp, Options)


def per_class(fn: Callable[[type], R]) -> Callable[[type], R]:
    """``functools.cache`` for a function of a class, typed so that any class may be passed (a type checker
    reads a class whose instances are unhashable, like a dataclass's, as unhashable itself)."""
    cached = functools.cache(fn)

    @functools.wraps(fn)
    def call(cls: type) -> R:
        return cached(cls)

    return call


@per_class
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string right after a field) of ``cls`` and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body  # type: ignore[attr-defined]
        for node, after in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


@per_class
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


@per_class
def own_leaves(cls: type) -> tuple[Leaf, ...]:
    """The options declared directly on ``cls`` (sections excluded)."""
    hints, docs = _hints(cls), field_docs(cls)
    return tuple(
        Leaf(f.name, (), cls, hints[f.name], _default(f), docs.get(f.name, ""), f.metadata)
        for f in dataclasses.fields(cls)
        if not is_options(hints[f.name])
    )


@per_class
def sections(cls: type) -> tuple[tuple[str, type], ...]:
    """(attribute, config class) of each nested section of ``cls``."""
    hints = _hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls) if is_options(hints[f.name]))


@per_class
def leaves(cls: type) -> tuple[Leaf, ...]:
    """Every option of a (composite) config in declaration order, sections' options in place.

    A section with a default of its own (``PromptConfig(max_length=512)``) gives its options
    that default.
    """
    out: list[Leaf] = []
    hints = _hints(cls)
    own = {leaf.name: leaf for leaf in own_leaves(cls)}
    for f in dataclasses.fields(cls):
        if is_options(hints[f.name]):
            base = _default(f)
            for leaf in leaves(hints[f.name]):
                default = leaf.default if base is dataclasses.MISSING else leaf_value(base, leaf)
                out.append(dataclasses.replace(leaf, path=(f.name, *leaf.path), default=default))
        else:
            out.append(own[f.name])
    names = [leaf.name for leaf in out]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise TypeError(f"{cls.__name__}: option names used twice: {clashes}")
    return tuple(out)


def leaf_value(config: Any, leaf: Leaf) -> Any:
    """The value of ``leaf`` in ``config`` (following its section path)."""
    holder = config
    for attr in leaf.path:
        holder = getattr(holder, attr)
    return getattr(holder, leaf.name)


def leaf_map(cls: type) -> dict[str, Leaf]:
    return {leaf.name: leaf for leaf in leaves(cls)}


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def convert(leaf: Leaf, value: Any, convert_text: bool = True) -> Any:
    """A value from the command line (text) or YAML turned into the field's type and checked
    (``validate``), or ConfigError.

    ``convert_text=False`` (Python callers, YAML) takes numbers and flags as given, with the
    light conveniences every caller shares: sequences become tuples, text becomes paths.
    """
    converted = _convert(leaf, value, convert_text)
    validate(leaf, converted)
    return converted


def _list(leaf: Leaf, value: Any, item: Any, none_means_all: bool) -> Any:
    """A list option: a list, or comma-separated text; ``all`` for every choice of a ``Literal`` item."""
    if isinstance(value, str):
        if value.strip() == "all" and literal_choices(item):
            return None if none_means_all else literal_choices(item)
        value = _split(value)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{leaf.flag} expects a list, got {type(value).__name__} {value!r}")
    return tuple(value)


def _mapping(leaf: Leaf, value: Any) -> dict[str, Any]:
    """A mapping option: a mapping, or comma-separated ``key=value`` text."""
    if isinstance(value, str):
        pairs = [p.partition("=") for p in _split(value)]
        bad = [k for k, eq, _ in pairs if not eq]
        if bad:
            raise ConfigError(f"{leaf.flag}: entry '{bad[0]}' must look like key=value")
        value = {k.strip(): v.strip() for k, _, v in pairs}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{leaf.flag} expects a mapping, got {type(value).__name__} {value!r}")
    return dict(value)


def _number(leaf: Leaf, value: Any, kind: type, convert_text: bool) -> Any:
    """An int or float option; text only from the command line (``convert_text``), never a bool."""
    said = "an integer" if kind is int else "a number"
    if isinstance(value, bool):
        raise ConfigError(f"{leaf.flag} expects a number, got {value!r}")
    if isinstance(value, str) and convert_text:
        try:
            return kind(value)
        except ValueError:
            raise ConfigError(f"{leaf.flag} expects {said}, got {value!r}") from None
    if kind is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, kind):
        raise ConfigError(f"{leaf.flag} expects {said}, got {type(value).__name__} {value!r}")
    return value


def _convert(leaf: Leaf, value: Any, convert_text: bool) -> Any:
    parse: Callable[[Any], Any] | None = leaf.metadata.get("parse")
    if parse is not None:
        try:
            return parse(value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{leaf.flag}: {exc}") from exc
    tp = leaf.type
    if value is None:
        if allows_none(tp):
            return None
        raise ConfigError(f"{leaf.flag} cannot be empty (null)")
    inner = strip_optional(tp)
    item = item_type(tp)
    if item is not None:
        return _list(leaf, value, item, allows_none(tp))
    if is_mapping(tp):
        return _mapping(leaf, value)
    if inner is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and convert_text and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{leaf.flag} expects true or false, got {value!r}")
    if inner in (int, float):
        return _number(leaf, value, inner, convert_text)
    if inner is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{leaf.flag} expects a path, got {type(value).__name__} {value!r}")
        return Path(value)
    if leaf.choices is not None or inner is str:
        if not isinstance(value, str):
            raise ConfigError(f"{leaf.flag} expects text, got {type(value).__name__} {value!r}")
        return value
    return value  # a type given as is (e.g. ``str | Path``)


# What a value of each plain type may be (a path may be given as text).
_PLAIN_TYPES: dict[Any, tuple[type, ...]] = {
    int: (int,),
    float: (int, float),
    str: (str,),
    bool: (bool,),
    Path: (str, Path),
}


def validate(leaf: Leaf, value: Any) -> None:
    """Types, choices and minimums, whatever built the config (CLI, YAML or Python)."""
    if value is None:
        if not allows_none(leaf.type) and leaf.metadata.get("parse") is None:
            raise ConfigError(f"{leaf.flag} cannot be empty (null)")
        return
    accepted = _PLAIN_TYPES.get(strip_optional(leaf.type))
    if accepted is not None and (not isinstance(value, accepted) or (bool not in accepted and isinstance(value, bool))):
        raise ConfigError(
            f"{leaf.flag} expects {strip_optional(leaf.type).__name__}, got {type(value).__name__} {value!r}"
        )
    if item_type(leaf.type) is not None and not isinstance(value, (tuple, list)):
        raise ConfigError(f"{leaf.flag} expects a list, got {type(value).__name__} {value!r}")
    choices = leaf.choices
    if choices is not None and value not in choices:
        raise ConfigError(f"{leaf.flag} must be one of {', '.join(map(str, choices))}, got {value!r}")
    item = item_type(leaf.type)
    item_choices = literal_choices(item) if item is not None else None
    if item_choices is not None:
        unknown = [v for v in value if v not in item_choices]
        if unknown or not value:
            raise ConfigError(
                f"{leaf.flag}: unknown {', '.join(map(str, unknown)) or '(none)'}; "
                f"choose from {', '.join(map(str, item_choices))}" + (" or all" if allows_none(leaf.type) else "")
            )
    minimum = leaf.metadata.get("min")
    if minimum is not None and isinstance(value, (int, float)) and value < minimum:
        raise ConfigError(f"{leaf.flag} must be at least {minimum}, got {value}")


def build(cls: type[C], values: Mapping[str, Any], where: str = "options", convert_text: bool = True) -> C:
    """A config from flat leaf names (and whole sections by their attribute name).

    Unknown names are one ``ConfigError`` naming ``where``, the key and the valid keys.
    """
    known = leaf_map(cls)
    section_names = _section_paths(cls)
    unknown = [k for k in values if k not in known and k not in section_names]
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'; valid keys: {', '.join(known)}")
    converted = {k: convert(known[k], v, convert_text) for k, v in values.items() if k in known}
    whole = {k: v for k, v in values.items() if k in section_names}
    return _build(cls, converted, whole)


@per_class
def _section_paths(cls: type) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name, sub in sections(cls):
        out[name] = (name,)
        out.update({k: (name, *p) for k, p in _section_paths(sub).items()})
    return out


def _build(cls: type[C], values: Mapping[str, Any], whole: Mapping[str, Any]) -> C:
    """``cls`` from converted leaf values; a section is taken whole, or its default with the
    given values, or built from them."""
    kwargs: dict[str, Any] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cast(Any, cls)):  # every Options subclass is a dataclass
        tp = hints[f.name]
        if is_options(tp):
            given = whole.get(f.name)
            if given is not None and not isinstance(given, tp):
                raise ConfigError(f"{f.name}: expected a {tp.__name__}, got {type(given).__name__}")
            base = given if given is not None else _default(f)
            if base is dataclasses.MISSING:
                kwargs[f.name] = _build(tp, values, whole)
            else:
                mine = {k: v for k, v in values.items() if k in leaf_map(tp)}
                kwargs[f.name] = replace_leaves(base, **mine) if mine else base
        elif f.name in values:
            kwargs[f.name] = values[f.name]
        elif _default(f) is dataclasses.MISSING:
            raise ConfigError(f"{'--' + f.name.replace('_', '-')} is required{cls.missing(f.name, values)}")
    return cls(**kwargs)


def replace_leaves(config: C, **values: Any) -> C:
    """``config`` with some options changed, by leaf name, whichever section holds them."""
    known = leaf_map(type(config))
    unknown = [k for k in values if k not in known]
    if unknown:
        raise ConfigError(f"unknown option '{unknown[0]}'; valid: {', '.join(known)}")
    changes = {k: v for k, v in values.items() if not known[k].path}
    for attr, _ in sections(type(config)):
        sub = {k: v for k, v in values.items() if known[k].path[:1] == (attr,)}
        if sub:
            changes[attr] = replace_leaves(getattr(config, attr), **sub)
    changed: C = dataclasses.replace(cast(Any, config), **changes)  # every Options subclass is a dataclass
    return changed


@runtime_checkable
class Plain(Protocol):
    """A typed option value that says how JSON keeps it (``Size``)."""

    def plain(self) -> Any: ...


def plain(value: Any) -> Any:
    """A value as JSON keeps it: tuples as lists, paths as text, a typed value as it says."""
    if isinstance(value, Plain):
        return value.plain()
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in sorted(value.items())}
    if isinstance(value, Path):
        return str(value)
    return value


def flatten(config: Options, *, set_only: bool = False) -> dict[str, Any]:
    """{leaf name: value} of every option, JSON-ready; with ``set_only``, only those that differ from
    their default, so that a fingerprint survives a new option whose default keeps the old behaviour."""
    values = {leaf.name: (plain(leaf_value(config, leaf)), leaf) for leaf in leaves(type(config))}
    return {
        name: value
        for name, (value, leaf) in values.items()
        if not set_only or leaf.required or value != plain(leaf.default)
    }


def split_identity(config: Options) -> tuple[dict[str, Any], dict[str, Any]]:
    """(options that change the numbers, options that do not), both flat."""
    values = flatten(config)
    kinds = leaf_map(type(config))
    identity = {k: v for k, v in values.items() if kinds[k].identity}
    return identity, {k: v for k, v in values.items() if not kinds[k].identity}


__all__ = [
    "Leaf",
    "Options",
    "build",
    "convert",
    "field_docs",
    "flatten",
    "leaf_map",
    "leaves",
    "plain",
    "replace_leaves",
    "split_identity",
]
