"""The YAML node tree of a search space file, for what plain data loses: the line of
every key (so each problem is reported at its line) and keys given twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from gansweep.files import YamlLoader


def compose(text: str) -> tuple[Any, Any]:
    """The YAML node tree (for line numbers) and the data built from it."""
    loader = YamlLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


def key_lines(node: Any, path: tuple = (), lines: dict | None = None) -> dict[tuple, int]:
    """Map each key path, e.g. ("params", "lr_g", "loguniform"), to its 1-based line."""
    lines = {} if lines is None else lines
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*path, key_node.value)
            lines.setdefault(key, key_node.start_mark.line + 1)
            key_lines(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.setdefault((*path, i), item.start_mark.line + 1)
            key_lines(item, (*path, i), lines)
    return lines


def duplicate_keys(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, int]]:
    """Keys given twice in one mapping (YAML loaders silently keep the last one)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                yield (*path, key_node.value), key_node.start_mark.line + 1
            seen.add(key_node.value)
            yield from duplicate_keys(value_node, (*path, key_node.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from duplicate_keys(item, (*path, i))
