"""Loading a matrix: find the files, validate them, apply overlays and --group values.

``load_matrix(path, groups)`` is the one entry point. ``path`` is a matrix file, an
overlay file (applied to the shipped matrix it names), a directory (its one matrix file
plus every overlay in it; ``*.example.yaml`` files are skipped), or None for the shipped
matrix (``shipped_rules_dir()``). Overlays and ``groups`` may only give addresses to
groups the reviewed file marks ``needs_configuration``; they never change a rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from flowaudit.errors import RulesError
from flowaudit.limits import MATRIX_MAX_RULE_ROWS, MATRIX_MAX_RULES
from flowaudit.matrix import validate as v
from flowaudit.matrix.model import (
    HostGroup,
    Matrix,
    PodPolicy,
    Rule,
    Scope,
)
from flowaudit.matrix.yamlio import LineDict, read_yaml

YAML_SUFFIXES = (".yaml", ".yml")


def shipped_rules_dir() -> Path:
    """The shipped matrices: ``flowaudit/_rules`` in a wheel, else ``<repo>/rules``."""
    packaged = Path(__file__).resolve().parent.parent / "_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "rules"


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name.endswith(YAML_SUFFIXES) and ".example." not in p.name
    )


def _read_doc(path: Path) -> LineDict:
    data = read_yaml(path)
    if not isinstance(data, LineDict):
        raise RulesError(f"{path}:1: a matrix or overlay file must be a YAML mapping")
    return data


def _split(folder: Path) -> tuple[tuple[Path, LineDict], list[tuple[Path, LineDict]]]:
    if not folder.is_dir():
        raise RulesError(f"{folder}: matrix directory not found")
    matrices: list[tuple[Path, LineDict]] = []
    overlays: list[tuple[Path, LineDict]] = []
    for f in _yaml_files(folder):
        doc = _read_doc(f)
        if "proposal" in doc:
            continue  # a proposal is merged with `rules merge`, never loaded beside its base
        (overlays if "overlay" in doc else matrices).append((f, doc))
    if len(matrices) != 1:
        names = ", ".join(str(p) for p, _ in matrices) or "none"
        raise RulesError(
            f"{folder}: expected exactly one matrix file (*.yaml without 'overlay:'), "
            f"found {names}",
            hint="pass the matrix file itself, or keep one matrix per directory",
        )
    return matrices[0], overlays


def _resolve(path: Path | None) -> tuple[tuple[Path, LineDict], list[tuple[Path, LineDict]]]:
    if path is None:
        return _split(shipped_rules_dir())
    if path.is_dir():
        return _split(path)
    if not path.exists():
        raise RulesError(f"{path}: no such file or directory")
    doc = _read_doc(path)
    if "proposal" in doc:
        raise RulesError(
            f"{path}:{doc.line_of('proposal')}: this is a proposal for matrix "
            f"{doc.get('proposal')!r}, not a matrix",
            hint=f"merge it first: flowaudit rules merge BASE {path} -o NEW",
        )
    if "overlay" not in doc:
        return (path, doc), []
    base, _ = _split(shipped_rules_dir())
    return base, [(path, doc)]


def _matrix_doc(
    path: Path, doc: LineDict, p: v.Problems
) -> tuple[str, str, Scope, dict[str, HostGroup], list[Rule], PodPolicy | None]:
    v.check_keys(doc, v.MATRIX_KEYS, path, p, "matrix", None)
    for key in v.MATRIX_REQUIRED:
        if key not in doc:
            p.add(path, doc.line, f"matrix is missing required key {key!r}")
    name = doc.get("name", "")
    if not isinstance(name, str) or not name.strip():
        p.add(path, doc.line_of("name"), "'name' must be a non-empty string")
        name = ""
    desc = doc.get("description", "")
    desc = desc if isinstance(desc, str) else str(desc)
    scope = v.scope(doc.get("scope"), path, doc.line_of("scope"), p)
    groups = v.groups(doc.get("groups", LineDict()), path, doc.line_of("groups"), p)
    rules: list[Rule] = []
    raw = doc.get("rules", [])
    if not isinstance(raw, list):
        p.add(path, doc.line_of("rules"), "'rules' must be a list")
        raw = []
    if len(raw) > MATRIX_MAX_RULES:
        p.add(
            path,
            doc.line_of("rules"),
            f"{len(raw):,} rules: more than {MATRIX_MAX_RULES:,} (see rules/README.md, limits)",
        )
        raw = []
    seen: dict[str, str] = {}
    for i, item in enumerate(raw):
        line = raw.item_lines[i] if hasattr(raw, "item_lines") else doc.line_of("rules")
        r = v.rule(item, path, line, groups, p)
        if r is None:
            continue
        if r.id in seen:
            p.add(path, line, f"duplicate rule id (first defined at {seen[r.id]})", r.id)
            continue
        seen[r.id] = r.source
        rules.append(r)
    pods = v.pods(doc.get("pods"), path, doc.line_of("pods"), p)
    return name.strip(), " ".join(desc.split()), scope, groups, rules, pods


def _apply(
    groups: dict[str, HostGroup], name: str, addrs: tuple[str, ...], where: str, p: v.Problems
) -> None:
    g = groups.get(name)
    if g is None:
        p.items.append(f"{where}: unknown group {name!r} (defined: {', '.join(sorted(groups))})")
    elif not g.needs_configuration:
        p.items.append(
            f"{where}: group {name!r} is fixed by the reviewed matrix; overlays and --group "
            "may only configure groups marked needs_configuration"
        )
    else:
        groups[name] = HostGroup(g.name, g.description, addrs, g.needs_configuration)


def canonical(
    name: str, desc: str, scope: Scope, groups: Mapping[str, HostGroup], rules: Sequence[Rule]
) -> dict[str, Any]:
    """The content a matrix digest covers (file layout and comments excluded)."""
    return {
        "name": name,
        "description": desc,
        "scope": {"vlans": list(scope.vlans), "subnets": list(scope.subnets)},
        "groups": {
            g.name: {
                "description": g.description,
                "addresses": list(g.addresses),
                "needs_configuration": g.needs_configuration,
            }
            for g in groups.values()
        },
        "rules": [
            {
                "id": r.id,
                "from": list(r.from_groups),
                "to": list(r.to_groups),
                "protocols": list(r.protocols),
                "ports": [list(x) for x in r.ports],
                "purpose": r.purpose,
                "bidirectional": r.bidirectional,
                "condition": r.condition,
                "provenance": (
                    r.provenance.to_dict()
                    if r.origin == "observed"
                    else {
                        "table": r.provenance.table,
                        "row": r.provenance.row,
                        "origin": r.provenance.origin,
                    }
                ),
            }
            for r in rules
        ],
    }


def _check_rule_rows(groups: Mapping[str, HostGroup], rules: Sequence[Rule]) -> None:
    """Refuse a matrix that compiles to more than MATRIX_MAX_RULE_ROWS rule rows (the
    product ``matrix.compile.rules_rows`` builds), naming its largest rule."""

    def ranges(names: tuple[str, ...]) -> int:
        return sum(max(len(groups[g].ranges), 1) for g in names)

    sizes = [
        len(r.protocols) * ranges(r.from_groups) * ranges(r.to_groups) * len(r.ports) for r in rules
    ]
    total = sum(sizes)
    if total <= MATRIX_MAX_RULE_ROWS:
        return
    big = max(range(len(rules)), key=sizes.__getitem__)
    raise RulesError(
        f"{rules[big].source}: rule {rules[big].id!r}: compiles to {sizes[big]:,} rule rows "
        f"(protocols × from-address ranges × to-address ranges × port ranges); the matrix "
        f"compiles to {total:,} in all, more than {MATRIX_MAX_RULE_ROWS:,}",
        hint="name fewer groups per rule, or give groups CIDRs or address ranges instead of "
        "lists of single addresses; see rules/README.md (limits)",
    )


def empty_matrix(name: str = "observed") -> Matrix:
    """A matrix with no scope, groups or rules: every flow is a finding (bootstrapping)."""
    scope = Scope((), ())
    content = canonical(name, "", scope, {}, [])
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(blob.encode("utf-8")).hexdigest()
    return Matrix(name, "", digest, scope, MappingProxyType({}), ())


def load_matrix(
    path: str | Path | None = None, groups: Mapping[str, Sequence[str]] | None = None
) -> Matrix:
    """Load, validate and resolve a matrix; raises RulesError naming file:line and rule id."""
    (mpath, mdoc), overlays = _resolve(Path(path) if path is not None else None)
    p = v.Problems()
    name, desc, scope, gmap, rules, pods = _matrix_doc(mpath, mdoc, p)
    p.raise_if_any()
    set_by: dict[str, str] = {}
    for opath, odoc in overlays:
        target = odoc.get("overlay")
        if target != name:
            p.add(opath, odoc.line_of("overlay"), f"overlay is for {target!r}, not {name!r}")
            continue
        for gname, (addrs, line) in v.overlay_groups(odoc, opath, p).items():
            where = f"{opath}:{line}"
            if gname in set_by:
                p.items.append(f"{where}: group {gname!r} already set at {set_by[gname]}")
                continue
            set_by[gname] = where
            _apply(gmap, gname, addrs, where, p)
    for gname, values in (groups or {}).items():
        where = f"--group {gname}"
        addrs = v.addresses(list(values), where, 0, p, gname)
        if not addrs:
            p.items.append(f"{where}: no addresses given")
            continue
        _apply(gmap, gname, addrs, where, p)
    p.raise_if_any()
    _check_rule_rows(gmap, rules)
    content = canonical(name, desc, scope, gmap, rules)
    if pods is not None:  # only then: the digests of matrices without one are unchanged
        content["pods"] = pods.to_dict()
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Matrix(
        name=name,
        description=desc,
        sha256=hashlib.sha256(blob.encode("utf-8")).hexdigest(),
        scope=scope,
        groups=MappingProxyType(dict(gmap)),
        rules=tuple(rules),
        files=(str(mpath), *(str(o) for o, _ in overlays)),
        pods=pods,
    )
