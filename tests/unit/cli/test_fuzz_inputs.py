"""Every crasher input under tests/data/fuzz, through the CLI (issue 12).

Each file is a regression: it once crashed flowaudit ("internal error", exit 3), exhausted
memory, or let a record in wrongly (a port wrapped into an approved one). Now each is
refused with exit 2 and a one-line message naming the file, or read with a warning that
names file and line and counts the skipped record.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from click.testing import CliRunner
from testpaths import DATA, MIXED

from flowaudit.cli import cli
from flowaudit.limits import MATRIX_MAX_BYTES

FUZZ = DATA / "fuzz"

# file → (CLI arguments before the file, exit code, what stderr must say)
CASES: dict[str, tuple[tuple[str, ...], int, str]] = {
    "matrix-billion-laughs.yaml": (("rules", "check"), 2, ":2:14: YAML anchors (&name)"),
    "matrix-deep-5000.yaml": (("rules", "check"), 2, ":2:45: nesting deeper than 32 levels"),
    "matrix-group-null.yaml": (("rules", "check"), 2, ":4: group 'nodes' has no addresses"),
    "matrix-group-product.yaml": (
        ("rules", "check"),
        2,
        ":125: rule 'r': compiles to 14,400 rule rows",
    ),
    "zeek-port-65979.log": (("ingest", "--format", "zeek"), 0, "id.resp_p '65979' outside"),
    "zeek-port-20-digits.log": (("ingest", "--format", "zeek"), 0, "id.resp_p '9999"),
    "zeek-port-negative.log": (("ingest", "--format", "zeek"), 0, "id.orig_p '-5' outside"),
    "zeek-ip-proto-262.log": (("ingest", "--format", "zeek"), 0, "ip_proto '262' outside 0-255"),
    "zeek-vlan-99999.log": (("ingest", "--format", "zeek"), 0, "vlan '99999' outside 0-4095"),
    "zeek-counter-2-64.log": (("ingest", "--format", "zeek"), 0, "orig_ip_bytes '1844"),
    "zeek-duration-30-digits.log": (("ingest", "--format", "zeek"), 0, "duration '999"),
    "zeek-ts-20-digits.log": (("ingest", "--format", "zeek"), 2, ": line 4: unparseable ts"),
    "zeek-separator-bad-escape.log": (
        ("ingest", "--format", "zeek"),
        2,
        ": line 1: #separator '\\\\x' is not a separator",
    ),
    "zeek-separator-unknown-escape.log": (
        ("ingest", "--format", "zeek"),
        2,
        ": line 1: #separator '\\\\q' is not a separator",
    ),
    "nfcapd-appendix-loop.nfcapd": (
        ("ingest", "--format", "nfcapd"),
        2,
        "nfcapd: nfdump could not read the file: nfdump printed more than 1 MiB of messages "
        "and was stopped: Error process appendix record type: 42183",
    ),
    "zeek-json-deep-5000.log": (("ingest", "--format", "zeek"), 0, ": line 2: JSON nested"),
    "zeek-json-port-float.log": (("ingest", "--format", "zeek"), 0, "id.resp_p 443.0 is not"),
    "hubble-port-65979.json": (("ingest", "--format", "hubble"), 0, "destination_port 65979 "),
    "hubble-port-20-digits.json": (("ingest", "--format", "hubble"), 0, "port 9999"),
    "hubble-port-negative.json": (("ingest", "--format", "hubble"), 0, "source_port -5 outside"),
    "hubble-icmp-type-264.json": (("ingest", "--format", "hubble"), 0, "type 264 outside 0-255"),
    "hubble-deep-50000.json.gz": (("ingest", "--format", "hubble"), 0, ": line 2: JSON nested"),
    "hubble-deep-first-line.json.gz": (("ingest",), 2, "not a pcap/pcapng capture, nfcapd"),
    "baseline-deep-5000.json": (("audit", str(MIXED), "--baseline"), 2, "nested too deeply"),
    # exit 1: findings; the text report shows the hostile finding as text
    "baseline-rich-markup.json": (
        ("audit", str(MIXED), "--baseline"),
        1,
        "port-not-approved: [/oops] [link=https://evil]x[/link] \\x1b[2J → 10.25.233.5",
    ),
}


def test_every_fuzz_file_has_a_case_and_a_readme_line() -> None:
    # (netflow/ holds the NetFlow crashers, with their own README and test)
    files = {p.name for p in FUZZ.iterdir() if p.is_file() and p.name != "README.md"}
    assert files == set(CASES)
    readme = (FUZZ / "README.md").read_text()
    for name in files:
        assert f"| {name} |" in readme, name


def _run(args: list[str]) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, args)
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.nfdump) if n.endswith(".nfcapd") else n
        for n in sorted(CASES)
    ],
)
def test_fuzz_input_is_refused_or_warned_never_a_crash(name: str, tmp_path: Path) -> None:
    before, code, says = CASES[name]
    path = FUZZ / name
    args = [*before, str(path)]
    if before[0] == "ingest":
        args += ["--store", str(tmp_path / "store")]
    exit_code, out, err = _run(args)
    assert "internal error" not in err and "Traceback" not in err
    assert exit_code == code, err
    if code == 1:  # findings: the report on stdout shows the hostile text as text
        assert says in out and "\x1b" not in out, out
    elif code == 2:
        assert says in err, err
        (line,) = [x for x in err.splitlines() if x.startswith("flowaudit: error:")]
        assert str(path) in line
    else:
        assert says in err, err
        assert f"flowaudit: warning: {path}: line " in err
        assert ", 1 skipped," in err  # counted, and the good record kept
        assert "1 records, 0 flows" in err or "2 records, 1 flows" in err


def test_oversized_matrix_is_refused_by_rules_check(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("name: big\n" + "#" * MATRIX_MAX_BYTES + "\n")
    code, _, err = _run(["rules", "check", str(big)])
    assert code == 2
    assert err.startswith(f"flowaudit: error: {big}: larger than {MATRIX_MAX_BYTES:,} bytes")


def test_deep_hubble_file_is_really_50000_deep() -> None:
    line = gzip.decompress((FUZZ / "hubble-deep-50000.json.gz").read_bytes()).splitlines()[1]
    assert line.count(b"[") == 50_000
