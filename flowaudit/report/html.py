"""The HTML report: one self-contained page (inline CSS and SVG; no scripts, fonts or links).

Sections: summary, changes since the baseline, the matrix coverage picture, traffic
outside the matrix, unused and partly-used rules, and the inputs an auditor needs to
re-run the audit (captures with their BLAKE3 digest, matrix digest, window).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from flowaudit.report.rows import (
    CHANGE_HEADERS,
    CONTROL_PLANE_HEADERS,
    CONTROL_PLANE_NOTE,
    OVERLAY_HEADERS,
    OVERLAY_NOTE,
    RULE_NOTES,
    SHAPE_HEADERS,
    SHAPE_NOTE,
    change_rows,
    changes_line,
    control_plane_rows,
    encrypted_line,
    group_table,
    input_lines,
    new_group_table,
    overlay_rows,
    pairs_line,
    rule_sections,
    shape_rows,
    summary_line,
    violation_table,
)
from flowaudit.report.svg import coverage_svg

if TYPE_CHECKING:
    from collections.abc import Sequence

    from flowaudit.audit.result import AuditResult

# every selector is scoped to .fa-report, so the notebook rendering (_repr_html_, a
# fragment) does not restyle the notebook around it
CSS = """
.fa-report{font-family:system-ui,"DejaVu Sans",sans-serif;color:#1d2330;max-width:1800px}
.fa-report h1{font-size:1.5em;margin-bottom:.2em}
.fa-report h2{font-size:1.2em;margin-top:1.6em;border-bottom:2px solid #d8dde6;padding-bottom:.2em}
.fa-report .summary{font-size:1.05em;margin:.4em 0 .8em}
.fa-report .cards{display:flex;gap:.8em;flex-wrap:wrap;margin:.6em 0}
.fa-report .card{border:1px solid #d0d7e2;border-radius:6px;padding:.5em .9em;min-width:8em;
background:#fafbfd}
.fa-report .card b{display:block;font-size:1.6em}.fa-report .card.bad b{color:#c62828}
.fa-report .card.warn b{color:#b07b00}.fa-report .card.ok b{color:#2e8b45}
.fa-report table{border-collapse:collapse;margin:.5em 0 1em;font-size:12px;width:100%}
.fa-report th,.fa-report td{border:1px solid #cfd5de;padding:3px 6px;text-align:left;
vertical-align:top}
.fa-report td.num,.fa-report td.key{white-space:nowrap}
.fa-report td.prose{overflow-wrap:anywhere;min-width:8em}
.fa-report .wide{overflow-x:auto}
.fa-report th{background:#e9edf5}
.fa-report tr.new td{background:#fff1f0}
.fa-report tr.new td:first-child{font-weight:bold;color:#c62828}
.fa-report td.num{text-align:right;font-variant-numeric:tabular-nums}
.fa-report code{font-size:12px}.fa-report .note{color:#555;font-size:.92em}
.fa-report details{margin:.25em 0;border:1px solid #e1e5ec;border-radius:4px;padding:.2em .5em}
.fa-report details.new{border-color:#c62828}
.fa-report summary{cursor:pointer}.fa-report summary b{margin-right:.4em}
.fa-report .coverage{overflow-x:auto;border:1px solid #e1e5ec;padding:.5em;background:#fff}
"""

NUMERIC = {
    "vlan", "port", "flows", "packets", "bytes", "findings", "approved flows", "approved bytes",
    "not approved flows", "not approved bytes", "control plane flows",
}  # fmt: skip
KEYS = {"id", "change", "proto", "status", "kind"}  # never broken
ADDRESSES = {"initiator", "responder"}  # may break after a '.' or ':'
TIMES = {"seen", "last seen"}  # date over time
PROSE = {"what differs", "what it is", "evidence", "unused pairs", "what"}


def _cell(header: str, text: str) -> str:
    t = escape(text)
    if header in NUMERIC:
        return f'<td class="num">{t}</td>'
    if header in KEYS:
        return f'<td class="key">{t}</td>'
    if header in ADDRESSES:
        return "<td>" + t.replace(".", ".<wbr>").replace(":", ":<wbr>") + "</td>"
    if header in TIMES:
        return '<td class="key">' + t.replace(" ", "<br>", 1) + "</td>"
    if header in PROSE:
        return f'<td class="prose">{t}</td>'
    return f"<td>{t}</td>"


def _merge_seen(
    headers: Sequence[str], rows: Sequence[Sequence[str]]
) -> tuple[list[str], list[list[str]]]:
    """``first seen`` + ``last seen`` → one ``seen`` cell (the date once when it is the same)."""
    hs = list(headers)
    if "first seen" not in hs or "last seen" not in hs:
        return hs, [list(r) for r in rows]
    a, b = hs.index("first seen"), hs.index("last seen")
    out = []
    for r in rows:
        first, last = r[a], r[b]
        same_day = first[:10] == last[:10]
        seen = f"{first} – {last[11:]}" if same_day else f"{first} – {last}"
        out.append([c for i, c in enumerate(r) if i != b])
        out[-1][a] = seen
    hs[a] = "seen"
    del hs[b]
    return hs, out


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], new_col: bool = False) -> str:
    if not rows:
        return "<p>None.</p>"
    headers, rows = _merge_seen(headers, rows)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cls = ' class="new"' if new_col and r[0] == "new" else ""
        cells = "".join(_cell(h, c) for h, c in zip(headers, r, strict=True))
        body.append(f"<tr{cls}>{cells}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="wide">{table}</div>'


def _groups(result: AuditResult) -> str:
    """Each finding group a ``<details>``: its line as the summary, its findings inside."""
    gh, grows = group_table(result)
    if not grows:
        return "<p>None.</p>"
    vh, vrows = violation_table(result)
    gcol, vcol = gh.index("group"), vh.index("group")
    keep = [i for i, h in enumerate(vh) if h != "group"]
    out = []
    for g in grows:
        d = dict(zip(gh, g, strict=True))
        mine = [[r[i] for i in keep] for r in vrows if r[vcol] == g[gcol]]
        new = d.get("change") == "new"
        seen = f"{d['first seen']} – {d['last seen']}"
        line = (
            f"<b>{escape(d['group'])}</b>{'<b>new</b>' if new else ''}"
            f"{escape(d['reason'])} · <b>{escape(d['who'])}</b> · {escape(d['proto/port'])}"
            f" · {escape(d['findings'])} findings · {escape(d['flows'])} flows · "
            f"{escape(d['packets'])} packets · {escape(d['bytes'])} bytes · {escape(seen)}"
            f' · <span class="note">top: {escape(d["top addresses (by bytes)"])}</span>'
        )
        cls = ' class="new"' if new else ""
        table = _table([vh[i] for i in keep], mine, new_col=result.changes is not None)
        out.append(f"<details{cls}><summary>{line}</summary>{table}</details>")
    return "\n".join(out)


def _cards(result: AuditResult) -> str:
    stats = result.stats
    cards = [
        ("flows audited", f"{result.flows:,}", ""),
        (
            "violations",
            str(result.violations.num_rows),
            "bad" if result.violations.num_rows else "ok",
        ),
        ("unused rules", str(stats.get("unused", 0)), "warn" if stats.get("unused") else "ok"),
        ("over-broad rules", str(stats.get("overbroad", 0)), ""),
        ("rules with pairs never seen", str(stats.get("unseen_pair_rules", 0)), ""),
        ("finding groups", str(stats.get("finding_groups", 0)), ""),
    ]
    if result.changes is not None:
        n = len(result.changes.new)
        cards.append(("new since baseline", str(n), "bad" if n else "ok"))
        cards.append(("resolved", str(len(result.changes.resolved)), ""))
    return (
        '<div class="cards">'
        + "".join(f'<div class="card {c}"><b>{escape(v)}</b>{escape(k)}</div>' for k, v, c in cards)
        + "</div>"
    )


def render_html(result: AuditResult) -> str:
    """The whole page."""
    name = escape(result.matrix_name)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>flowaudit report: {name}</title>\n"
        "<style>body{margin:1.5em 2em}</style></head><body>\n"
        f"{render_html_fragment(result)}</body></html>\n"
    )


def render_html_fragment(result: AuditResult) -> str:
    """The report as one ``<div>`` with its scoped style (for notebooks)."""
    name = escape(result.matrix_name)
    rules = rule_sections(result)
    new_col = result.changes is not None
    parts = [
        f'<div class="fa-report"><style>{CSS}</style>',
        f"<h1>flowaudit report: {name}</h1>",
        f'<p class="summary">{escape(summary_line(result))}</p>',
        _cards(result),
    ]
    line = changes_line(result)
    if line is not None:
        parts += [
            "<h2>Changes since the baseline</h2>",
            f"<p>{escape(line)}. New findings are listed first and marked "
            "<b>new</b> in the tables below.</p>",
            f"<h3>New finding groups ({len(new_group_table(result)[1])})</h3>",
            _table(*new_group_table(result)),
            "<h3>New and resolved findings</h3>",
            _table(CHANGE_HEADERS, change_rows(result), new_col=True),
        ]
    parts += [
        "<h2>Matrix coverage</h2>",
        '<p class="note">Source groups down, destination services (group, protocol, ports) '
        "across. Hover a cell for its rules, findings and flows.</p>",
        f'<div class="coverage">{coverage_svg(result)}</div>',
        "<h2>Traffic shape</h2>",
        f'<p class="note">{escape(SHAPE_NOTE)}</p>',
        _table(SHAPE_HEADERS, shape_rows(result)),
        f"<h2>Traffic outside the approved matrix ({result.violations.num_rows})</h2>",
        f'<p class="note">{result.violations.num_rows} findings in '
        f"{result.stats.get('finding_groups', 0)} groups of the same reason, sides "
        "(smallest matrix group, else address class), protocol and port. Open a group for "
        "its findings.</p>",
        _groups(result),
        f"<h2>Unused rules ({len(rules['unused'][1])})</h2>",
        f'<p class="note">{escape(RULE_NOTES["unused"])}</p>',
        _table(*rules["unused"], new_col=new_col),
        f"<h2>Over-broad rules ({len(rules['overbroad'][1])})</h2>",
        f'<p class="note">{escape(RULE_NOTES["overbroad"])}</p>',
        _table(*rules["overbroad"], new_col=new_col),
        f"<h2>Host pairs never seen ({len(rules['pairs'][1])} rules)</h2>",
        f'<p class="note">{escape(RULE_NOTES["pairs"])}</p>',
        f"<details><summary>{escape(pairs_line(result))}</summary>"
        f"{_table(*rules['pairs'], new_col=new_col)}</details>",
        f"<h2>LAN control plane ({result.stats.get('control_plane', 0)})</h2>",
        f'<p class="note">{escape(CONTROL_PLANE_NOTE)}</p>',
        _table(CONTROL_PLANE_HEADERS, control_plane_rows(result)),
        *_overlay(result),
        "<h2>Inputs</h2>",
        "<ul>" + "".join(f"<li><code>{escape(x)}</code></li>" for x in input_lines(result)),
        "</ul>",
        '<p class="note">Re-run: <code>flowaudit audit CAPTURE... --rules MATRIX '
        "--format html</code> with the captures (check them with <code>b3sum</code>) and "
        "matrix above, "
        "adding <code>--since/--until</code> for the window.</p>",
        "</div>",
    ]
    return "\n".join(parts) + "\n"


def _overlay(result: AuditResult) -> list[str]:
    """The overlay section and the encryption limit, when the capture has them."""
    out = []
    rows = overlay_rows(result)
    if rows:
        out += [
            f"<h2>Overlay: what the tunnels carried ({len(rows)})</h2>",
            f'<p class="note">{escape(OVERLAY_NOTE)}</p>',
            _table(OVERLAY_HEADERS, rows),
        ]
    enc = encrypted_line(result)
    if enc is not None:
        out.append(f'<p class="limit"><strong>{escape(enc)}</strong></p>')
    return out
