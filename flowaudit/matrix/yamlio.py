"""Reading matrix YAML with line numbers, so every validation error can name file:line.

``read_yaml(path)`` returns plain Python data in which every mapping is a ``LineDict``
(knows the line of itself and of each key) and every sequence a ``LineList`` (knows the
line of each item). YAML syntax errors and duplicate keys become ``RulesError``.

Input limits (``flowaudit.limits``, documented in rules/README.md): a file larger than
``MATRIX_MAX_BYTES`` is refused before parsing; YAML anchors and aliases are refused (a
reviewed matrix spells every rule out, and aliases are how a few kilobytes expand to
gigabytes); collections nested deeper than ``MATRIX_MAX_DEPTH`` are refused while composing,
before the recursive composer and constructor could exhaust the stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from flowaudit.errors import RulesError
from flowaudit.limits import MATRIX_MAX_BYTES, MATRIX_MAX_DEPTH


class LineDict(dict[str, Any]):
    """A mapping that remembers its own line and each key's line (1-based)."""

    line: int = 0
    key_lines: dict[str, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}  # an empty one made by validation (a group given as null)

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence that remembers its own line and each item's line (1-based)."""

    line: int = 0
    item_lines: list[int]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _Refused(yaml.MarkedYAMLError):
    """Input beyond a limit (an alias or anchor, too deep a nesting)."""


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that builds LineDict/LineList, rejects duplicate keys, aliases, anchors
    and nesting deeper than MATRIX_MAX_DEPTH."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        problem = None
        if isinstance(event, yaml.AliasEvent):
            problem = "YAML aliases (*name) are not allowed"
        elif getattr(event, "anchor", None) is not None:
            problem = "YAML anchors (&name) are not allowed"
        elif isinstance(event, yaml.CollectionStartEvent) and self._depth >= MATRIX_MAX_DEPTH:
            problem = f"nesting deeper than {MATRIX_MAX_DEPTH} levels"
        if problem is not None:
            raise _Refused(None, None, problem, event.start_mark)
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in out:
            raise _DuplicateKey(
                "while constructing a mapping",
                node.start_mark,
                f"duplicate key {key!r}",
                key_node.start_mark,
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file into LineDict/LineList data; errors name file:line:column."""
    try:
        with path.open("rb") as f:
            data = f.read(MATRIX_MAX_BYTES + 1)  # never more, whatever the file is
        text = data.decode("utf-8")
    except OSError as e:
        raise RulesError(f"{path}: cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise RulesError(f"{path}: byte {e.start}: not UTF-8 text") from e
    if len(data) > MATRIX_MAX_BYTES:
        raise RulesError(
            f"{path}: larger than {MATRIX_MAX_BYTES:,} bytes: not read",
            hint="a matrix is a reviewed file of a few kilobytes; see rules/README.md (limits)",
        )
    try:
        return yaml.load(text, Loader=_LineLoader)
    except _DuplicateKey as e:
        mark = e.problem_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RulesError(f"{where}: {e.problem}", hint="each key may appear once") from e
    except _Refused as e:
        mark = e.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise RulesError(
            f"{where}: {e.problem}",
            hint="write the matrix out plainly; see rules/README.md (limits)",
        ) from e
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(p for p in (e.context, e.problem) if p)
        raise RulesError(
            f"{where}: YAML syntax error: {what}", hint="fix the YAML syntax at that line"
        ) from e
    except yaml.YAMLError as e:
        raise RulesError(f"{path}: YAML error: {e}") from e
