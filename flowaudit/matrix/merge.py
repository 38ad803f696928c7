"""``rules merge``: a proposal's groups and rules written into the base matrix file.

The base file is edited as text, never re-dumped: its comments, key order and layout
stay as reviewed. PyYAML's node marks say where the ``groups`` mapping and the
``rules`` list end; the proposal's new groups and rules are inserted there, indented
like the base's (an empty flow collection, ``groups: {}`` or ``rules: []``, is replaced
by a block). Groups the base already has with the same addresses are reused; a group
name with other addresses, a rule id the base already uses, or a proposal for another
matrix is a RulesError. The merged text must load (``rules check``) before it is
written, atomically.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flowaudit._util.files import write_text_atomic
from flowaudit.errors import RulesError
from flowaudit.matrix import validate as v
from flowaudit.matrix.emit import block
from flowaudit.matrix.loader import load_matrix
from flowaudit.matrix.model import Matrix
from flowaudit.matrix.yamlio import LineDict, LineList, read_yaml


@dataclass(frozen=True)
class MergeResult:
    """The merged matrix, and what the proposal added to it."""

    matrix: Matrix
    added_groups: tuple[str, ...]
    reused_groups: tuple[str, ...]
    added_rules: tuple[str, ...]
    text: str


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(x) for k, x in value.items()}
    if isinstance(value, list):
        return [_plain(x) for x in value]
    return value


def _last_leaf(node: yaml.Node) -> yaml.Node:
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _last_leaf(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _last_leaf(node.value[-1])
    return node


def _content_end(text: str, node: yaml.Node) -> int:
    """Where ``node``'s text ends. A block scalar's end mark lies past the blank lines and
    comments that follow it; its content is the lines indented like its first line."""
    end = int(node.end_mark.index)
    if not (isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")):
        return end
    pos = last = _after_line(text, node.start_mark.index)
    indent: int | None = None
    while pos < end:
        nl = text.find("\n", pos)
        line_end = len(text) if nl < 0 else nl
        line = text[pos:line_end]
        if line.strip():
            ind = len(line) - len(line.lstrip(" "))
            indent = ind if indent is None else indent
            if ind < indent:
                break
            last = line_end
        pos = line_end + 1
    return last


def _after_line(text: str, index: int) -> int:
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl + 1


def _top(text: str, path: Path) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        raise RulesError(f"{path}:1: a matrix file must be a YAML mapping")
    return {k.value: (k, val) for k, val in root.value if isinstance(k, yaml.ScalarNode)}


def _insertion(
    text: str, key: yaml.Node, node: yaml.Node, lines: list[str], seq: bool
) -> tuple[int, int, str]:
    """(start, end, replacement) adding ``lines`` (block YAML at indent 0) to ``node``."""
    if not lines:
        return (0, 0, "")
    flow = bool(getattr(node, "flow_style", False))
    empty_flow = flow or not node.value or isinstance(node, yaml.ScalarNode)
    if empty_flow:
        if node.value and not isinstance(node, yaml.ScalarNode):
            raise RulesError(
                f"line {node.start_mark.line + 1}: '{key.value}' is written in flow style; "
                "merge needs block style (one item per line)"
            )
        indent = key.start_mark.column + 2
        body = "\n".join(" " * indent + ln for ln in lines)
        start = node.start_mark.index
        end = node.end_mark.index
        if isinstance(node, yaml.ScalarNode) and node.value == "":
            start = end = key.end_mark.index + 1  # "groups:" with nothing after the colon
        return (start, end, "\n" + body)
    # a list's items start at its first dash; a mapping's keys at its first key
    indent = node.start_mark.column if seq else node.value[0][0].start_mark.column
    at = _after_line(text, _content_end(text, _last_leaf(node)))
    prefix = "" if text[at - 1 : at] == "\n" or at == 0 else "\n"
    return (at, at, prefix + "\n".join(" " * indent + ln for ln in lines) + "\n")


def merge_text(base_path: Path, proposal_path: Path) -> tuple[str, MergeResult]:
    """The merged matrix text and what changed; nothing is written."""
    base = load_matrix(base_path)
    if not base.files or Path(base.files[0]).resolve() != base_path.resolve():
        raise RulesError(
            f"{base_path}: BASE must be a matrix file, not an overlay or a directory",
            hint=f"merge into the matrix file itself ({base.files[0] if base.files else '?'})",
        )
    doc = read_yaml(proposal_path)
    if not isinstance(doc, LineDict) or "proposal" not in doc:
        raise RulesError(
            f"{proposal_path}:1: not a proposal (a YAML mapping with 'proposal: MATRIX')",
            hint="write one with `flowaudit rules propose -o FILE`",
        )
    if doc.get("proposal") != base.name:
        raise RulesError(
            f"{proposal_path}:{doc.line_of('proposal')}: the proposal is for matrix "
            f"{doc.get('proposal')!r}, not {base.name!r} ({base_path})"
        )
    p = v.Problems()
    v.check_keys(
        doc, {"proposal", "description", "groups", "rules"}, proposal_path, p, "proposal", None
    )
    pgroups = v.groups(doc.get("groups", LineDict()), proposal_path, doc.line_of("groups"), p)
    known = {**base.groups, **pgroups}
    raw_rules = doc.get("rules", [])
    if not isinstance(raw_rules, list):
        p.add(proposal_path, doc.line_of("rules"), "'rules' must be a list")
        raw_rules = []
    for i, item in enumerate(raw_rules):
        line = raw_rules.line_of(i) if isinstance(raw_rules, LineList) else doc.line
        v.rule(item, proposal_path, line, known, p)
    add_groups: dict[str, Any] = {}
    reused: list[str] = []
    for name, g in pgroups.items():
        old = base.groups.get(name)
        if old is None:
            add_groups[name] = _plain(doc["groups"][name])
        elif set(old.addresses) == set(g.addresses) and old.configured:
            reused.append(name)
        else:
            p.add(
                proposal_path,
                doc["groups"].line_of(name),
                f"conflicting group names: {name!r} is a group of {base.name!r} with other "
                f"addresses ({', '.join(old.addresses) or 'none'}); rename it in the proposal",
            )
    base_ids = {r.id for r in base.rules}
    add_rules = []
    for i, item in enumerate(raw_rules):
        rid = item.get("id") if isinstance(item, dict) else None
        if rid in base_ids:
            p.add(
                proposal_path,
                raw_rules.line_of(i) if isinstance(raw_rules, LineList) else doc.line,
                f"rule id {rid!r} is already in {base.name!r}",
            )
        add_rules.append(_plain(item))
    p.raise_if_any()

    text = base_path.read_text(encoding="utf-8")
    top = _top(text, base_path)
    edits = []
    if add_groups:
        k, node = top["groups"]
        edits.append(_insertion(text, k, node, block(add_groups), seq=False))
    if add_rules:
        k, node = top["rules"]
        edits.append(_insertion(text, k, node, block(add_rules), seq=True))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    with tempfile.TemporaryDirectory(prefix="flowaudit-merge-") as tmp:
        probe = Path(tmp) / base_path.name
        probe.write_text(text, encoding="utf-8")
        merged = load_matrix(probe)
    result = MergeResult(
        matrix=merged,
        added_groups=tuple(add_groups),
        reused_groups=tuple(reused),
        added_rules=tuple(str(r.get("id")) for r in add_rules),
        text=text,
    )
    return text, result


def merge(base_path: Path, proposal_path: Path, output: Path) -> MergeResult:
    """Write the base matrix with the proposal merged to ``output`` (atomically)."""
    text, result = merge_text(base_path, proposal_path)
    write_text_atomic(output, text)
    return result
