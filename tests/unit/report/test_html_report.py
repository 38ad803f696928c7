"""The HTML report: self-contained, and rendered by headless Chromium (Debian `chromium`).

The page is checked three ways: statically (no external reference of any kind), through
Chromium's DOM (the coverage grid has one cell per coverage row, by status), and through a
screenshot (the grid's colours are on the rendered page, the page is not blank).
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from testpaths import ADMIN, MIXED

from flowaudit import api
from flowaudit.report import render

URL_ATTRS = {"src", "href", "xlink:href", "action", "data", "poster", "srcset", "formaction"}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: collections.Counter[str] = collections.Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        for name, value in attrs:
            if name in URL_ATTRS and value and not value.startswith("#"):
                self.refs.append(f"<{tag} {name}={value}>")
            if name == "style" and value and "url(" in value:
                self.refs.append(f"<{tag} style=url(...)>")


def truth_findings(pcap: Path) -> int:
    """Violations the sample was generated with: its truth flows' keys that are neither
    approved nor LAN control plane (listed apart)."""
    rows = [json.loads(x) for x in pcap.with_suffix(".truth.jsonl").read_text().splitlines()]
    keys = {(r["vlan"], r["src_ip"], r["dst_ip"], r["protocol"], r["dst_port"])
            for r in rows if r["label"] not in ("approved", "control-plane")}  # fmt: skip
    return len(keys)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    tmp = tmp_path_factory.mktemp("html")
    previous = api.audit([MIXED], groups=ADMIN).to_dict()
    previous["violations"] = previous["violations"][1:]  # so one finding shows as new
    result = api.audit([MIXED], groups=ADMIN, baseline=previous)
    path = tmp / "report.html"
    path.write_text(render(result, "html"), encoding="utf-8")
    return path, result


def test_report_has_no_external_references(report: tuple[Path, Any]) -> None:
    path, result = report
    text = path.read_text()
    parser = _Refs()
    parser.feed(text)
    assert parser.refs == []
    assert not parser.tags["script"] and not parser.tags["link"] and not parser.tags["img"]
    assert "@import" not in text and "url(" not in text
    # the only URL is the SVG namespace (an identifier, never fetched)
    assert re.findall(r"https?://[^\s\"'<>]+", text) == ["http://www.w3.org/2000/svg"]
    # the sections an auditor needs are all there; the findings count is the ground truth's
    # (the generator's non-approved flows, one finding per conversation key), the rules
    # count the result's own table (its rows are checked against the truth in e2e)
    for heading in (
        "Changes since the baseline",
        "Matrix coverage",
        f"Traffic outside the approved matrix ({truth_findings(MIXED)})",
        "Unused rules (3)",
        "Over-broad rules (4)",
        "Host pairs never seen (27 rules)",
        "LAN control plane (4)",
        "Inputs",
    ):
        assert f">{heading}" in text, heading
    for cap in result.captures:
        assert cap["blake3"] in text
    assert result.rules_digest in text


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium")
    assert exe is not None
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.slow
@pytest.mark.chromium
def test_chromium_dom_has_one_grid_cell_per_coverage_row(
    report: tuple[Path, Any], tmp_path: Path
) -> None:
    path, result = report
    dom = _chromium("--dump-dom", path.as_uri(), tmp=tmp_path).stdout
    cells = re.findall(r'<g class="cell ([a-z-]+)">', dom)
    want = collections.Counter(result.coverage.column("status").to_pylist())
    assert collections.Counter(cells) == want
    assert want["unapproved"] == 12 and sum(want.values()) == 54
    assert '<tr class="new">' in dom  # the new finding is marked in the table


@pytest.mark.slow
@pytest.mark.chromium
def test_chromium_screenshot_shows_the_coverage_grid(
    report: tuple[Path, Any], tmp_path: Path
) -> None:
    from PIL import Image

    path, result = report
    png = tmp_path / "report.png"
    _chromium("--window-size=1400,1600", f"--screenshot={png}", path.as_uri(), tmp=tmp_path)
    img = Image.open(png).convert("RGB")
    assert img.size == (1400, 1600)
    px = np.asarray(img).reshape(-1, 3).astype(np.int64)
    packed = px[:, 0] << 16 | px[:, 1] << 8 | px[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    colours = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
    red, green, amber = 0xC62828, 0x2E8B45, 0xE0A100
    cell = 18 * 18
    n = collections.Counter(result.coverage.column("status").to_pylist())
    # red: each unapproved cell (minus its white cross) and its legend swatch
    assert 0.6 * cell * (n["unapproved"] + 1) < colours[red] < 1.05 * cell * (n["unapproved"] + 1)
    # green: used cells fully, partly-used cells by half, plus the frames of approved cells
    assert colours[green] > 0.9 * cell * (n["used"] + 1)
    assert colours.get(amber, 0) > 0  # unused cells are outlined in amber
    # the page is not blank: text is drawn
    assert int(np.count_nonzero(px.sum(axis=1) < 200)) > 5_000
    keep = os.environ.get("FLOWAUDIT_KEEP_SCREENSHOT")  # to look at it yourself
    if keep:
        shutil.copy(png, keep)


def test_notebook_rendering_is_a_scoped_fragment(report: tuple[Path, Any]) -> None:
    _, result = report
    frag = result._repr_html_()
    assert frag.startswith('<div class="fa-report"><style>') and frag.endswith("</div>\n")
    assert "<html" not in frag and "<body" not in frag
    css = frag[frag.index("<style>") + 7 : frag.index("</style>")]
    selectors = [
        s.strip() for rule in css.split("}") if "{" in rule for s in rule.split("{")[0].split(",")
    ]
    assert selectors and all(s.startswith(".fa-report") for s in selectors)
    assert "<svg" in frag
    assert f"Traffic outside the approved matrix ({truth_findings(MIXED)})" in frag
