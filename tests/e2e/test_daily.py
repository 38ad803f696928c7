"""contrib/flowaudit-daily, the README's periodic-report recipe, run for four days.

Day 1: no baseline, every finding is new and mailed. Day 2: the same behaviour, nothing
mailed. Day 3: one violation added, a mail with exactly that finding. Day 4: a broken
capture, exit 2, nothing mailed and the baseline kept. `mail` is a stand-in script that
records what it was given.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pcaptools import read_pcap, records_at, tcp_frame, write_pcap
from testpaths import MIXED, REPO

SCRIPT = REPO / "contrib" / "flowaudit-daily"

FAKE_MAIL = """#!/bin/sh
n=$(ls "$MAILBOX" | wc -l)
{ echo "$@"; cat; } > "$MAILBOX/mail-$n"
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mail").write_text(FAKE_MAIL)
    (bin_dir / "mail").chmod(0o755)
    (tmp_path / "mailbox").mkdir()
    path = f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    return {
        **os.environ,
        "PATH": path,
        "MAILBOX": str(tmp_path / "mailbox"),
        "FLOWAUDIT_HOME": str(tmp_path / "home"),
        "FLOWAUDIT_ARGS": "--group admin_workstations=10.25.100.10,10.25.100.11",
        "MAILTO": "secops@example.org",
    }


def run_day(env: dict[str, str], tmp: Path, day: str, capture: Path | bytes) -> int:
    folder = tmp / "captures" / day
    folder.mkdir(parents=True)
    if isinstance(capture, bytes):
        (folder / "span.pcap").write_bytes(capture)
    else:
        shutil.copy(capture, folder / "span.pcap")
    p = subprocess.run(
        ["sh", str(SCRIPT)],
        env={**env, "DAY": day, "CAPTURES": str(folder)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in p.stderr
    return p.returncode


def mails(tmp: Path) -> list[str]:
    return [p.read_text() for p in sorted((tmp / "mailbox").iterdir())]


def violation_ids(markdown: str) -> list[str]:
    section = markdown.split("## Traffic outside the approved matrix", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| (?:new|persisting) \| G\d+ \| ([0-9a-f]{16}) \|", section, re.M)


def test_four_days_mail_only_what_is_new(env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    # day 1: no baseline yet: the whole report is new
    assert run_day(env, tmp_path, "2026-11-20", MIXED) == 1
    (first,) = mails(tmp_path)
    assert first.startswith("-s flowaudit: new unexpected flows on VLAN 111 (2026-11-20)")
    assert "Traffic outside the approved matrix (14)" in first
    day1 = json.loads((home / "reports" / "2026-11-20.json").read_text())
    assert (home / "last.json").read_text() == (home / "reports" / "2026-11-20.json").read_text()
    assert "changes" not in day1

    # day 2: the same behaviour: nothing new, no mail, the baseline moves on
    assert run_day(env, tmp_path, "2026-11-21", MIXED) == 0
    assert len(mails(tmp_path)) == 1
    day2 = json.loads((home / "last.json").read_text())
    assert day2["changes"]["new"] == [] and day2["changes"]["resolved"] == []
    assert len(day2["changes"]["persisting"]) == len(day1["violations"]) + len(day1["unused_rules"])

    # day 3: one new violation: a mail with exactly that finding
    header, records = read_pcap(MIXED)
    extra = [
        tcp_frame(111, "10.25.233.6", "10.25.233.4", 40002, 8081, 0x02),
        tcp_frame(111, "10.25.233.4", "10.25.233.6", 8081, 40002, 0x14),
    ]
    added = tmp_path / "added.pcap"
    write_pcap(added, header, records + list(records_at(records[-1][0] + 1, extra)))
    assert run_day(env, tmp_path, "2026-11-22", added) == 1
    third = mails(tmp_path)[1]
    day3 = json.loads((home / "last.json").read_text())
    (new_id,) = day3["changes"]["new"]
    assert violation_ids(third) == [new_id]
    assert "Traffic outside the approved matrix (1)" in third
    assert "1 new, 46 persisting, 0 resolved; 1 new finding groups" in third
    # the mail leads with the new group: port-not-approved node → node tcp/8081
    assert third.index("### New finding groups (1)") < third.index("New and resolved findings")
    assert "| port-not-approved | nodes → nodes | tcp/8081 | 1 |" in third

    # day 4: a broken capture: exit 2, no mail, yesterday's baseline kept
    before = (home / "last.json").read_bytes()
    assert run_day(env, tmp_path, "2026-11-23", b"not a capture at all") == 2
    assert len(mails(tmp_path)) == 2
    assert (home / "last.json").read_bytes() == before
