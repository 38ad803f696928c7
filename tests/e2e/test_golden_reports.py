"""Golden files: the whole report of each sample in every format, byte for byte.

``tests/data/expected/<stem>.<fmt>`` is paired with ``samples/pcaps/<stem>.pcap`` by
file stem. Regenerate with ``pytest --update-golden`` and read the diff before
committing: a changed golden is a changed report.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from testpaths import DATA, SAMPLES

from flowaudit.cli import cli

EXPECTED = DATA / "expected"
GROUP = "admin_workstations=10.25.100.10,10.25.100.11"
FORMATS = ("text", "json", "markdown", "csv", "html")
STEMS = ("vlan111-mixed", "vlan111-approved")


def _audit(stem: str, fmt: str, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["audit", str(SAMPLES / f"{stem}.pcap"), "--group", GROUP, "--format", fmt,
         "-o", str(out), *extra],
    )  # fmt: skip
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, out.read_text(encoding="utf-8")


def _check(name: str, text: str, update_golden: bool) -> None:
    golden = EXPECTED / name
    if update_golden:
        EXPECTED.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"{golden} missing: run pytest --update-golden"
    assert text == golden.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.mark.slow
@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_report_equals_golden(stem: str, fmt: str, tmp_path: Path, update_golden: bool) -> None:
    code, text = _audit(stem, fmt, tmp_path / f"report.{fmt}")
    assert code == 1  # both samples have findings (the approved one: unused rules)
    _check(f"{stem}.{fmt}", text, update_golden)


@pytest.fixture(scope="module")
def approved_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The approved sample's JSON report, written once for every format's baseline run."""
    base = tmp_path_factory.mktemp("baseline") / "base.json"
    _audit("vlan111-approved", "json", base)
    return base


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_report_with_baseline_equals_golden(
    fmt: str, approved_json: Path, tmp_path: Path, update_golden: bool
) -> None:
    """The mixed sample against the approved sample's report: every change kind shows."""
    code, text = _audit(
        "vlan111-mixed", fmt, tmp_path / f"report.{fmt}", "--baseline", str(approved_json)
    )
    assert code == 1
    _check(f"vlan111-mixed.vs-approved.{fmt}", text, update_golden)
