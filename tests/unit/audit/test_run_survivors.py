"""More of the audit's Python decisions (``flowaudit/audit/run.py``), written for the
mutants that survived the full mutmut run of 2026-12-08 (tests/MUTATION.md, "audit/run.py
survivors"): what ``audit_source`` hands to the ingest and to the audit and which store
it reads, a matrix whose names hold a NUL (worded violation by violation), what differs
for ICMP codes and for protocols without ports, and the address cells at their edges.
Oracles: the crafted frames' own ground truth and plain statements of the documented
rules, written here.
Each test runs its own audit (mutmut runs for a mutant only the tests during which the
mutated function ran)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct
from pathlib import Path
from typing import Any

import pytest
from flowrows import flow, make_flows
from pcaptools import records_at, tcp_frame, udp_frame, write_pcap
from test_run_mutants import _matrix

from flowaudit.audit.run import audit_source, run_audit
from flowaudit.errors import CaptureError, StoreError
from flowaudit.matrix.model import Matrix
from flowaudit.store import DEFAULT_STORE, FlowStore

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
NODE_A, NODE_B, NODE_C = "10.25.233.4", "10.25.233.5", "10.25.233.6"
POD_A, POD_B = "10.0.1.5", "10.0.2.7"
VX_PORT, VNI = 9999, 7  # VXLAN on a port that is not 4789 or 8472


def _vxlan(inner: bytes) -> bytes:
    """A VXLAN header (RFC 7348: flags 0x08, VNI, reserved bytes 0) and the inner frame."""
    return struct.pack("!BBHI", 0x08, 0, 0, VNI << 8) + inner


def _pcap(path: Path, frames: list[bytes], start: int = 1_700_000_000) -> Path:
    write_pcap(path, PCAP_HEADER, list(records_at(start, frames)))
    return path


def _tunnel_capture(tmp_path: Path) -> Path:
    """NODE_A sends a pod's SYN (POD_A:40000 → POD_B:8080) in VXLAN to NODE_B:9999 and
    NODE_B returns the SYN-ACK to NODE_A:9999 from another source port (VXLAN source ports
    are per-flow hashes): two outer UDP flows and, opened, one inner flow."""
    syn = tcp_frame(None, POD_A, POD_B, 40000, 8080, 0x02)
    synack = tcp_frame(None, POD_B, POD_A, 8080, 40000, 0x12)
    frames = [
        udp_frame(NODE_A, NODE_B, 33000, VX_PORT, _vxlan(syn)),
        udp_frame(NODE_B, NODE_A, 33001, VX_PORT, _vxlan(synack)),
    ]
    return _pcap(tmp_path / "vx.pcap", frames)


def _node_matrix(tmp_path: Path) -> Matrix:
    return _matrix(tmp_path, {"nodes": [NODE_A, NODE_B], "other": [NODE_C]}, [
        "id: vx, from: nodes, to: nodes, protocol: udp, ports: 9999, purpose: p,"
        " bidirectional: true",
        "id: ssh, from: other, to: nodes, protocol: tcp, ports: 22, purpose: p",
    ])  # fmt: skip


def test_audit_source_opens_vxlan_on_the_extra_ports_given(tmp_path: Path) -> None:
    """``vxlan_ports`` opens VXLAN on those UDP ports besides 4789 and 8472 when captures
    are ingested: the inner flow is in the overlay section under the rule approving the
    outer flow (ARCHITECTURE.md, overlay); without the option the datagrams are outer
    traffic only."""
    m = _node_matrix(tmp_path)
    cap = _tunnel_capture(tmp_path)
    plain, _ = audit_source(m, [cap], store=FlowStore(tmp_path / "plain"))
    assert plain.overlay.num_rows == 0 and plain.flows == 2
    opened, _ = audit_source(m, [cap], store=FlowStore(tmp_path / "opened"), vxlan_ports=[VX_PORT])
    (o,) = opened.overlay.to_pylist()
    assert (o["rule_id"], o["tunnel"], o["tunnel_id"]) == ("vx", "vxlan", VNI)
    assert (o["outer_src_ip"], o["outer_dst_ip"]) == (NODE_A, NODE_B)
    assert (o["inner_dst_ip"], o["protocol"], o["dst_port"], o["flows"]) == (POD_B, 6, 8080, 1)
    # the outer flow is approved either way; the inner one is never a node-matrix finding
    assert plain.violations.num_rows == opened.violations.num_rows == 0
    assert opened.flows == 2 and opened.stats["overlay_flows"] == 1
    # the overlay holds the window's inner flows only: [since, until) as for any flow
    t0 = dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)
    st = FlowStore(tmp_path / "opened")
    late, _ = audit_source(m, store=st, since=t0 + dt.timedelta(seconds=60))
    early, _ = audit_source(m, store=st, until=t0)
    assert (late.overlay.num_rows, early.overlay.num_rows) == (0, 0)
    assert (late.flows, early.flows) == (0, 0)


def test_audit_source_reads_with_the_engine_given(tmp_path: Path) -> None:
    """The ingest engine asked for is the one that reads the captures: an unknown one is
    refused with the engines to choose from (flowaudit/choices.py)."""
    m = _node_matrix(tmp_path)
    cap = _tunnel_capture(tmp_path)
    with pytest.raises(CaptureError) as e:
        audit_source(m, [cap], engine="pyshark")
    assert str(e.value) == "unknown engine 'pyshark'; choose one of auto, fast, tshark"
    _, (rec,) = audit_source(m, [cap], engine="fast")
    assert rec.reader == "fast"


@pytest.mark.tshark
def test_audit_source_reads_with_tshark_when_asked(tmp_path: Path) -> None:
    m = _node_matrix(tmp_path)
    cap = _tunnel_capture(tmp_path)
    r, (rec,) = audit_source(m, [cap], engine="tshark")
    assert (rec.reader, rec.flows, r.flows) == ("tshark", 2, 2)


def _ssh_capture(tmp_path: Path) -> Path:
    """NODE_C opens SSH to NODE_A and NODE_B (approved) and to NODE_A:23 (not approved):
    three flows, each a SYN and its SYN-ACK."""
    frames = []
    for dst, port in ((NODE_A, 22), (NODE_B, 22), (NODE_A, 23)):
        frames += [
            tcp_frame(111, NODE_C, dst, 41000 + port, port, 0x02),
            tcp_frame(111, dst, NODE_C, port, 41000 + port, 0x12),
        ]
    return _pcap(tmp_path / "ssh.pcap", frames, start=1_700_000_100)


def test_audit_source_audits_exactly_the_captures_given(tmp_path: Path) -> None:
    """With captures, exactly their flows are audited, even in a store that holds other
    captures; without captures, the whole store."""
    m = _node_matrix(tmp_path)
    store = FlowStore(tmp_path / "store")
    tunnel, ssh = _tunnel_capture(tmp_path), _ssh_capture(tmp_path)
    first, (t_rec,) = audit_source(m, [tunnel], store=store)
    assert (first.flows, t_rec.flows) == (2, 2)
    r, (s_rec,) = audit_source(m, [ssh], store=store)
    assert [c.blake3 for c in store.captures()] == [t_rec.blake3, s_rec.blake3]
    assert r.flows == s_rec.flows == 3
    assert [x["name"] for x in r.captures] == ["ssh.pcap"]
    assert [(v["dst_ip"], v["dst_port"], v["reason"]) for v in r.violations.to_pylist()] == [
        (NODE_A, 23, "port-not-approved")
    ]
    whole, records = audit_source(m, store=store)
    assert whole.flows == 5 and [x.blake3 for x in records] == [t_rec.blake3, s_rec.blake3]
    assert [x["name"] for x in whole.captures] == ["vx.pcap", "ssh.pcap"]
    # rule usage: each (rule, protocol, responder port, initiator, responder) that carried
    # traffic, with its flows (rule_usage.sql), the frames' own tuples
    assert [tuple(u.values()) for u in whole.rule_usage.to_pylist()] == [
        ("ssh", 6, 22, NODE_C, NODE_A, 1),
        ("ssh", 6, 22, NODE_C, NODE_B, 1),
        ("vx", 17, VX_PORT, NODE_A, NODE_B, 1),
        ("vx", 17, VX_PORT, NODE_B, NODE_A, 1),
    ]


def test_audit_source_without_captures_reads_the_default_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No captures and no store: the default store (``flowaudit-data`` in the working
    directory); one with no capture ingested is refused, naming it, with what to run."""
    monkeypatch.chdir(tmp_path)
    m = _node_matrix(tmp_path)
    with pytest.raises(StoreError) as e:
        audit_source(m)
    assert e.value.message == f"{DEFAULT_STORE}: no flow store here"
    (tmp_path / DEFAULT_STORE / "manifest").mkdir(parents=True)
    with pytest.raises(StoreError) as e:
        audit_source(m)
    assert e.value.message == f"{DEFAULT_STORE}: the flow store is empty (no capture ingested)"
    assert e.value.hint == "run `flowaudit ingest CAPTURE --store DIR` first"
    _, (rec,) = audit_source(m, [_ssh_capture(tmp_path)], store=FlowStore(DEFAULT_STORE))
    r, records = audit_source(m)
    assert r.flows == 3 and [x.blake3 for x in records] == [rec.blake3]


def _lan_capture(tmp_path: Path) -> tuple[Path, dt.datetime]:
    """At 0 s an mDNS query (NODE_A:5353 → 224.0.0.251:5353, LAN control plane); at 10 s
    and 20 s NODE_C's SSH SYN to NODE_A and its SYN-ACK (approved by ``ssh``)."""
    start = 1_700_000_000
    frames = [
        udp_frame(NODE_A, "224.0.0.251", 5353, 5353, b"\x00" * 12),
        tcp_frame(111, NODE_C, NODE_A, 41022, 22, 0x02),
        tcp_frame(111, NODE_A, NODE_C, 22, 41022, 0x12),
    ]
    p = tmp_path / "lan.pcap"
    write_pcap(p, PCAP_HEADER, list(records_at(start, frames, step_us=10_000_000)))
    return p, dt.datetime.fromtimestamp(start, dt.UTC)


def test_audit_source_hands_the_window_strict_and_control_plane_on(tmp_path: Path) -> None:
    """``until``, ``strict`` and ``control_plane`` reach the audit: a flow is in the window
    when it starts before ``until``; mDNS to a multicast address is listed apart by the
    shipped control-plane list, a violation (``control-plane``) with ``strict``, and, with
    a list that lacks it, an ordinary violation (224.0.0.251 is no scope address:
    ``out-of-scope-address``, ARCHITECTURE.md)."""
    from flowaudit.audit.control_plane import load_control_plane

    m = _node_matrix(tmp_path)
    cap, t0 = _lan_capture(tmp_path)
    until = t0 + dt.timedelta(seconds=5)
    early, _ = audit_source(m, [cap], until=until)
    assert (early.window_end, early.flows) == (until, 1)
    plain, _ = audit_source(m, [cap])
    assert plain.flows == 2 and plain.violations.num_rows == 0
    assert (plain.stats["control_plane_flows"], plain.stats["strict"]) == (1, False)
    strict, _ = audit_source(m, [cap], strict=True)
    assert [(v["dst_ip"], v["reason"]) for v in strict.violations.to_pylist()] == [
        ("224.0.0.251", "control-plane")
    ]

    # the traffic shape (ARCHITECTURE.md): flows per (source side -> destination side),
    # approved / control plane / not approved; --strict counts control plane as not approved
    def shape(r: Any) -> dict[tuple[str, str], tuple[int, ...]]:
        cols = ("flows", "approved_flows", "control_plane_flows", "unapproved_flows")
        rows = r.traffic_shape.to_pylist()
        return {(x["src_side"], x["dst_side"]): tuple(x[c] for c in cols) for x in rows}

    assert shape(plain) == {("nodes", "multicast"): (1, 0, 1, 0), ("other", "nodes"): (1, 1, 0, 0)}
    assert shape(strict) == {("nodes", "multicast"): (1, 0, 0, 1), ("other", "nodes"): (1, 1, 0, 0)}
    only_vrrp = tmp_path / "cp.yaml"
    only_vrrp.write_text("to: [multicast]\nprotocols:\n  - kind: vrrp\n    protocol: 112\n")
    other, _ = audit_source(m, [cap], control_plane=load_control_plane(only_vrrp))
    assert other.control_plane.num_rows == 0
    assert [(v["dst_ip"], v["reason"]) for v in other.violations.to_pylist()] == [
        ("224.0.0.251", "out-of-scope-address")
    ]


def test_audit_source_spills_into_the_store_and_closes_the_engine_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit's DuckDB spills into ``<store>/.tmp/audit-<run>/``, removed when it ends
    (ARCHITECTURE.md, "Audit memory"); an engine given runs the SQL and is closed when the
    audit ends (``audit_source``'s contract)."""
    import duckdb

    from flowaudit.audit import engine as engine_module

    spills: list[tuple[Path | None, Path]] = []
    real = engine_module._spill_directory

    def recorded(root: Path | None) -> Path:
        d = real(root)
        spills.append((root, d))
        return d

    monkeypatch.setattr(engine_module, "_spill_directory", recorded)
    m = _node_matrix(tmp_path)
    store = FlowStore(tmp_path / "store")
    r, _ = audit_source(m, [_ssh_capture(tmp_path)], store=store)
    ((root, d),) = spills
    assert root == store.root and d.parent == store.root / ".tmp" and not d.exists()
    given = engine_module.Engine()
    again, _ = audit_source(m, store=store, sql_engine=given)
    assert again.violations.equals(r.violations)
    with pytest.raises(duckdb.ConnectionException):
        given.con.execute("SELECT 1")


def test_audit_source_reports_what_the_store_skipped(tmp_path: Path) -> None:
    """What the store's readers skip is a warning of the result, each named once: a
    manifest listing its flow file twice (read once, store_check.read_manifests)."""
    import json

    m = _node_matrix(tmp_path)
    store = FlowStore(tmp_path / "store")
    _, (rec,) = audit_source(m, [_ssh_capture(tmp_path)], store=store)
    man = store.root / "manifest" / f"{rec.blake3}.json"
    data = json.loads(man.read_text())
    (own,) = data["files"]
    data["files"].append(own)
    man.chmod(0o644)
    man.write_text(json.dumps(data))
    r, _ = audit_source(m, store=FlowStore(store.root))
    assert r.flows == 3
    assert r.stats["warnings"] == [
        f"{man}: lists {own} twice (read once); `flowaudit store check` explains it"
    ]


# ------------------------------------------------ a name holding a NUL (row by row)
T4, T5, LONE, P1 = "10.25.233.4", "10.25.233.5", "10.25.233.9", "10.99.0.1"
GHOST = "gh\x00ost"  # no matrix file can name a group so (GROUP_NAME): a matrix built in code


def _with_nul_name(m: Matrix) -> Matrix:
    """``m`` with its group ``ghost`` renamed ``GHOST`` everywhere."""

    def name(g: str) -> str:
        return GHOST if g == "ghost" else g

    groups = {name(k): dataclasses.replace(g, name=name(k)) for k, g in m.groups.items()}
    rules = tuple(
        dataclasses.replace(
            r,
            from_groups=tuple(map(name, r.from_groups)),
            to_groups=tuple(map(name, r.to_groups)),
        )
        for r in m.rules
    )
    return dataclasses.replace(m, groups=groups, rules=rules)


def test_a_group_name_holding_a_nul_is_worded_like_any_other(tmp_path: Path) -> None:
    """The texts mark where addresses go with NULs, so a matrix whose names hold one is
    worded violation by violation; what differs is still the documented text
    (ARCHITECTURE.md, "Nearest rule, honestly"): the groups of the nearest rule with the
    unconfigured ones named, or the address class and the unconfigured groups of the rules
    that would admit the flow."""
    plain = _matrix(tmp_path, {"web": [T4], "db": [T5], "lone": [LONE], "ghost": None}, [
        "id: app, from: [ghost, web], to: db, protocol: tcp, ports: 5432, purpose: p",
    ])  # fmt: skip
    m = _with_nul_name(plain)
    assert [g for g in m.groups if "\x00" in g] == [GHOST]
    rows = [
        flow(LONE, T5, 5432, sport=40001),  # a host of another group: nearest rule app
        flow(P1, T5, 5432, sport=40002),  # outside the scope: no near rule
        flow(T4, T5, 5432, sport=40003),  # approved
    ]
    unconfigured = f"{GHOST} has no addresses: supply --group"
    want = {
        (LONE, T5): ("app", f"src {LONE} not in {GHOST}/web ({unconfigured})"),
        (P1, T5): (None, f"{P1} is outside the scope subnets; {unconfigured}"),
    }
    r = run_audit(m, make_flows(rows))
    got: dict[tuple[str, str], Any] = {
        (v["src_ip"], v["dst_ip"]): (v["nearest_rule"], v["differences"])
        for v in r.violations.to_pylist()
    }
    assert got == want
    # the rest of each violation is that of the same matrix with a plain name
    same = run_audit(plain, make_flows(rows)).violations
    assert r.violations.drop_columns(["differences"]).equals(same.drop_columns(["differences"]))


def test_wording_per_key_refuses_a_name_holding_a_nul(tmp_path: Path) -> None:
    """Per key, what differs is worded with NULs where the addresses go and cut there into
    head / src / middle / dst / tail (violation_groups.sql fills the addresses in); a name
    holding a NUL would be cut too and name the wrong thing, so the per-key wording refuses
    it (``run_audit`` words such a matrix row by row, test above)."""
    import pyarrow as pa
    from flowrows import addr16

    from flowaudit.audit.run import _difference_rows, _matrix_texts_ok

    plain = _matrix(tmp_path, {"web": [T4], "db": [T5], "lone": [LONE], "ghost": None}, [
        "id: app, from: [ghost, web], to: db, protocol: tcp, ports: 5432, purpose: p",
    ])  # fmt: skip
    m = _with_nul_name(plain)
    assert (_matrix_texts_ok(plain), _matrix_texts_ok(m)) == (True, False)
    key = {
        "reason": "port-not-approved", "vlan_id": 111, "nearest_rule": "app", "protocol": 6,
        "dst_port": 5432, "src_cell": 3, "dst_cell": 5, "src_side": "lone", "dst_side": "db",
        "src_lo": addr16(LONE), "dst_lo": addr16(T5), "group_id": "0123456789abcdef",
    }  # fmt: skip
    keys = pa.Table.from_pylist([key])
    (row,) = _difference_rows(keys, plain)
    fields = ("reason", "vlan_id", "nearest_rule", "protocol", "dst_port", "src_cell", "dst_cell")
    text = " not in ghost/web (ghost has no addresses: supply --group)"
    assert row == (*(key[f] for f in fields), "src ", True, text, False, "", key["group_id"])
    with pytest.raises(ValueError, match="^a matrix name holds a NUL character$"):
        _difference_rows(keys, m)


# ------------------------------------------------------------------ what differs


def test_what_differs_for_an_icmp_code_inside_the_rules_codes(tmp_path: Path) -> None:
    """An ICMP rule limited to some codes (its "ports", matches.sql) names the code only
    when the flow's code is outside them; a code on a bound of the rule's codes is inside
    (bounds are inclusive, like port ranges)."""
    m = _matrix(tmp_path, {"web": [T4], "db": [T5], "lone": [LONE]}, [
        "id: ping, from: web, to: db, protocol: icmp, ports: [0, 3-5], purpose: p",
    ])  # fmt: skip
    rows = [flow(LONE, T5, code, proto=1, sport=8, t=code) for code in (0, 3, 5)]
    rows.append(flow(LONE, T5, 6, proto=1, sport=8, t=6))
    want = {
        0: f"src {LONE} not in web",
        3: f"src {LONE} not in web",
        5: f"src {LONE} not in web",
        6: f"src {LONE} not in web; icmp code 6 not in {{0, 3-5}}",
    }
    r = run_audit(m, make_flows(rows))
    got = {v["dst_port"]: (v["nearest_rule"], v["differences"]) for v in r.violations.to_pylist()}
    assert got == {code: ("ping", text) for code, text in want.items()}


def test_what_differs_for_a_rule_listing_ports_of_a_protocol_without_them(
    tmp_path: Path,
) -> None:
    """A flow of a protocol without ports (GRE: null ports, as the pcap reader writes them)
    counts as port 0 (rules/README.md): a GRE rule without `ports` (any) admits it, one that
    lists ports without 0 does not, and what differs says so (it matches in neither
    orientation). Found by the mutation run: the text was "matches in the other
    orientation only"."""
    m = _matrix(tmp_path, {"web": [T4], "db": [T5], "lone": [LONE]}, [
        "id: gre-any, from: web, to: db, protocol: 47, purpose: p",
        "id: gre-some, from: lone, to: db, protocol: 47, ports: [1, 80-90], purpose: p",
    ])  # fmt: skip
    rows = [
        flow(T4, T5, None, proto=47, sport=None, direction="first_packet"),
        flow(LONE, T5, None, proto=47, sport=None, direction="first_packet", t=1),
    ]
    r = run_audit(m, make_flows(rows))
    got = [(v["src_ip"], v["nearest_rule"], v["differences"]) for v in r.violations.to_pylist()]
    assert got == [(LONE, "gre-some", "protocol 47 has no ports: port 0 not in {1, 80-90}")]
    assert [u["rule_id"] for u in r.unused_rules.to_pylist()] == ["gre-some"]


# ------------------------------------------------------------------ address cells


def test_a_sliced_address_array_gets_exactly_its_own_texts_and_cells(tmp_path: Path) -> None:
    """``_address_texts`` reads the 16-byte addresses from the Arrow buffer itself: an
    array that is a slice of a larger one (an offset, values before and after it in the
    buffer) gives the text and cell of its own values only, in order (the cell: the last
    one starting at or before the address)."""
    import bisect

    import pyarrow as pa

    from flowaudit.audit.run import _address_texts, _cell_rows
    from flowaudit.matrix.model import addr_text

    m = _node_matrix(tmp_path)
    cells = _cell_rows(m)
    starts = [int.from_bytes(c[1], "big") for c in cells]
    values = sorted({s + d for s in starts[1:] for d in (-1, 0)} | {0, 2**128 - 1})
    assert len(values) > 12
    whole = pa.array([v.to_bytes(16, "big") for v in values], pa.binary(16))
    part = whole.slice(5, 4)
    assert (part.offset, len(part)) == (5, 4)
    texts, numbers = _address_texts(pa.chunked_array([part]), cells)
    want = values[5:9]
    assert texts.to_pylist() == [addr_text(v) for v in want]
    assert numbers.to_pylist() == [bisect.bisect_right(starts, v) - 1 for v in want]


def test_the_highest_address_as_a_group_is_a_cell_of_its_own(tmp_path: Path) -> None:
    """Cells cut the address space at every bound of a group (ARCHITECTURE.md, "Many
    conversations, few keys"), the top address included: a group holding only
    ffff:...:ffff gets the last cell, one address wide, with the group as its side; the
    cell before it is multicast (ff00::/8)."""
    from flowaudit.audit.run import _cell_rows

    top = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    m = _matrix(tmp_path, {"web": [T4], "edge": [top]}, [
        "id: x, from: web, to: edge, protocol: tcp, ports: 1, purpose: p",
    ])  # fmt: skip
    cells = _cell_rows(m)
    *_, (_, lo0, hi0, side0, cls0), (_, lo, hi, side, cls) = cells
    assert int.from_bytes(lo, "big") == int.from_bytes(hi, "big") == 2**128 - 1
    assert (side, cls) == ("edge", "multicast")
    assert int.from_bytes(hi0, "big") == 2**128 - 2 and (side0, cls0) == ("multicast",) * 2
