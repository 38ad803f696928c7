"""The LAN control-plane list: which link-scoped protocols are listed apart, not as violations.

The list is data (``control_plane.yaml`` beside this module, or a file passed with
``--control-plane``): ``load_control_plane`` validates it and ``ControlPlane.rows`` compiles
it to the ``control_plane`` relation the audit SQL reads (one row per kind and port or ICMP
type range). Bad files raise UsageError naming ``file:line``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from flowaudit.errors import RulesError, UsageError
from flowaudit.matrix.hosts import ADDRESS_CLASSES
from flowaudit.matrix.model import PORTED, parse_port_range, parse_protocol

ICMP = frozenset({1, 58})


@dataclass(frozen=True)
class Entry:
    kind: str
    protocol: int
    ranges: tuple[tuple[int, int], ...]  # ports (tcp/udp) or ICMP types; () = every packet
    description: str


@dataclass(frozen=True)
class ControlPlane:
    """The compiled list: entries and the destination address classes they apply to."""

    source: str
    to: tuple[str, ...]
    entries: tuple[Entry, ...]

    def rows(self) -> list[tuple[Any, ...]]:
        """(kind, protocol, lo, hi, icmp, dst_class) rows for the ``control_plane`` relation."""
        out: list[tuple[Any, ...]] = []
        for e in self.entries:
            for cls in self.to:
                for lo, hi in e.ranges or ((None, None),):
                    out.append((e.kind, e.protocol, lo, hi, e.protocol in ICMP, cls))
        return out


def default_path() -> Path:
    return Path(str(files("flowaudit.audit") / "control_plane.yaml"))


def load_control_plane(path: str | os.PathLike[str] | None = None) -> ControlPlane:
    """The shipped list, or the file at ``path``."""
    return _shipped() if path is None else _load(Path(path))


@functools.cache
def _shipped() -> ControlPlane:
    """The shipped list, read once per process (it is part of the package; immutable)."""
    return _load(default_path())


def _load(p: Path) -> ControlPlane:
    from flowaudit.matrix.yamlio import read_yaml

    try:
        doc = read_yaml(p)
    except RulesError as e:  # unreadable file or YAML syntax: file:line in the message
        raise UsageError(f"control-plane list: {e.message}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("protocols"), list):
        raise UsageError(f"{p}: a control-plane list needs a `protocols` list")
    to = doc.get("to", ["multicast", "broadcast", "link-local"])
    if not isinstance(to, list) or not all(t in ADDRESS_CLASSES for t in to):
        raise UsageError(f"{p}: `to` must list address classes ({', '.join(ADDRESS_CLASSES)})")
    entries = []
    for i, item in enumerate(doc["protocols"]):
        where = f"{p}:{doc['protocols'].line_of(i)}" if hasattr(doc["protocols"], "line_of") else p
        entries.append(_entry(item, str(where)))
    return ControlPlane(str(p), tuple(to), tuple(entries))


def _entry(item: Any, where: str) -> Entry:
    if not isinstance(item, dict) or not isinstance(item.get("kind"), str):
        raise UsageError(f"{where}: each entry needs a `kind` (text) and a `protocol`")
    try:
        proto = parse_protocol(item.get("protocol"))
        ports = item.get("ports")
        types = item.get("icmp_types")
        if ports is not None and types is not None:
            raise ValueError("give `ports` or `icmp_types`, not both")
        if ports is not None and proto not in PORTED:
            raise ValueError("`ports` need tcp, udp or sctp")
        if types is not None and proto not in ICMP:
            raise ValueError("`icmp_types` need icmp or icmpv6")
        values = ports if ports is not None else types
        if values is not None and not isinstance(values, list):
            raise ValueError("`ports` / `icmp_types` must be a list")
        ranges = tuple(parse_port_range(v) for v in values or ())
        if types is not None and any(hi > 255 for _, hi in ranges):
            raise ValueError("ICMP types are 0-255")
    except ValueError as e:
        raise UsageError(f"{where}: {item['kind']}: {e}") from None
    return Entry(item["kind"], proto, ranges, str(item.get("description") or ""))


__all__ = ["ControlPlane", "Entry", "default_path", "load_control_plane"]
