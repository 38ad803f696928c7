"""Zeek conn.log and Hubble readers, and record-format detection, on real files.

Zeek: the btest baselines (``ts`` masked) must give exactly the flows flowaudit builds
from the same pcaps (tuple, Community ID, packets, IP bytes, state). Hubble: the
hubble-otel samples (838 lines) load one row per line with their verdicts.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from testpaths import DATA

from flowaudit import api
from flowaudit.errors import CaptureError
from flowaudit.flows.community_id import community_id
from flowaudit.packets.detect import detect_record_format
from flowaudit.records.common import RecordStats
from flowaudit.records.hubble import iter_hubble_tables
from flowaudit.records.zeek import history_flags, iter_zeek_tables
from flowaudit.schema import FLOW_SCHEMA

REC = DATA / "records"
ZEEK = REC / "zeek"
HUBBLE = REC / "hubble"
MASKED = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # stands in for the baselines' masked ts

# conn.log baseline → the pcap Zeek produced it from
BASELINES = {
    "ssh-basic.conn.log": "zeek-ssh.pcap",
    "modbus-and-non-modbus-p502.conn.log": "zeek-modbus-and-non-modbus-p502.pcap",
    "ftp-ipv6.conn.log": "zeek-ftp-ipv6.pcap",
    "q-in-q.conn.log": "zeek-q-in-q.pcap",
    "vlan-mpls.conn.log": "zeek-mixed-vlan-mpls.pcap",
    "mpls-in-vlan.conn.log": "zeek-mpls-in-vlan.pcap",
    "pppoe-over-qinq.conn.log": "zeek-pppoe-over-qinq.pcap",
    "pcapng-multi-interface.conn.log": "zeek-pcapng-multi-interface.pcapng",
    "http-connect-with-header.conn.log": "zeek-http-connect-with-header.null.pcap",
}
COMPARED = ("flow_id", "src_ip", "src_port", "dst_ip", "dst_port", "protocol", "src_packets",
            "dst_packets", "src_ip_bytes", "dst_ip_bytes", "state")  # fmt: skip


def _zeek(path: Path, **kw: object) -> tuple[pa.Table, RecordStats]:
    stats = RecordStats()
    tables = list(iter_zeek_tables(path, stats=stats, **kw))
    for t in tables:
        assert t.schema == FLOW_SCHEMA
    return (pa.concat_tables(tables) if tables else FLOW_SCHEMA.empty_table()), stats


def _hubble(path: Path) -> tuple[pa.Table, RecordStats]:
    stats = RecordStats()
    tables = list(iter_hubble_tables(path, stats=stats))
    for t in tables:
        assert t.schema == FLOW_SCHEMA
    return (pa.concat_tables(tables) if tables else FLOW_SCHEMA.empty_table()), stats


def _rows(table: pa.Table) -> Counter[tuple[object, ...]]:
    return Counter(tuple(r.values()) for r in table.select(list(COMPARED)).to_pylist())


# --- Zeek ----------------------------------------------------------------------------------
@pytest.mark.parametrize("log", sorted(BASELINES))
def test_zeek_baseline_equals_flows_from_its_pcap(log: str, tmp_path: Path) -> None:
    zeek, stats = _zeek(ZEEK / log, default_ts=MASKED)
    assert stats.skipped == 0 and stats.warnings == []
    assert stats.counters["default_ts"] == zeek.num_rows
    api.ingest(ZEEK / BASELINES[log], tmp_path / "store")
    built = api.query("SELECT * FROM flows", store=tmp_path / "store")
    assert _rows(zeek) == _rows(built)


def test_zeek_tunnel_log_has_our_outer_and_inner_flows(tmp_path: Path) -> None:
    zeek, _ = _zeek(ZEEK / "vxlan.conn.log", default_ts=MASKED)
    api.ingest(ZEEK / "zeek-vxlan.pcap", tmp_path / "store")
    built = api.query("SELECT * FROM flows", store=tmp_path / "store")
    only_zeek = _rows(zeek) - _rows(built)
    only_ours = _rows(built) - _rows(zeek)
    # the inner ICMP flow is in both; only its state differs: Zeek writes OTH for every
    # ICMP flow, we say SF (both sides spoke)
    assert [r[1:] for r in only_zeek] == [("10.0.0.1", 8, "10.0.0.2", 0, 1, 4, 4, 336, 336, "OTH")]
    assert [r[1:] for r in only_ours] == [("10.0.0.1", 8, "10.0.0.2", 0, 1, 4, 4, 336, 336, "SF")]
    tunnels = api.query("SELECT tunnel, tunnel_id FROM flows WHERE tunnel IS NOT NULL",
                        store=tmp_path / "store").to_pylist()  # fmt: skip
    assert tunnels == [{"tunnel": "vxlan", "tunnel_id": 123}]


def test_zeek_ssh_values() -> None:
    t, stats = _zeek(ZEEK / "ssh-basic.conn.log", default_ts=MASKED)
    assert stats.records == 25 and t.num_rows == 25
    assert dict(Counter(t["state"].to_pylist())) == {"SF": 22, "RSTR": 1, "S0": 2}
    r = t.to_pylist()[0]  # CHhAvVGS1DHFjwGM9 ... 6.159326 ... SF ... ShAdDaFf 25 3981 20 3549
    assert (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"], r["protocol"]) == (
        "192.168.1.79",
        51880,
        "131.159.21.1",
        22,
        6,
    )
    assert (r["src_packets"], r["src_bytes"], r["dst_packets"], r["dst_bytes"]) == (
        25,
        3981,
        20,
        3549,
    )
    assert (r["src_ip_bytes"], r["dst_ip_bytes"]) == (3981, 3549)
    assert (r["tcp_flags_src"], r["tcp_flags_dst"]) == (0x13, 0x13)  # SYN ACK FIN each way
    assert r["last_seen"] - r["first_seen"] == dt.timedelta(microseconds=6_159_326)
    assert (r["direction"], r["source_kind"], r["sampling"], r["vlan_id"]) == (
        "syn",
        "zeek",
        1,
        None,
    )
    assert r["flow_id"] == community_id("192.168.1.79", "131.159.21.1", 6, 51880, 22)


def test_zeek_and_hubble_stream_in_chunks() -> None:
    stats = RecordStats()
    log = ZEEK / "ssh-basic.conn.log"
    sizes = [
        t.num_rows for t in iter_zeek_tables(log, stats=stats, default_ts=MASKED, chunk_rows=10)
    ]
    assert sizes == [10, 10, 5]
    tcp = HUBBLE / "hubble-otel-basic-sample-400-tcp-flows.json"
    sizes = [t.num_rows for t in iter_hubble_tables(tcp, stats=RecordStats(), chunk_rows=150)]
    assert sizes == [150, 150, 100]


def test_history_flags() -> None:
    assert history_flags("ShAdDaFf") == (0x13, 0x13)
    assert history_flags("ShR") == (0x06, 0x12)  # SYN then RST; responder SYN-ACK
    assert history_flags("Sr") == (0x02, 0x04)  # rejected
    assert history_flags("D") == (0x10, 0)


def test_zeek_masked_ts_is_an_error_without_default() -> None:
    with pytest.raises(CaptureError, match=r"ssh-basic.conn.log: line 10: unparseable ts"):
        _zeek(ZEEK / "ssh-basic.conn.log")


def _with_real_ts(src: Path, start: float = 1_300_475_167.096535) -> list[str]:
    """The baseline's lines with ts = start + row number (a real, known time)."""
    out, row = [], 0
    for line in src.read_text().splitlines():
        if line.startswith("XXXXXXXXXX.XXXXXX"):
            line = f"{start + row:.6f}" + line[len("XXXXXXXXXX.XXXXXX") :]
            row += 1
        out.append(line)
    return out


def test_zeek_real_ts_gzip_and_json_agree(tmp_path: Path) -> None:
    lines = _with_real_ts(ZEEK / "ssh-basic.conn.log")
    tsv = tmp_path / "conn.log.gz"
    with gzip.open(tsv, "wt") as f:
        f.write("\n".join(lines) + "\n")
    fields = next(ln for ln in lines if ln.startswith("#fields")).split("\t")[1:]
    js = tmp_path / "conn.json"
    with open(js, "w") as f:
        for ln in lines:
            if ln.startswith("#"):
                continue
            rec = dict(zip(fields, ln.split("\t"), strict=True))
            obj: dict[str, object] = {k: v for k, v in rec.items() if v != "-"}
            obj["ts"] = float(rec["ts"])
            for k in ("id.orig_p", "id.resp_p", "orig_pkts", "resp_pkts", "orig_ip_bytes",
                      "resp_ip_bytes"):  # fmt: skip
                obj[k] = int(rec[k])
            if rec["duration"] != "-":
                obj["duration"] = float(rec["duration"])
            f.write(json.dumps(obj) + "\n")
    a, _ = _zeek(tsv)
    b, _ = _zeek(js)
    assert a.equals(b)
    assert a.num_rows == 25
    first = a.to_pylist()[0]
    assert first["first_seen"].isoformat() == "2011-03-18T19:06:07.096535+00:00"
    assert first["last_seen"].isoformat() == "2011-03-18T19:06:13.255861+00:00"
    assert detect_record_format(tsv) == "zeek" and detect_record_format(js) == "zeek"


def test_zeek_malformed_lines_are_skipped_with_line_numbers(tmp_path: Path) -> None:
    lines = _with_real_ts(ZEEK / "q-in-q.conn.log")
    lines.insert(10, "1300475167.5\tshort\trow")  # becomes line 11
    log = tmp_path / "conn.log"
    log.write_text("\n".join(lines) + "\n")
    t, stats = _zeek(log)
    assert t.num_rows == 2 and stats.skipped == 1
    assert stats.warnings == [f"{log}: line 11: 3 columns, #fields has 22: skipped"]
    js = tmp_path / "conn.json"
    good = {"ts": 1.5, "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 1,
            "id.resp_h": "10.0.0.2", "id.resp_p": 53, "proto": "udp"}  # fmt: skip
    js.write_text(json.dumps(good) + "\n{not json\n" + json.dumps(good) + "\n")
    t, stats = _zeek(js)
    assert t.num_rows == 2 and stats.skipped == 1
    assert stats.warnings[0].startswith(f"{js}: line 2: malformed JSON")


def test_zeek_vlan_columns(tmp_path: Path) -> None:
    lines = _with_real_ts(ZEEK / "q-in-q.conn.log")
    out: list[str] = []
    for ln in lines:
        if ln.startswith("#fields"):
            ln += "\tvlan\tinner_vlan"
        elif ln.startswith("#types"):
            ln += "\tint\tint"
        elif not ln.startswith("#"):
            ln += "\t13\t10" if not out[-1].startswith("1") else "\t-\t-"
        out.append(ln)
    log = tmp_path / "conn.log"
    log.write_text("\n".join(out) + "\n")
    t, _ = _zeek(log)
    assert t["vlan_id"].to_pylist() == [13, None]


def test_zeek_data_before_fields_is_an_error(tmp_path: Path) -> None:
    log = tmp_path / "conn.log"
    log.write_text("#separator \\x09\n1300475167.1\tC1\t10.0.0.1\t1\t10.0.0.2\t2\tudp\n")
    with pytest.raises(CaptureError, match=r"conn.log: line 2: data before a #fields header"):
        _zeek(log)


# --- Hubble --------------------------------------------------------------------------------
# lines, FORWARDED, REDIRECTED, reply lines per file: is_reply/reply true, plus (icmpv4)
# 3 echo replies whose is_reply Hubble left unset
HUBBLE_FILES = {
    "hubble-otel-basic-sample-10-flows.json": (10, 10, 0, 5),
    "hubble-otel-basic-sample-400-icmpv4-flows.json": (18, 18, 0, 4 + 3),
    "hubble-otel-basic-sample-400-tcp-flows.json": (400, 373, 27, 132),
    "hubble-otel-basic-sample-400-udp-flows.json": (400, 370, 30, 148),
    "hubble-otel-basic-sample-5-dns-flows.json": (5, 5, 0, 2),
    "hubble-otel-basic-sample-5-http-flows.json": (5, 5, 0, 2),
}


def test_hubble_samples_load_with_verdicts() -> None:
    total = 0
    for name, (lines, fwd, redirected, replies) in HUBBLE_FILES.items():
        t, stats = _hubble(HUBBLE / name)
        assert (stats.records, t.num_rows, stats.skipped) == (lines, lines, 0)
        verdicts = Counter(t["verdict"].to_pylist())
        assert verdicts == Counter({"FORWARDED": fwd, "REDIRECTED": redirected}) - Counter()
        assert stats.counters.get("verdict_FORWARDED", 0) == fwd
        # one packet per line, on the dst side for replies
        assert pc.sum(t["dst_packets"]).as_py() == replies
        assert pc.sum(t["src_packets"]).as_py() + replies == lines
        assert t["drop_reason"].null_count == lines
        assert t["source_kind"].unique().to_pylist() == ["hubble"]
        total += t.num_rows
    assert total == 838


def test_hubble_reply_is_stored_in_the_initiators_view() -> None:
    t, _ = _hubble(HUBBLE / "hubble-otel-basic-sample-10-flows.json")
    r = t.to_pylist()[0]  # reply: 10.0.2.16:15020 -> 10.0.2.1:42044, FIN ACK
    assert (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"]) == (
        "10.0.2.1",
        42044,
        "10.0.2.16",
        15020,
    )
    assert (r["src_packets"], r["dst_packets"], r["tcp_flags_src"], r["tcp_flags_dst"]) == (
        0,
        1,
        0,
        0x11,
    )
    assert (r["src_bytes"], r["dst_bytes"], r["state"], r["direction"]) == (
        0,
        0,
        "OTH",
        "first_packet",
    )
    assert r["first_seen"].isoformat() == "2021-06-16T16:52:13.136834+00:00"
    assert r["flow_id"] == t.to_pylist()[1]["flow_id"]  # the next line, same conversation
    tcp, _ = _hubble(HUBBLE / "hubble-otel-basic-sample-400-tcp-flows.json")
    syn = tcp.filter(pc.equal(tcp["direction"], "syn"))
    assert syn.num_rows == 109  # lines whose TCP flags include SYN


def test_hubble_icmp_echo_reply_joins_its_request() -> None:
    t, _ = _hubble(HUBBLE / "hubble-otel-basic-sample-400-icmpv4-flows.json")
    rows = t.to_pylist()
    # line 1: echo request 10.244.0.148 -> .160; line 2: its reply (is_reply true)
    assert [(r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"]) for r in rows[:2]] == [
        ("10.244.0.148", 8, "10.244.0.160", 0)
    ] * 2
    assert rows[0]["flow_id"] == rows[1]["flow_id"]
    assert (rows[0]["state"], rows[1]["state"]) == ("S0", "SHR")
    # line 5: an echo reply without is_reply: oriented by its type
    assert (rows[4]["src_ip"], rows[4]["dst_ip"], rows[4]["dst_packets"]) == (
        "10.244.1.29",
        "10.244.0.160",
        1,
    )
    assert rows[4]["flow_id"] == rows[3]["flow_id"]


def test_hubble_malformed_line_and_drop_reason(tmp_path: Path) -> None:
    src = (HUBBLE / "hubble-otel-basic-sample-10-flows.json").read_text().splitlines()
    dropped = json.loads(src[2])
    dropped["flow"]["verdict"] = "DROPPED"
    dropped["flow"]["drop_reason_desc"] = "POLICY_DENIED"
    path = tmp_path / "observe.json"
    path.write_text("\n".join([src[0], '{"flow": {"time": ', json.dumps(dropped), src[3]]) + "\n")
    t, stats = _hubble(path)
    assert t.num_rows == 3 and stats.skipped == 1
    assert len(stats.warnings) == 1 and stats.warnings[0].startswith(f"{path}: line 2: malformed")
    assert t["verdict"].to_pylist() == ["FORWARDED", "DROPPED", "FORWARDED"]
    assert t["drop_reason"].to_pylist() == [None, "POLICY_DENIED", None]


# --- detection -----------------------------------------------------------------------------
def test_detect_record_format(tmp_path: Path) -> None:
    assert detect_record_format(REC / "nfcapd" / "chrispassas-nfcapd.sample") == "nfcapd"
    assert detect_record_format(REC / "nfcapd" / "chrispassas-nfcapd-small-lzo") == "nfcapd"
    assert detect_record_format(ZEEK / "ssh-basic.conn.log") == "zeek"
    for name in HUBBLE_FILES:
        assert detect_record_format(HUBBLE / name) == "hubble"
    assert detect_record_format(ZEEK / "zeek-q-in-q.pcap") is None
    gz = tmp_path / "observe.json.gz"
    with (
        open(HUBBLE / "hubble-otel-basic-sample-10-flows.json", "rb") as f,
        gzip.open(gz, "wb") as g,
    ):
        shutil.copyfileobj(f, g)
    assert detect_record_format(gz) == "hubble"
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert detect_record_format(empty) is None
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}\n')
    assert detect_record_format(other) is None
