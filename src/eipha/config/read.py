"""The hardened YAML reader: text to plain dicts, lists and scalars.

Events are scanned first (syntax, nesting depth, one document only), then the node tree is
walked by hand, so duplicate keys, unsupported tags and values that cannot be constructed
are reported with their path and line, and alias bombs are bounded. A value that cannot be
read becomes :data:`BAD`, which every later check skips.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import yaml

from eipha.config.messages import clip, join, show

_MAX_DEPTH = 64  # YAML nesting; the schema itself is 5 deep
_MAX_NODES = 100_000  # values after expanding aliases ("billion laughs")


class _Bad:
    """A value that could not be read; already reported, skipped by every check."""

    def __repr__(self) -> str:
        return "<unreadable>"


BAD: Any = _Bad()
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TooBig(Exception):
    """The node tree exceeds a bound; the message says which."""


class _Composer(Protocol):
    """What is used of a PyYAML loader (the libyaml one when present: 20x faster)."""

    def get_single_node(self) -> yaml.Node | None: ...
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any: ...
    def dispose(self) -> None: ...


_LOADER: Callable[[str], _Composer] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE


def load_yaml(text: str, label: str) -> tuple[object, list[str]]:
    """(data, problems). A fatal problem (syntax, several documents) gives data :data:`BAD`."""
    fatal = _check_characters(text, label) or _scan(text, label)
    if fatal:
        return BAD, [fatal]
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        return BAD, [_yaml_error(label, exc)]
    finally:
        loader.dispose()
    return _read_tree(loader, node, label)


def _read_tree(loader: _Composer, node: yaml.Node | None, label: str) -> tuple[object, list[str]]:
    if node is None:
        return None, []
    reader = _TreeReader(loader, label)
    try:
        return reader.read(node, "", 0), reader.problems
    except _TooBig as exc:
        return BAD, [f"{label}: {exc}"]


def _check_characters(text: str, label: str) -> str | None:
    """YAML forbids control characters; say where the first one is (binary junk)."""
    found = _NON_PRINTABLE.search(text)
    if found is None:
        return None
    at = found.start()
    line, column = text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
    character = f"#x{ord(found.group()):04x}"
    return f"{label}: YAML error at line {line} column {column}: unacceptable character {character}"


def _scan(text: str, label: str) -> str | None:
    """One pass over the events before composing, whose recursion follows the nesting."""
    depth = documents = values = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):  # type: ignore[arg-type]
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    return f"{label}: more than one YAML document ({_line(event)} starts another)"
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > _MAX_DEPTH:
                    return f"{label}: nested deeper than {_MAX_DEPTH} levels ({_line(event)})"
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            values += isinstance(event, yaml.NodeEvent)
            if values > _MAX_NODES:
                return f"{label}: more than {_MAX_NODES} values"
    except yaml.YAMLError as exc:
        return _yaml_error(label, exc)
    return None


def _number(item: yaml.Node | yaml.Event) -> int:
    return item.start_mark.line + 1 if item.start_mark is not None else 0


def _line(item: yaml.Node | yaml.Event) -> str:
    return f"line {_number(item)}"


def _yaml_error(label: str, exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        why = "; ".join(part for part in (exc.context, exc.problem) if part)
        return f"{label}: YAML error at line {mark.line + 1} column {mark.column + 1}: {why}"
    return f"{label}: YAML error: {clip(str(exc), 200)}"


class _TreeReader:
    """Node tree -> dicts, lists and scalars, reporting what plain YAML loading would hide."""

    def __init__(self, loader: _Composer, label: str) -> None:
        self.loader = loader
        self.label = label
        self.problems: list[str] = []
        self.count = 0

    def read(self, node: yaml.Node, path: str, depth: int) -> object:
        self.count += 1
        if self.count > _MAX_NODES:
            raise _TooBig(f"more than {_MAX_NODES} values (after expanding aliases)")
        if depth > _MAX_DEPTH:
            raise _TooBig(f"nested deeper than {_MAX_DEPTH} levels (a recursive alias?)")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node, path, depth)
        return self._scalar(node, path)

    def _problem(self, path: str, message: str, node: yaml.Node | None = None) -> None:
        at = f" ({_line(node)})" if node is not None else ""
        self.problems.append(f"{path or self.label}: {message}{at}")

    def _tag_ok(self, node: yaml.Node, tag: str, path: str) -> bool:
        if node.tag != tag:
            self._problem(path, f"unsupported YAML tag {show(node.tag)}", node)
        return node.tag == tag

    def _mapping(self, node: yaml.MappingNode, path: str, depth: int) -> object:
        if not self._tag_ok(node, _MAP_TAG, path):
            return BAD
        result: dict[str, object] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in result:
                where = f"duplicate key {show(key)} at line {_number(key_node)}"
                self._problem(join(path, key), f"{where} (first at line {lines[key]})")
                continue
            lines[key] = _number(key_node)
            result[key] = self.read(value_node, join(path, key), depth + 1)
        return result

    def _key(self, node: yaml.Node, path: str) -> str | None:
        """Keys are taken as written (``1:`` names "1", ``on:`` names "on")."""
        if not isinstance(node, yaml.ScalarNode):
            self._problem(path, "keys must be plain names, not a list or mapping", node)
            return None
        if node.tag == _MERGE_TAG:
            self._problem(path, "merge keys ('<<') are not supported; write the keys out", node)
            return None
        return str(node.value)

    def _sequence(self, node: yaml.SequenceNode, path: str, depth: int) -> object:
        if not self._tag_ok(node, _SEQ_TAG, path):
            return BAD
        return [self.read(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node.value)]

    def _scalar(self, node: yaml.Node, path: str) -> object:
        try:
            return self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            reason = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else str(exc)
            self._problem(path, f"cannot read {show(node.value)}: {clip(str(reason), 100)}", node)
            return BAD
