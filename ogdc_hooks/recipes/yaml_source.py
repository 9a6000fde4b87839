"""YAML parsed safely into plain data, remembering where every key and value sits.

Recipe files come from anyone with push access, so parsing is deliberately
narrow: PyYAML's safe loader, no anchors or aliases (no alias bombs), bounded
nesting, only the plain scalar types, no duplicate keys. The positions let a
problem found later (by pydantic or a rule) point at the exact line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ogdc_hooks.recipes.problems import Problem

MAX_DEPTH = 32
_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS = frozenset(
    _CORE + name for name in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
)

_SCALAR_KINDS = {
    _CORE + "int": "a whole number",
    _CORE + "float": "a number",
    _CORE + "bool": "true or false",
    _CORE + "timestamp": "a date",
}

DataPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    """A 1-based line and column."""

    line: int
    column: int

    @classmethod
    def of(cls, mark: yaml.Mark | None) -> Mark:
        return cls(mark.line + 1, mark.column + 1) if mark is not None else cls(1, 1)


@dataclass
class Positions:
    """Where each value (and each mapping key) of a document starts, by data path."""

    values: dict[DataPath, Mark] = field(default_factory=dict)
    keys: dict[DataPath, Mark] = field(default_factory=dict)

    def value(self, path: DataPath) -> Mark:
        """The value at `path`, or its nearest ancestor that exists."""
        for length in range(len(path), -1, -1):
            mark = self.values.get(path[:length])
            if mark is not None:
                return mark
        return Mark(1, 1)

    def key(self, path: DataPath) -> Mark:
        """The key that introduces `path`, else where its value starts."""
        return self.keys.get(path) or self.value(path)


@dataclass
class Parsed:
    """Data and positions, with problems (duplicate keys); data is None when parsing failed."""

    data: dict[str, Any] | None
    positions: Positions
    problems: list[Problem]


class _Refused(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None, where: DataPath = ()) -> None:
        super().__init__(message)
        self.message = message
        self.mark = Mark.of(mark)
        self.where = where


class _GuardedLoader(yaml.SafeLoader):
    """The safe loader, refusing anchors, aliases and deep nesting while composing."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused("YAML anchors and aliases (& and *) are not allowed", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_mapping(text: str, path: str) -> Parsed:
    """Parse `text` (the file at `path`) as one YAML mapping."""
    positions = Positions()
    try:
        loader = _GuardedLoader(text)
    except yaml.reader.ReaderError as err:
        return Parsed(None, positions, [_reader_problem(text, path, err)])
    try:
        root = loader.get_single_node()
        if root is None:
            raise _Refused("the file is empty; it must be a mapping of keys to values", None)
        if not isinstance(root, MappingNode):
            raise _Refused(
                f"the file must be a mapping of keys to values, not {_node_kind(root)}",
                root.start_mark,
            )
        problems: list[Problem] = []
        data = _Builder(loader, path, positions, problems).mapping(root, ())
    except _Refused as err:
        return Parsed(None, positions, [_problem(path, err.mark, err.message, key_path(err.where))])
    except yaml.MarkedYAMLError as err:
        mark = Mark.of(err.problem_mark or err.context_mark)
        # "but found another document" only makes sense after its context.
        what = (
            f"{err.context}, {err.problem}"
            if (err.problem or "").startswith("but")
            else err.problem
        )
        return Parsed(None, positions, [_problem(path, mark, f"YAML syntax error: {what}")])
    finally:
        loader.dispose()
    return Parsed(data, positions, problems)


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, recording positions."""

    def __init__(
        self, loader: yaml.SafeLoader, path: str, positions: Positions, problems: list[Problem]
    ) -> None:
        self.loader = loader
        self.path = path
        self.positions = positions
        self.problems = problems

    def value(self, node: Node, where: DataPath) -> Any:
        if node.tag not in _PLAIN_TAGS:
            tag = node.tag.replace(_CORE, "!!")
            raise _Refused(
                f"the YAML tag {tag} is not allowed; use plain values", node.start_mark, where
            )
        if isinstance(node, MappingNode):
            return self.mapping(node, where)
        if isinstance(node, SequenceNode):
            return [self.item(child, (*where, index)) for index, child in enumerate(node.value)]
        try:
            return self.loader.construct_object(node)
        except (ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError):
            kind = _SCALAR_KINDS.get(node.tag, node.tag)
            raise _Refused(
                f"{node.value!r} cannot be read as {kind}; put it in quotes if it is text",
                node.start_mark,
                where,
            ) from None

    def item(self, node: Node, where: DataPath) -> Any:
        self.positions.values[where] = Mark.of(node.start_mark)
        return self.value(node, where)

    def mapping(self, node: MappingNode, where: DataPath) -> dict[str, Any]:
        self.positions.values.setdefault(where, Mark.of(node.start_mark))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise _Refused(
                    f"a key must be a plain word, not {_node_kind(key_node)}", key_node.start_mark
                )
            # The key's source text: `1:` or `yes:` is an unknown key, not a number or a bool.
            key = str(key_node.value)
            child = (*where, key)
            if key in result:
                first = self.positions.keys[child]
                self.problems.append(
                    _problem(
                        self.path,
                        Mark.of(key_node.start_mark),
                        f"duplicate key; it is already given on line {first.line}",
                        key_path(child),
                    )
                )
                continue
            self.positions.keys[child] = Mark.of(key_node.start_mark)
            empty = value_node.start_mark.index == value_node.end_mark.index
            # An empty value has no text of its own: point at its key instead.
            start = key_node.start_mark if empty else value_node.start_mark
            self.positions.values[child] = Mark.of(start)
            result[key] = self.value(value_node, child)
        return result


def key_path(path: DataPath) -> str:
    """`("input", "params", 0, "type")` -> `input.params[0].type`."""
    text = ""
    for element in path:
        text += f"[{element}]" if isinstance(element, int) else f".{element}"
    return text.lstrip(".")


def _node_kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return "a single value"


def _problem(path: str, mark: Mark, message: str, where: str = "") -> Problem:
    return Problem(path, mark.line, mark.column, where, message)


def _reader_problem(text: str, path: str, err: yaml.reader.ReaderError) -> Problem:
    before = text[: err.position]
    line = before.count("\n") + 1
    column = err.position - (before.rfind("\n") + 1) + 1
    return Problem(
        path, line, column, "", f"the character #x{err.character:04x} is not allowed in YAML"
    )
