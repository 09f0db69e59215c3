"""YAML files a user gives (experiments, recipes), read safely and within bounds.

``yaml.safe_load`` builds no Python objects from tags, but an alias tree of a few lines can still
expand to billions of values, and an alias can refer to itself. The document is composed first
and refused, in one line, when it recurses, nests too deeply or expands too far.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gradspec.errors import ConfigError, first_line
from gradspec.inputs import read_text

MAX_NODES = 100_000
"""Values an experiment file may hold once its aliases are expanded: real files hold hundreds."""
MAX_YAML_DEPTH = 64


def bounded_yaml(text: str, path: Path) -> Any:
    """``yaml.safe_load`` of ``text``, refused before anything is built when its aliases make a
    cycle, nest deeper than ``MAX_YAML_DEPTH`` or expand beyond ``MAX_NODES`` values (an alias
    tree of a few lines can otherwise expand to billions)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}
        open_nodes: set[int] = set()
        stack: list[tuple[yaml.Node, int, bool]] = [(node, 1, False)]
        while stack:
            current, level, children_done = stack.pop()
            key = id(current)
            if children_done:
                open_nodes.discard(key)
                children = _children(current)
                sizes[key] = 1 + sum(sizes[id(c)] for c in children)
                if sizes[key] > MAX_NODES:
                    raise ConfigError(f"{path}: expands to more than {MAX_NODES:,} values (aliases of aliases?)")
                continue
            if key in sizes:
                continue
            if key in open_nodes:
                raise ConfigError(f"{path}: an alias refers to itself (line {current.start_mark.line + 1})")
            if level > MAX_YAML_DEPTH:
                raise ConfigError(f"{path}: nested deeper than {MAX_YAML_DEPTH} levels")
            open_nodes.add(key)
            stack.append((current, level, True))
            stack.extend((c, level + 1, False) for c in _children(current))
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def read_yaml(path: Path, what: str = "") -> Any:
    """The YAML document in ``path`` (``bounded_yaml``), or a one-line error naming it: a pipe or a
    device is refused before it is opened, and a file is read up to ``MAX_TEXT_BYTES``."""
    where = f"{what} {path}".strip()
    text = read_text(path, what or "file")
    try:
        return bounded_yaml(text, Path(where))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({first_line(exc)})") from exc
