"""Untrusted integer fields and nesting in Zeek and Hubble records (issue 12).

A port, protocol number, counter or VLAN outside its type's range, or a value that is not
an integer, skips its record with a warning naming file and line (counted in
``stats.skipped`` and ``counters["bad_field"]``): it is never wrapped (65979 → 443 would
match an approved rule), clipped or nulled. A JSON line nested deeper than
``JSON_MAX_DEPTH`` is skipped before it is parsed (``counters["too_deep"]``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from testpaths import DATA

from flowaudit.limits import JSON_MAX_DEPTH, MAX_COUNTER
from flowaudit.records.common import FieldError, RecordStats, int_field, json_depth
from flowaudit.records.hubble import iter_hubble_tables
from flowaudit.records.zeek import iter_zeek_tables
from flowaudit.schema import FLOW_SCHEMA

HUBBLE_SAMPLE = DATA / "records" / "hubble" / "hubble-otel-basic-sample-10-flows.json"

FIELDS = ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto",
          "duration", "conn_state", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts",
          "resp_ip_bytes", "ip_proto", "vlan")  # fmt: skip
GOOD = {"ts": "1300475167.096535", "uid": "C1", "id.orig_h": "10.25.233.4",
        "id.orig_p": "40000", "id.resp_h": "10.25.233.5", "id.resp_p": "443", "proto": "tcp",
        "duration": "1.5", "conn_state": "SF", "history": "ShADadFf", "orig_pkts": "5",
        "orig_ip_bytes": "300", "resp_pkts": "4", "resp_ip_bytes": "200", "ip_proto": "6",
        "vlan": "111"}  # fmt: skip


def _zeek(path: Path) -> tuple[pa.Table, RecordStats]:
    stats = RecordStats()
    tables = list(iter_zeek_tables(path, stats=stats))
    return (pa.concat_tables(tables) if tables else FLOW_SCHEMA.empty_table()), stats


def _hubble(path: Path) -> tuple[pa.Table, RecordStats]:
    stats = RecordStats()
    tables = list(iter_hubble_tables(path, stats=stats))
    return (pa.concat_tables(tables) if tables else FLOW_SCHEMA.empty_table()), stats


def _tsv(tmp_path: Path, *changes: dict[str, str]) -> Path:
    """A conn.log: one good row, then one row per change (data lines start at line 3)."""
    lines = ["#separator \\x09", "#fields\t" + "\t".join(FIELDS)]
    for change in ({}, *changes):
        lines.append("\t".join({**GOOD, **change}[f] for f in FIELDS))
    path = tmp_path / "conn.log"
    path.write_text("\n".join(lines) + "\n")
    return path


BAD_TSV = [
    ("id.resp_p", "65979", "id.resp_p '65979' outside 0-65535"),  # would wrap to 443
    ("id.resp_p", "99999999999999999999", "id.resp_p '99999999999999999999' outside 0-65535"),
    ("id.orig_p", "-5", "id.orig_p '-5' outside 0-65535"),
    ("id.orig_p", "443.5", "id.orig_p '443.5' is not an integer"),
    ("id.orig_p", "0x1bb", "id.orig_p '0x1bb' is not an integer"),
    ("ip_proto", "262", "ip_proto '262' outside 0-255"),  # would wrap to 6 (TCP)
    ("orig_pkts", "-1", "orig_pkts '-1' outside 0-18446744073709551615"),
    ("resp_ip_bytes", str(MAX_COUNTER + 1), "resp_ip_bytes '18446744073709551616' outside"),
    ("vlan", "4207", "vlan '4207' outside 0-4095"),  # 4207 & 0xfff = 111
    ("duration", "9" * 30, "duration '999999999999999999999999999999' out of range"),
]


@pytest.mark.parametrize(("field", "value", "why"), BAD_TSV)
def test_zeek_tsv_out_of_range_field_skips_the_record(
    tmp_path: Path, field: str, value: str, why: str
) -> None:
    path = _tsv(tmp_path, {field: value})
    table, stats = _zeek(path)
    assert table.num_rows == 1  # the good row only: nothing wrapped into an approved flow
    assert table.column("dst_port").to_pylist() == [443]
    assert (stats.records, stats.skipped, stats.counters.get("bad_field")) == (2, 1, 1)
    assert len(stats.warnings) == 1
    assert stats.warnings[0].startswith(f"{path}: line 4: {why}")
    assert stats.warnings[0].endswith(": skipped")


def test_zeek_tsv_extremes_in_range_are_kept(tmp_path: Path) -> None:
    path = _tsv(
        tmp_path,
        {
            "id.orig_p": "0",
            "id.resp_p": "65535",
            "orig_ip_bytes": str(MAX_COUNTER),
            "vlan": "4095",
            "ip_proto": "17",
            "proto": "udp",
        },  # fmt: skip
    )
    table, stats = _zeek(path)
    assert stats.skipped == 0 and stats.warnings == []
    last = table.to_pylist()[-1]
    assert (last["src_port"], last["dst_port"], last["vlan_id"]) == (0, 65535, 4095)
    assert last["src_bytes"] == MAX_COUNTER


def test_zeek_json_field_types_and_nesting(tmp_path: Path) -> None:
    good: dict[str, Any] = {"ts": 1.5, "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 1,
                            "id.resp_h": "10.0.0.2", "id.resp_p": 53, "proto": "udp"}  # fmt: skip
    bad = [{"id.resp_p": 65589}, {"id.resp_p": 10**20}, {"id.resp_p": -5},
           {"id.resp_p": 53.0}, {"id.resp_p": True}, {"orig_pkts": -1}]  # fmt: skip
    deep = '{"ts": 1.5, "x": ' + "[" * 50_000 + "]" * 50_000 + "}"
    lines = [json.dumps(good), *(json.dumps({**good, **b}) for b in bad), deep]
    path = tmp_path / "conn.json"
    path.write_text("\n".join([*lines, json.dumps(good)]) + "\n")
    table, stats = _zeek(path)
    assert table.num_rows == 2 and table.column("dst_port").to_pylist() == [53, 53]
    assert stats.skipped == len(bad) + 1
    assert stats.counters == {"bad_field": len(bad), "too_deep": 1}
    assert stats.warnings[0] == f"{path}: line 2: id.resp_p 65589 outside 0-65535: skipped"
    assert stats.warnings[3] == f"{path}: line 5: id.resp_p 53.0 is not an integer: skipped"
    assert stats.warnings[-1] == (
        f"{path}: line 8: JSON nested deeper than {JSON_MAX_DEPTH}: skipped"
    )


def _hubble_lines(tmp_path: Path, *events: dict[str, Any] | str) -> Path:
    src = HUBBLE_SAMPLE.read_text().splitlines()
    out = [src[0]]
    for e in events:
        out.append(e if isinstance(e, str) else json.dumps(e))
    out.append(src[1])
    path = tmp_path / "observe.json"
    path.write_text("\n".join(out) + "\n")
    return path


def _tcp_event(**ports: Any) -> dict[str, Any]:
    event = json.loads(HUBBLE_SAMPLE.read_text().splitlines()[1])
    event = copy.deepcopy(event)
    event["flow"]["l4"]["TCP"].update(ports)
    return event


def test_hubble_out_of_range_ports_skip_the_line(tmp_path: Path) -> None:
    path = _hubble_lines(
        tmp_path,
        _tcp_event(destination_port=65979),  # 65979 % 65536 == 443
        _tcp_event(destination_port=99999999999999999999),
        _tcp_event(source_port=-5),
        _tcp_event(source_port=443.9),
        _tcp_event(source_port="x"),
    )
    table, stats = _hubble(path)
    assert table.num_rows == 2
    assert stats.skipped == 5 and stats.counters["bad_field"] == 5
    assert stats.warnings == [
        f"{path}: line 2: l4.TCP.destination_port 65979 outside 0-65535: skipped",
        f"{path}: line 3: l4.TCP.destination_port 99999999999999999999 outside 0-65535: skipped",
        f"{path}: line 4: l4.TCP.source_port -5 outside 0-65535: skipped",
        f"{path}: line 5: l4.TCP.source_port 443.9 is not an integer: skipped",
        f"{path}: line 6: l4.TCP.source_port 'x' is not an integer: skipped",
    ]


def test_hubble_icmp_type_out_of_range(tmp_path: Path) -> None:
    event = json.loads(HUBBLE_SAMPLE.read_text().splitlines()[0])
    event["flow"]["l4"] = {"ICMPv4": {"type": 264, "code": 0}}  # 264 & 0xff = 8 (echo)
    table, stats = _hubble(_hubble_lines(tmp_path, event))
    assert table.num_rows == 2 and stats.skipped == 1
    assert stats.warnings[0].endswith(": line 2: l4.ICMPv4.type 264 outside 0-255: skipped")


def test_hubble_deeply_nested_line_is_skipped_before_parsing(tmp_path: Path) -> None:
    deep = '{"flow": ' + "[" * 50_000 + "]" * 50_000 + "}"
    path = _hubble_lines(tmp_path, deep)
    table, stats = _hubble(path)
    assert table.num_rows == 2
    assert (stats.skipped, stats.counters) == (1, {"too_deep": 1, "verdict_FORWARDED": 2})
    assert stats.warnings == [f"{path}: line 2: JSON nested deeper than {JSON_MAX_DEPTH}: skipped"]


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": [1, {"b": 2}]}') == 3
    text = '{"a": "' + "[" * 500 + '", "b": "\\"[[[["}'
    assert json_depth(text) == 1
    assert json_depth("[" * 100 + "]" * 100) == 100
    assert json_depth('["]' + '\\"' + '"' + ", [" * 70 + "]" * 70 + "]") == 71


def test_int_field() -> None:
    assert int_field("p", "0065535", 0xFFFF) == 65535
    assert int_field("p", " 7 ", 0xFFFF) == 7
    for value in ("65536", -1, "-0x1", 1.0, False, None, "", "1" * 5000):
        with pytest.raises(FieldError):
            int_field("p", value, 0xFFFF)
