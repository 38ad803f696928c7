"""A bounded fuzz job over every reader of untrusted input (issue 12).

Real inputs from tests/data are mutated a few bytes at a time (overwrites with the
integers that break parsers — 0, 0x7f…, 0x80…, 0xff… — byte flips, cuts and insertions)
and fed to the reader they belong to. The property: a reader either reads or raises a
``FlowAuditError`` (exit 2/3 with a message); never any other exception, and what it
yields is a valid flow table. In CI the examples are derandomized and bounded
(``FLOWAUDIT_FUZZ_EXAMPLES``, default 40 per reader: about a minute in all); run with a
larger number locally to search longer. Crashers found are kept in tests/data/fuzz/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testpaths import DATA

from flowaudit.errors import FlowAuditError
from flowaudit.schema import validate_flows

EXAMPLES = int(os.environ.get("FLOWAUDIT_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EDGES = [b"\x00" * 4, b"\xff" * 4, b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\xff" * 8]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Path]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        kind = draw(st.sampled_from(["edge", "byte", "cut", "insert", "truncate"]))
        if kind == "edge":
            edge = draw(st.sampled_from(EDGES))
            data[pos : pos + len(edge)] = edge
        elif kind == "byte" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[pos:]
    return bytes(data)


def consume(reader: Callable[[Path], Any], path: Path) -> None:
    try:
        for table in reader(path):
            if hasattr(table, "schema") and "flow_id" in table.schema.names:
                validate_flows(table)
    except FlowAuditError:
        pass


def _netflow(path: Path) -> Any:
    from flowaudit.records.common import RecordStats
    from flowaudit.records.netflow.reader import iter_netflow_tables

    return iter_netflow_tables(path, stats=RecordStats())


def _zeek(path: Path) -> Any:
    from flowaudit.records.common import RecordStats
    from flowaudit.records.zeek import iter_zeek_tables

    return iter_zeek_tables(path, stats=RecordStats())


def _hubble(path: Path) -> Any:
    from flowaudit.records.common import RecordStats
    from flowaudit.records.hubble import iter_hubble_tables

    return iter_hubble_tables(path, stats=RecordStats())


def _nfcapd(path: Path) -> Any:
    from flowaudit.records.common import RecordStats
    from flowaudit.records.nfcapd import iter_nfcapd_tables

    return iter_nfcapd_tables(path, stats=RecordStats())


def _pcap(path: Path) -> Any:
    from flowaudit.flows.builder import FlowBuilder
    from flowaudit.packets.pcap import iter_packets

    fb = FlowBuilder("0" * 64, "pcap")
    for batch in iter_packets(path):
        batch.check()
        yield fb.add(batch)
    yield fb.finish()


def _matrix(path: Path) -> Any:
    from flowaudit.matrix import load_matrix

    load_matrix(path)
    return iter(())


def _seeds(folder: str, pattern: str) -> list[Path]:
    found = sorted((DATA / folder).glob(pattern))
    assert found, f"no seed inputs in tests/data/{folder}/{pattern}"
    return found[:12]


READERS: dict[str, tuple[Callable[[Path], Any], list[Path]]] = {
    "netflow": (_netflow, _seeds("netflow/pcap", "graylog-*.pcap")
                + _seeds("netflow/payloads", "logstash-netflow9*tpl*.dat")),
    "zeek": (_zeek, _seeds("records/zeek", "*.conn.log")),
    "hubble": (_hubble, _seeds("records/hubble", "*.json")),
    "pcap": (_pcap, _seeds("pcaps", "zeek-*.pcap")),
    "matrix": (_matrix, [Path(__file__).parents[2] / "rules" / "tmna-vlan111.yaml"]),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(READERS))
def test_reader_survives_mutated_input(name: str, tmp_path: Path) -> None:
    reader, seeds = READERS[name]
    target = tmp_path / f"input-{name}"

    @FUZZ
    @given(data=mutated(seeds))
    def check(data: bytes) -> None:
        target.write_bytes(data)
        consume(reader, target)

    check()


@pytest.mark.slow
@pytest.mark.nfdump
def test_nfcapd_reader_survives_mutated_files(tmp_path: Path) -> None:
    seeds = [DATA / "records" / "nfcapd" / "chrispassas-nfcapd.sample"]
    target = tmp_path / "nfcapd.fuzz"

    @settings(FUZZ, max_examples=max(5, EXAMPLES // 4))
    @given(data=mutated(seeds))
    def check(data: bytes) -> None:
        target.write_bytes(data)
        consume(_nfcapd, target)

    assert shutil.which("nfdump")
    check()
