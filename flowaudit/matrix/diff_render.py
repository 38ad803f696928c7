"""``rules diff`` output: a matrix change as text, JSON, or Markdown for a change request.

Pure functions of a ``RulesDiff`` (``flowaudit.matrix.diff``; its ``to_text``,
``to_markdown`` and ``_repr_markdown_`` call them, so a notebook shows what the CLI
writes). Sections, each shown only
when it has rows: access allowed / revoked, groups whose addresses changed, rules
added, removed, changed or with a new provenance, and (with a store) the observed
findings whose verdict changes.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from flowaudit.matrix.model import ports_text, protocol_name


class RulesDiff(Protocol):
    """What the renderers read of a ``matrix.diff.RulesDiff`` (a protocol, so this module
    does not import the one that calls it)."""

    @property
    def old(self) -> dict[str, str]: ...

    @property
    def new(self) -> dict[str, str]: ...

    @property
    def verdicts(self) -> tuple[dict[str, Any], ...] | None: ...

    @property
    def empty(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


FORMATS = ("text", "json", "markdown")


def _side(row: dict[str, Any], key: str) -> str:
    addrs = ", ".join(row[key])
    groups = ", ".join(row[f"{key}_groups"])
    return f"{addrs} ({groups})" if groups else addrs


def _access_cells(row: dict[str, Any]) -> list[str]:
    return [
        row["change"],
        _side(row, "source"),
        _side(row, "destination"),
        protocol_name(row["protocol"]),
        ports_text(row["ports"]),
        ", ".join(row["rules"]),
    ]


def _group_cells(row: dict[str, Any]) -> list[str]:
    return [row["group"], row["change"], ", ".join(row["old"]) or "-", ", ".join(row["new"]) or "-"]


def _rule_cells(row: dict[str, Any]) -> list[str]:
    what = ", ".join(row["fields"]) if row["change"] == "changed" else ""
    if row["change"] == "provenance":
        what = f"{row['old_provenance']} → {row['provenance']}"
    elif row["change"] in ("added", "removed"):
        what = row["provenance"]
    return [row["rule_id"], row["change"], what]


def _verdict_cells(row: dict[str, Any]) -> list[str]:
    port = "" if row["dst_port"] is None else str(row["dst_port"])
    return [
        row["verdict"],
        row["finding_id"],
        row["src_ip"],
        row["dst_ip"],
        protocol_name(row["protocol"]),
        port,
        str(row["flows"]),
        row["reason"],
    ]


SECTIONS = (
    (
        "access",
        "What the change allows and revokes",
        ["change", "source", "destination", "protocol", "ports", "rules"],
        _access_cells,
    ),
    ("groups", "Groups whose addresses change", ["group", "change", "old", "new"], _group_cells),
    ("rules", "Rules added, removed or changed", ["rule", "change", "what"], _rule_cells),
    (
        "verdicts",
        "Observed findings whose verdict changes",
        ["verdict", "finding", "src", "dst", "protocol", "port", "flows", "reason (old audit)"],
        _verdict_cells,
    ),
)


def _head(d: RulesDiff) -> str:
    old, new = d.old, d.new
    return (
        f"{old['name']} ({old['sha256'][:12]}, {old['file']}) → "
        f"{new['name']} ({new['sha256'][:12]}, {new['file']})"
    )


def render_text(d: RulesDiff) -> str:
    lines = [f"matrix diff: {_head(d)}"]
    if d.empty:
        lines.append("no change: both matrices allow the same traffic")
    for key, title, headers, cells in SECTIONS:
        rows = getattr(d, key) or ()
        if not rows:
            continue
        lines += ["", f"{title} ({len(rows)}):"]
        table = [headers, *(cells(r) for r in rows)]
        widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
        for row in table:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    if d.verdicts is not None and not d.verdicts:
        lines += ["", "no observed finding changes verdict"]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(d: RulesDiff) -> str:
    lines = [f"## Matrix change: {_md(_head(d))}", ""]
    if d.empty:
        lines += ["No change: both matrices allow the same traffic.", ""]
    for key, title, headers, cells in SECTIONS:
        rows = getattr(d, key) or ()
        if not rows:
            continue
        lines += [f"### {title} ({len(rows)})", ""]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "---|" * len(headers))
        lines += ["| " + " | ".join(_md(c) for c in cells(r)) + " |" for r in rows]
        lines.append("")
    if d.verdicts is not None and not d.verdicts:
        lines += ["No observed finding changes verdict.", ""]
    return "\n".join(lines)


def render_json(d: RulesDiff) -> str:
    return json.dumps(d.to_dict(), indent=2, ensure_ascii=False) + "\n"


def render_diff(d: RulesDiff, fmt: str) -> str:
    """The diff in ``fmt`` (text, json or markdown)."""
    if fmt == "json":
        return render_json(d)
    if fmt == "markdown":
        return render_markdown(d)
    return render_text(d)
