"""NetFlow v9 / IPFIX: records encoded here with ``struct`` decode to exactly their values.

The encoder below follows RFC 3954 (v9: header, template flowset 0, options template
flowset 1 with scope and option lengths in bytes, data flowsets padded to 4 bytes) and
RFC 7011 (IPFIX: message length in the header, template set 2, options template set 3
with a scope field count, enterprise bit and PEN). Templates are drawn with any field
order, reduced-size counters of every width 1..8 (3, 5, 6 and 7 included), fields the
reader skips (IANA and enterprise, fixed and IPFIX variable length, short and long
form), and an options template announcing a sampling interval. A valid export must
decode with no warning at all.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flowaudit.records.common import RecordStats
from flowaudit.records.netflow.reader import iter_netflow_tables

EXPORT_SECS = 1_790_000_000  # 2026-09-21
UPTIME_MS = 50_000_000
DOMAIN = 7


@dataclass(frozen=True)
class F:
    """One template field: (enterprise, element id, length) and its value per record."""

    pen: int
    ie: int
    length: int
    key: str  # which record value it carries ("" for filler)


def be(value: int | str, length: int) -> bytes:
    if isinstance(value, str):  # an address
        return ipaddress.ip_address(value).packed
    return value.to_bytes(length, "big")


def template_record(fields: list[F], ipfix: bool) -> bytes:
    out = b""
    for f in fields:
        if f.pen:
            out += struct.pack("!HHI", f.ie | 0x8000, f.length, f.pen)
        else:
            out += struct.pack("!HH", f.ie, f.length)
    return out


def set_(set_id: int, body: bytes, pad: bool) -> bytes:
    if pad:
        body += b"\0" * (-(len(body) + 4) % 4)
    return struct.pack("!HH", set_id, len(body) + 4) + body


def message(ipfix: bool, sets: list[bytes], records: int) -> bytes:
    body = b"".join(sets)
    if ipfix:
        return struct.pack("!HHIII", 10, 16 + len(body), EXPORT_SECS, 1, DOMAIN) + body
    return struct.pack("!HHIIII", 9, records, UPTIME_MS, EXPORT_SECS, 1, DOMAIN) + body


def field_bytes(f: F, r: dict[str, Any]) -> bytes:
    if f.length == 65535:  # IPFIX variable length: 1-byte length, or 255 and 2 bytes
        v = r[f.key]
        return (bytes([len(v)]) if len(v) < 255 else b"\xff" + be(len(v), 2)) + v
    return be(r[f.key], f.length) if f.key else b"\x5a" * f.length


def encode(case: dict[str, Any]) -> bytes:
    """The export as raw datagrams back to back (what ``nc -u -l`` would capture)."""
    ipfix, fields, recs = case["ipfix"], case["fields"], case["records"]
    tid, opt_tid = 300, 301
    data = b"".join(b"".join(field_bytes(f, r) for f in fields) for r in recs)
    tpl = set_(2 if ipfix else 0, struct.pack("!HH", tid, len(fields)) + template_record(
        fields, ipfix), pad=False)  # fmt: skip
    datagrams = [
        ("template", message(ipfix, [tpl], 1)),
        ("data", message(ipfix, [set_(tid, data, pad=True)], len(recs))),
    ]
    samp = case["sampling"]
    if samp is not None:
        interval, width, ie = samp
        scope = [F(0, 149 if ipfix else 1, 4, "")]  # observation domain / v9 "System"
        option = [F(0, ie, width, "interval")]
        if ipfix:
            head = struct.pack("!HHH", opt_tid, len(scope) + len(option), len(scope))
        else:
            head = struct.pack("!HHH", opt_tid, 4 * len(scope), 4 * len(option))
        otpl = set_(3 if ipfix else 1, head + template_record(scope + option, ipfix), pad=True)
        orec = be(DOMAIN, 4) + be(interval, width)
        datagrams.insert(0, ("options", message(ipfix, [otpl, set_(opt_tid, orec, True)], 2)))
    order = case["order"]
    return b"".join(d for _, d in sorted(datagrams, key=lambda x: order.index(x[0])))


# --- strategies ---------------------------------------------------------------------------
WIDTH = st.integers(1, 8)
FILLER = st.lists(
    st.tuples(st.sampled_from([(0, 5), (0, 9), (0, 13), (0, 16), (9, 100), (29305, 400)]),
              st.integers(1, 9)),
    max_size=3,
)  # fmt: skip


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    ipfix = draw(st.booleans())
    v6 = draw(st.booleans())
    wb, wp = draw(WIDTH), draw(WIDTH)
    wf = draw(st.sampled_from([1, 2]))
    fields = [
        F(0, 27 if v6 else 8, 16 if v6 else 4, "src"),
        F(0, 28 if v6 else 12, 16 if v6 else 4, "dst"),
        F(0, 7, 2, "sport"),
        F(0, 11, 2, "dport"),
        F(0, 4, 1, "proto"),
        F(0, 1, wb, "bytes"),
        F(0, 2, wp, "packets"),
        F(0, 6, wf, "flags"),
        F(0, 58, 2, "vlan"),
    ]
    if ipfix:
        fields += [F(0, 152, 8, "first"), F(0, 153, 8, "last")]
    else:
        fields += [F(0, 22, 4, "first"), F(0, 21, 4, "last")]
    for (pen, ie), ln in draw(FILLER):
        if pen and not ipfix:
            continue  # enterprise fields exist in IPFIX only
        fields.append(F(pen, ie, ln, ""))
    varlen = draw(st.integers(0, 2)) if ipfix else 0  # e.g. interfaceName, a vendor string
    fields += [F(*[(0, 82), (9, 201)][i], 65535, f"var{i}") for i in range(varlen)]
    fields = draw(st.permutations(fields))
    addr = (
        st.integers(1, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
        if v6
        else st.integers(1, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
    )
    records = []
    for _ in range(draw(st.integers(1, 5))):
        a, b = draw(st.integers(0, 100_000)), draw(st.integers(0, 100_000))
        start, end = min(a, b), max(a, b)
        if ipfix:
            first, last = EXPORT_SECS * 1000 - end, EXPORT_SECS * 1000 - start
        else:
            first, last = UPTIME_MS - end, UPTIME_MS - start
        records.append({
            "src": draw(addr), "dst": draw(addr),
            "sport": draw(st.integers(0, 65535)), "dport": draw(st.integers(0, 65535)),
            "proto": draw(st.sampled_from([6, 17])),
            "bytes": draw(st.integers(0, 256**wb - 1)),
            "packets": draw(st.integers(0, 256**wp - 1)),
            "flags": draw(st.integers(0, 256**wf - 1)),
            "vlan": draw(st.integers(1, 4094)),
            "first": first, "last": last,
            **{f"var{i}": draw(st.binary(max_size=300)) for i in range(varlen)},
        })  # fmt: skip
    sampling = None
    if draw(st.booleans()):
        width = draw(st.integers(1, 8))
        interval = draw(st.integers(2, min(256**width - 1, 2**31)))
        sampling = (interval, width, draw(st.sampled_from([34, 50])))
    order = draw(st.permutations(["options", "template", "data"]))
    return {"ipfix": ipfix, "fields": fields, "records": records, "sampling": sampling,
            "order": order}  # fmt: skip


def expected_row(case: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    if case["ipfix"]:
        first_us, last_us = r["first"] * 1000, r["last"] * 1000
    else:  # sysUptime-relative: the export time minus how long before the export
        first_us = EXPORT_SECS * 1_000_000 - (UPTIME_MS - r["first"]) * 1000
        last_us = EXPORT_SECS * 1_000_000 - (UPTIME_MS - r["last"]) * 1000
    return {
        "src_ip": str(ipaddress.ip_address(r["src"])),
        "dst_ip": str(ipaddress.ip_address(r["dst"])),
        "src_port": r["sport"],
        "dst_port": r["dport"],
        "protocol": r["proto"],
        "src_bytes": r["bytes"],
        "src_packets": r["packets"],
        "tcp_flags_src": r["flags"] & 0xFF,
        "vlan_id": r["vlan"],
        "first_seen": datetime.fromtimestamp(first_us / 1e6, UTC),
        "last_seen": datetime.fromtimestamp(last_us / 1e6, UTC),
        "sampling": case["sampling"][0] if case["sampling"] else 1,
        "source_kind": "ipfix" if case["ipfix"] else "netflow9",
        "observation_domain": DOMAIN,
    }


def decode_file(path: Path) -> tuple[list[dict[str, Any]], RecordStats]:
    st_ = RecordStats()
    rows = [r for t in iter_netflow_tables(path, stats=st_, pair=False) for r in t.to_pylist()]
    return rows, st_


V9_OPTIONS = {
    "ipfix": False,
    "fields": [F(0, 8, 4, "src"), F(0, 12, 4, "dst"), F(0, 7, 2, "sport"), F(0, 11, 2, "dport"),
               F(0, 4, 1, "proto"), F(0, 1, 3, "bytes"), F(0, 2, 5, "packets"),
               F(0, 6, 1, "flags"), F(0, 58, 2, "vlan"), F(0, 22, 4, "first"),
               F(0, 21, 4, "last")],
    "records": [{"src": "10.25.233.4", "dst": "10.25.233.5", "sport": 40000, "dport": 2379,
                 "proto": 6, "bytes": 0xABCDEF, "packets": 0x0102030405, "flags": 0x1B,
                 "vlan": 111, "first": UPTIME_MS - 2000, "last": UPTIME_MS - 1000}],
    "sampling": (1000, 4, 34),
    "order": ["options", "template", "data"],
}  # fmt: skip


@given(case=cases())
@example(case=V9_OPTIONS)  # a v9 options template with a scope: sampling 1000, no warning
@example(case={**V9_OPTIONS, "ipfix": True, "fields": [
    F(0, 8, 4, "src"), F(0, 12, 4, "dst"), F(0, 7, 2, "sport"), F(0, 11, 2, "dport"),
    F(0, 4, 1, "proto"), F(0, 1, 7, "bytes"), F(0, 2, 6, "packets"), F(0, 6, 2, "flags"),
    F(0, 58, 2, "vlan"), F(9, 100, 3, ""), F(0, 152, 8, "first"), F(0, 153, 8, "last")],
    "records": [{**V9_OPTIONS["records"][0], "first": EXPORT_SECS * 1000 - 5,
                 "last": EXPORT_SECS * 1000, "flags": 0x011B}],
    "sampling": (0xFFFFFF, 3, 50)})  # fmt: skip
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_encoded_records_decode_exactly_and_without_warning(
    tmp_path: Path, case: dict[str, Any]
) -> None:
    path = tmp_path / "export.dat"
    path.write_bytes(encode(case))
    rows, stats = decode_file(path)
    assert stats.warnings == []
    assert stats.records == len(case["records"])
    want = [expected_row(case, r) for r in case["records"]]
    got = [{k: row[k] for k in want[0]} for row in rows]
    key = lambda r: (r["first_seen"], r["src_ip"], r["dst_ip"], r["src_port"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)
    if case["sampling"] is not None:
        assert stats.counters["options_records"] == 1


@pytest.mark.parametrize("width", range(1, 9))
def test_every_counter_width_decodes_its_largest_value(tmp_path: Path, width: int) -> None:
    case = {**V9_OPTIONS, "sampling": None}
    case["fields"] = [F(0, 1, width, "bytes") if f.key == "bytes" else f for f in case["fields"]]
    case["records"] = [{**case["records"][0], "bytes": 256**width - 1, "packets": 1}]
    path = tmp_path / "export.dat"
    path.write_bytes(encode(case))
    (row,), stats = decode_file(path)
    assert stats.warnings == []
    assert row["src_bytes"] == 256**width - 1
