"""Enrichment: name what flagged traffic is (TLS SNI and certificate names, HTTP host,
SSH banners, DNS names) by dissecting only the flagged packets with tshark.

``enrich_result(result, captures)`` selects, for every violation, its packets from the
captures (``packet_select``, by the finding's key: VLAN, initiator, responder, protocol,
responder port, either direction, within first..last seen), writes them into ONE
temporary pcap, runs ONE tshark pass and maps each frame back to its finding (frame
number → the finding whose packet we wrote there). ``enrich_pcap`` is that core pass.

Work is capped: the first ``PACKETS_PER_CONN`` (16) packets of each connection (VLAN,
protocol, both endpoints) and at most ``CONNS_PER_FINDING`` (64) connections per
finding; handshakes, banners, requests and queries come first, so this keeps what
matters, but a certificate sent after a connection's 16th packet is not seen.

Services on non-standard ports (etcd TLS on 2379/2380, SSH on an odd port): the
payload's first bytes are peeked (TLS handshake record ``16 03``, ``SSH-``, an HTTP
method) and tshark is told ``-d tcp.port==P,tls|ssh|http`` for those ports, where P is
the responder side: the ClientHello's or request's destination; for SSH, whose both
sides send a banner, the port a SYN went to, else one of the findings' responder ports.
tshark is found through pyshark (lazy import in ``flowaudit.packets.tshark``, the only
pyshark user); its PDML output is read here, because the certificate's subject CN needs
the dissection tree, which pyshark's flattened fields and ``-T fields`` lose.
Missing tshark → ``UsageError`` with the install hint.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import struct
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from flowaudit._util import tools
from flowaudit.errors import FlowAuditError, UsageError
from flowaudit.packets.linklayer import ip_offset

if TYPE_CHECKING:
    from flowaudit.audit.result import AuditResult
    from flowaudit.evidence.select import FlowKey, ServiceKey

PACKETS_PER_CONN = 16
CONNS_PER_FINDING = 64
KEYS = ("tls_sni", "tls_cert_names", "http_host", "ssh_banner", "dns_names")
INSTALL_HINT = "apt-get install tshark"
DISPLAY_FILTER = (
    "tls.handshake.extensions_server_name || tls.handshake.certificate || http.host"
    " || ssh.protocol || dns.qry.name"
)
_SIMPLE = {
    "tls.handshake.extensions_server_name": "tls_sni",
    "http.host": "http_host",
    "ssh.protocol": "ssh_banner",
    "dns.qry.name": "dns_names",
    "x509ce.dNSName": "tls_cert_names",
}
_STANDARD = {("tls", 443), ("ssh", 22), ("http", 80), ("http", 8080)}
_METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ", b"CONNECT ",
            b"PATCH ", b"TRACE ")  # fmt: skip
CN_OID = "2.5.4.3"


def require_tshark() -> str:
    """The tshark executable, or UsageError with the install hint."""
    from flowaudit.packets.tshark import tshark_path

    try:
        return tshark_path()
    except FlowAuditError as e:
        raise UsageError("enrichment needs tshark: tshark not found", hint=INSTALL_HINT) from e


def tshark_available() -> bool:
    try:
        require_tshark()
    except UsageError:
        return False
    return True


# ----------------------------------------------------------------- payload peek
def _l4(link: int, d: bytes) -> tuple[int, int, int, bytes] | None:
    """(TCP flags, sport, dport, payload) of a TCP frame; None for anything else."""
    ip = ip_offset(link, d)
    if ip is None:
        return None
    ver, off = ip
    if ver == 4 and len(d) >= off + 20:
        ihl = (d[off] & 15) * 4
        if d[off + 9] != 6 or struct.unpack_from(">H", d, off + 6)[0] & 0x1FFF:
            return None
        t = off + ihl
    elif ver == 6 and len(d) >= off + 40:
        nh, t = d[off + 6], off + 40
        while nh in (0, 43, 60) and len(d) >= t + 2:
            nh, t = d[t], t + (d[t + 1] + 1) * 8
        if nh != 6:
            return None
    else:
        return None
    if len(d) < t + 20:
        return None
    sport, dport = struct.unpack_from(">HH", d, t)
    return d[t + 13], sport, dport, d[t + (d[t + 12] >> 4) * 4 :]


def decode_as_rules(path: Path, service_ports: Iterable[int] = ()) -> list[str]:
    """tshark ``-d`` rules for TLS/SSH/HTTP found by payload on non-standard TCP ports."""
    from flowaudit.evidence.slicer import iter_records

    hints = set(service_ports)
    found: dict[int, str] = {}
    servers: set[int] = set()  # ports a SYN went to (or a SYN-ACK came from)
    for rec in iter_records(path):
        got = _l4(rec.link, rec.data or b"")
        if got is None:
            continue
        flags, sp, dp, pl = got
        if flags & 0x12 == 0x02:
            servers.add(dp)
        elif flags & 0x12 == 0x12:
            servers.add(sp)
        if not pl:
            continue
        proto, port = None, None
        if pl[:1] == b"\x16" and pl[1:2] == b"\x03" and len(pl) > 5 and pl[5] in (1, 2):
            proto, port = "tls", dp if pl[5] == 1 else sp
        elif pl.startswith(b"SSH-"):
            proto = "ssh"
            known = servers | hints
            port = sp if sp in known and dp not in known else dp if dp in known else min(sp, dp)
        elif pl.startswith(_METHODS):
            proto, port = "http", dp
        if proto is None or port is None or (proto, port) in _STANDARD:
            continue
        if found.get(port) != "http":  # HTTP (e.g. CONNECT, then TLS inside) wins a port
            found[port] = proto
    return [f"tcp.port=={p},{proto}" for p, proto in sorted(found.items())]


# ----------------------------------------------------------------- the tshark pass
def _cert_names(certs: ET.Element) -> list[str]:
    """Subject CN and SAN dNSNames of the first (leaf) certificate of a Certificate message."""
    leaf = next(
        (f for f in certs.iter("field") if f.get("name") == "tls.handshake.certificate"), None
    )
    if leaf is None:
        return []
    names = [f.get("show", "") for f in leaf.iter("field") if f.get("name") == "x509ce.dNSName"]
    subject = next((f for f in leaf.iter("field") if f.get("name") == "x509af.subject"), None)
    if subject is not None:
        for rdn in subject.iter("field"):
            if rdn.get("name") != "x509if.RelativeDistinguishedName_item_element":
                continue
            kids = list(rdn.iter("field"))[1:]
            if any(k.get("name") == "x509if.oid" and k.get("show") == CN_OID for k in kids):
                for k in reversed(kids):
                    if k.get("name", "").startswith("x509sat.") and not list(k):
                        names.append(k.get("show", ""))
                        break
    return names


def _packet(pkt: ET.Element) -> tuple[int, dict[str, list[str]]]:
    frame = 0
    out: dict[str, list[str]] = defaultdict(list)
    for f in pkt.iter("field"):
        name = f.get("name")
        if name == "frame.number" or (name == "num" and not frame):
            frame = int(f.get("show", "0"))
        elif name in _SIMPLE and name != "x509ce.dNSName":
            out[_SIMPLE[name]].append(f.get("show", ""))
        elif name == "tls.handshake.certificates":
            out["tls_cert_names"].extend(_cert_names(f))
    return frame, out


def enrich_pcap(
    path: str | os.PathLike[str],
    frame_keys: Sequence[str] | None = None,
    *,
    service_ports: Iterable[int] = (),
) -> dict[str, dict[str, list[str]]]:
    """One tshark pass over a small pcap: {key: {"tls_sni": [...], ...}}.

    ``frame_keys[i]`` is the key of frame i+1 (e.g. a finding id); without it every
    frame counts under ``"*"``. Lists are de-duplicated and sorted; empty ones dropped.
    """
    exe = require_tshark()
    p = Path(path)
    cmd = [exe, "-r", str(p), "-n", "-T", "pdml", "-Y", DISPLAY_FILTER]
    for rule in decode_as_rules(p, service_ports):
        cmd += ["-d", rule]
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    proc, err = tools.start(cmd, "tshark")
    assert proc.stdout is not None
    try:
        for _, elem in ET.iterparse(proc.stdout, events=("end",)):
            if elem.tag != "packet":
                continue
            frame, vals = _packet(elem)
            elem.clear()
            key = "*" if frame_keys is None else frame_keys[frame - 1]
            for k, vs in vals.items():
                found[key][k].update(v.strip() for v in vs if v.strip())
    except ET.ParseError as e:
        proc.kill()
        proc.wait()
        raise UsageError(f"{p}: tshark output unreadable ({e}): {' '.join(err.lines())}") from e
    rc = proc.wait()
    if rc != 0:
        raise UsageError(
            f"{p}: tshark failed (exit {rc}) at byte offset 0: {' '.join(err.lines())}"
        )
    return {
        key: {k: sorted(vals[k]) for k in KEYS if vals.get(k)}
        for key, vals in sorted(found.items())
        if any(vals.values())
    }


# ----------------------------------------------------------------- selection + pass
def enrich_capped(
    captures: Sequence[Path],
    *,
    flows: Sequence[FlowKey] = (),
    services: Sequence[ServiceKey] = (),
    tag_names: dict[int, str],
    tmp: Path,
    engine: str = "auto",
) -> dict[str, dict[str, list[str]]]:
    """Select the keys' packets (capped) from ``captures`` into one pcap; one tshark pass."""
    from flowaudit.evidence.select import packet_batches, select_packets
    from flowaudit.evidence.slicer import SlicePart, write_slice

    parts: list[SlicePart] = []
    frame_keys: list[str] = []
    for p in captures:
        sel = select_packets(
            packet_batches(p, engine),
            flows,
            services,
            per_conn=PACKETS_PER_CONN,
            conns_per_tag=CONNS_PER_FINDING,
        )
        parts.append(sel.slice_part(p))
        frame_keys.extend(tag_names[t] for t in sel.tag)
    if not frame_keys:
        return {}
    dest = tmp / "flagged-packets.pcap"
    with open(dest, "wb") as f:
        write_slice(f, parts)
    ports = {f.b_port for f in flows} | {s.port for s in services}
    return enrich_pcap(dest, frame_keys, service_ports=ports)


def _addr(ip: str) -> tuple[int, int]:
    from flowaudit.evidence.select import addr_halves

    a = ipaddress.ip_address(ip)
    raw = a.packed if a.version == 6 else b"\0" * 10 + b"\xff\xff" + a.packed
    return addr_halves(raw)


def enrich_result(
    result: AuditResult, captures: Sequence[str | os.PathLike[str]], *, engine: str = "auto"
) -> AuditResult:
    """``result`` with ``enrichment`` = {finding id: {"tls_sni": [...], ...}} (module doc)."""
    from flowaudit._util.arrow import pylist
    from flowaudit._util.time import to_us
    from flowaudit.evidence.select import ServiceKey

    require_tshark()
    services: list[ServiceKey] = []
    names: dict[int, str] = {}
    for i, v in enumerate(pylist(result.violations)):
        services.append(
            ServiceKey(
                vlan=-1 if v["vlan_id"] is None else int(v["vlan_id"]),
                protocol=int(v["protocol"]),
                src=_addr(v["src_ip"]),
                dst=_addr(v["dst_ip"]),
                port=int(v["dst_port"] or 0),
                first_us=to_us(v["first_seen"]),
                last_us=to_us(v["last_seen"]),
                tag=i,
            )
        )
        names[i] = v["finding_id"]
    if not services:
        return dataclasses.replace(result, enrichment={})
    paths = list(dict.fromkeys(Path(c) for c in captures))
    with tempfile.TemporaryDirectory(prefix="flowaudit-enrich-") as tmp:
        found = enrich_capped(
            paths, services=services, tag_names=names, tmp=Path(tmp), engine=engine
        )
    return dataclasses.replace(result, enrichment=found)


__all__ = ["enrich_pcap", "enrich_result", "require_tshark", "tshark_available"]
