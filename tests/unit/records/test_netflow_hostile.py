"""Hostile NetFlow/IPFIX input: a bad record is skipped and counted, never fatal, and
nothing half-written reaches the store (issue 12)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from testpaths import DATA

from flowaudit.cli import cli
from flowaudit.store import FlowStore

FUZZ = DATA / "fuzz" / "netflow"


def _stored_files(store: Path) -> tuple[set[str], set[str]]:
    """(flow files on disk, flow files the manifests name), as store-relative paths."""
    on_disk = {str(p.relative_to(store)) for p in (store / "flows").rglob("*.parquet")}
    named = set()
    for m in (store / "manifest").glob("*.json"):
        named.update(json.loads(m.read_text())["files"])
    return on_disk, named


@pytest.mark.parametrize(
    ("name", "warning"),
    [
        ("graylog-netflow9.huge-record-length.pcap", "corrupt record length"),
        ("graylog-pmacctd-netflow9.counter-beyond-int64.pcap", None),
        ("graylog-pmacctd-netflow9.time-year-83825.pcap", "time outside 1970-01-01..2261-12-31"),
    ],
)
def test_crashers_ingest_what_is_readable(name: str, warning: str | None, tmp_path: Path) -> None:
    store = tmp_path / "s"
    r = CliRunner().invoke(
        cli, ["ingest", str(FUZZ / name), "--format", "netflow", "--store", str(store)]
    )
    assert r.exit_code == 0, r.output
    assert "internal error" not in r.output and "Traceback" not in r.output
    if warning:
        assert warning in r.output
    on_disk, named = _stored_files(store)
    assert on_disk == named and named  # every stored file is in a manifest, none orphaned
    (rec,) = FlowStore(store).captures()
    assert rec.first_seen is not None and "1970" <= rec.first_seen[:4] <= "2261"
    assert rec.last_seen is not None and rec.last_seen[:4] <= "2261"


# --- an IPFIX export built here: its truth is known -----------------------------------
# template 256: sourceIPv4Address(8) destinationIPv4Address(12) protocolIdentifier(4)
# sourceTransportPort(7) destinationTransportPort(11) packetDeltaCount(2) octetDeltaCount(1)
# flowStartMilliseconds(152) flowEndMilliseconds(153)
FIELDS = ((8, 4), (12, 4), (4, 1), (7, 2), (11, 2), (2, 8), (1, 8), (152, 8), (153, 8))
REC = struct.Struct("!4s4sBHHQQQQ")
T0_MS = 1_795_680_000_000  # 2026-11-26T08:00:00Z


def _ipfix(records: list[tuple[bytes, ...]]) -> bytes:
    tpl_body = struct.pack("!HH", 256, len(FIELDS)) + b"".join(
        struct.pack("!HH", e, n) for e, n in FIELDS
    )
    tpl_set = struct.pack("!HH", 2, 4 + len(tpl_body)) + tpl_body
    data = b"".join(REC.pack(*r) for r in records)
    data_set = struct.pack("!HH", 256, 4 + len(data)) + data
    body = tpl_set + data_set
    return struct.pack("!HHIII", 10, 16 + len(body), T0_MS // 1000, 1, 0) + body


def _rec(src: str, dport: int, start_ms: int, end_ms: int) -> tuple[bytes, ...]:
    a = bytes(int(x) for x in src.split("."))
    b = bytes([10, 25, 232, 155])
    return (a, b, 6, 50000, dport, 10, 1000, start_ms, end_ms)  # type: ignore[return-value]


def test_records_with_unstorable_times_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "export.ipfix"
    path.write_bytes(
        _ipfix(
            [
                _rec("10.25.233.4", 443, T0_MS, T0_MS + 2_000),  # the one good record
                _rec("10.25.233.5", 443, 2**63 + 5, 2**63 + 9),  # beyond int64
                _rec("10.25.233.6", 443, 2**64 - 1, 2**64 - 1),  # wrapped unsigned
                _rec("10.25.233.4", 30003, 10**18, 10**18 + 1),  # year 33658
            ]
        )
    )
    store = tmp_path / "s"
    r = CliRunner().invoke(cli, ["ingest", str(path), "--format", "netflow", "--store", str(store)])
    assert r.exit_code == 0, r.output
    assert "3 record(s) with a time outside 1970-01-01..2261-12-31 skipped" in r.output
    (rec,) = FlowStore(store).captures()
    assert (rec.packets, rec.flows, rec.skipped) == (4, 1, 3)
    assert rec.stats["records_time_out_of_range"] == 3
    assert (rec.first_seen, rec.last_seen) == ("2026-11-26T08:00:00Z", "2026-11-26T08:00:02Z")
    on_disk, named = _stored_files(store)
    assert on_disk == named and len(named) == 1
