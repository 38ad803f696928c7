"""Hostile names in every report format (issue 12): nothing from outside becomes markup.

The result is built the honest way: the mixed sample copied under a hostile file name,
audited against the shipped matrix with a hostile name and condition, compared with a
baseline whose file name and one (resolved) finding are hostile. Then each renderer's
output is checked: Markdown (code spans that cannot be closed, no raw HTML, escaped
pipes), CSV (no cell a spreadsheet would evaluate), HTML (no element or attribute from
the data), JSON (the strings survive exactly, as data), text (no rich markup, no terminal
escape sequences).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from html.parser import HTMLParser
from typing import Any

import pytest
from testpaths import ADMIN, MIXED, REPO

from flowaudit import api
from flowaudit._util.text import visible
from flowaudit.report import render
from flowaudit.report.csv_ import csv_cell
from flowaudit.report.markdown import md_code, md_text

CAPTURE = "x`<img src=x onerror=alert(1)>`|=cmd.pcap"
NAME = "m`<script>alert(1)</script>`|[a](javascript:alert(1))"
CONDITION = '=HYPERLINK("http://evil","x")|<b onmouseover=alert(1)>if used</b>'
BASELINE = "b``<svg onload=alert(1)>|@SUM(1+1).json"
RESOLVED_SRC = "-2+3+cmd|' /C calc'!A0<img src=y onerror=alert(2)>"
# rich markup (a lone closing tag used to be a MarkupError), a hyperlink, terminal escapes
TERMINAL = "[/oops] [link=https://evil]x[/link] :skull: \x1b[2J\x1b]8;;https://evil\x1b\\y"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("hostile")
    capture = tmp / CAPTURE
    shutil.copyfile(MIXED, capture)
    text = (REPO / "rules" / "tmna-vlan111.yaml").read_text()
    text = text.replace("name: tmna-vlan111", f"name: {json.dumps(NAME)}", 1)
    text = text.replace(
        "condition: if WireGuard encryption is enabled", f"condition: {json.dumps(CONDITION)}"
    )
    rules = tmp / "matrix.yaml"
    rules.write_text(text)
    previous = api.audit([MIXED], groups=ADMIN).to_dict()
    fake = dict(previous["violations"][0], finding_id="f" * 16, src_ip=RESOLVED_SRC)
    previous["violations"].append(fake)
    fake = dict(previous["violations"][0], finding_id="e" * 16, src_ip=TERMINAL)
    previous["violations"].append(fake)
    base = tmp / BASELINE
    base.write_text(json.dumps(previous))
    r = api.audit([capture], rules=rules, groups=ADMIN, baseline=base)
    assert r.matrix_name == NAME
    assert r.changes is not None and r.changes.baseline_file == BASELINE
    assert "f" * 16 in r.changes.resolved
    return r


HOSTILE = (CAPTURE, NAME, CONDITION, BASELINE, RESOLVED_SRC)


def test_markdown_has_no_raw_html_and_code_spans_hold(result: Any) -> None:
    md = render(result, "markdown")
    # no tag or attribute from the data survives as HTML (code spans aside, below)
    outside_code = re.sub(r"(`+) .*? \1|(`+)[^`].*?\2", "", md)
    assert not re.search(r"<\s*(img|script|svg|b)\b", outside_code, re.I), outside_code
    assert md.splitlines()[0] == f"# flowaudit report: {md_text(NAME)}"
    assert "&lt;script&gt;" in md.splitlines()[0] and "[a\\](javascript" in md.splitlines()[0]
    # the capture is in a code span fenced by more backticks than it holds
    line = next(x for x in md.splitlines() if x.startswith("- ") and "Capture:" in x)
    assert line.startswith("- ``Capture: x`<img") and line.endswith("``")
    assert line[2:] == md_code(line[4:-2])
    # table cells: pipes escaped, so every row has the header's number of columns
    for block in re.split(r"\n\n", md):
        rows = [x for x in block.splitlines() if x.startswith("|")]
        widths = {len(re.split(r"(?<!\\)\|", x)) for x in rows}
        assert len(widths) <= 1, block
    assert md_text(CONDITION).replace("|", "\\|") in md
    assert md_text(RESOLVED_SRC).replace("|", "\\|") in md
    assert f"Since {md_text(BASELINE)} (sha256" in md


def test_md_code_and_text() -> None:
    assert md_code("a") == "`a`"
    assert md_code("a`b") == "``a`b``"
    assert md_code("``x") == "``` ``x ```"
    assert md_code("a\nb") == "`a b`"
    assert md_text("<a href='x'>*y*</a> & [z](u) `c` \\") == (
        "&lt;a href='x'&gt;\\*y\\*&lt;/a&gt; &amp; [z\\](u) \\`c\\` \\\\"
    )
    assert md_text("![i][r] scope [111]") == "![i\\][r] scope [111]"
    assert md_text("a\n# b") == "a # b"


def test_csv_cells_cannot_start_a_formula(result: Any) -> None:
    rows = list(csv.reader(io.StringIO(render(result, "csv"))))
    cells = [c for r in rows for c in r]
    for c in cells:
        assert not c.startswith(("=", "+", "@", "\t", "\r")), c
        assert not c.startswith("-") or c == "-" or re.fullmatch(r"-[0-9,.]+", c), c
    assert "'" + CONDITION in cells
    assert any(RESOLVED_SRC in c for c in cells)  # inside a cell: left as it is


def test_csv_cell() -> None:
    for bad in ("=1+1", "+1", "-1+1", "@SUM(A1)", "\tx", "\rx", "-", "-3", "1,234"):
        out = csv_cell(bad)
        assert out == (bad if bad in ("-", "-3", "1,234") else "'" + bad)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_escapes_every_hostile_string(result: Any) -> None:
    page = render(result, "html")
    parser = _Tags()
    parser.feed(page)
    assert not parser.tags & {"img", "script", "a"}
    assert not {a for a in parser.attrs if a.startswith("on")}
    assert "svg" in parser.tags  # the coverage picture, ours
    text = "".join(parser.text)
    for s in HOSTILE:  # the strings are there, as text
        assert s in text or s.replace("\n", " ") in text, s


def test_json_keeps_the_strings_as_data(result: Any) -> None:
    doc = json.loads(render(result, "json"))
    assert doc["matrix"]["name"] == NAME
    assert CAPTURE in [c["name"] for c in doc["captures"]]


def test_text_report_shows_markup_and_escapes_as_text(result: Any) -> None:
    shown = visible(TERMINAL)
    assert shown.startswith("[/oops] [link=https://evil]x[/link] :skull: \\x1b[2J")
    plain = render(result, "text", width=400)
    assert "\x1b" not in plain
    assert shown in plain and NAME in plain and "💀" not in plain
    colored = render(result, "text", color=True, width=400)
    assert shown in re.sub("\x1b\\[[0-9;]*m", "", colored)  # only SGR styles are ours
    assert "\x1b[2J" not in colored and "\x1b]8" not in colored


def test_markdown_shows_control_characters(result: Any) -> None:
    md = render(result, "markdown")
    assert "\x1b" not in md
    assert md_text(TERMINAL) in md
    assert md_text("a\x1bb") == "a\\\\x1bb" and md_code("a\x07") == "`a\\x07`"
