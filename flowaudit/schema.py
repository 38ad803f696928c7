"""THE flow record (schema v1): the contract between readers and the audit.

One row per bidirectional flow; ``src`` is the initiator, ``dst`` the responder.
See DESIGN.md "The flow record". Columns after ``sampling`` are flowaudit's
documented extensions (ARCHITECTURE.md): they are nullable and readers that do
not know them leave them null.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

SCHEMA_VERSION = 1

TS = pa.timestamp("us", tz="UTC")

FLOW_SCHEMA = pa.schema(
    [
        pa.field("flow_id", pa.string(), nullable=False),  # Community ID v1 "1:..."
        pa.field("source_kind", pa.string(), nullable=False),
        pa.field("capture_id", pa.string(), nullable=False),  # BLAKE3-256 of the capture
        pa.field("vlan_id", pa.int16()),  # outermost 802.1Q/802.1ad id, null = untagged
        pa.field("ip_version", pa.int8(), nullable=False),
        pa.field("src_ip", pa.string(), nullable=False),
        pa.field("dst_ip", pa.string(), nullable=False),
        # sortable form: 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d)
        pa.field("src_addr", pa.binary(16), nullable=False),
        pa.field("dst_addr", pa.binary(16), nullable=False),
        pa.field("protocol", pa.uint8(), nullable=False),
        pa.field("src_port", pa.uint16()),  # ICMP: type (Community ID mapping)
        pa.field("dst_port", pa.uint16()),  # ICMP: code (Community ID mapping)
        pa.field("first_seen", TS, nullable=False),
        pa.field("last_seen", TS, nullable=False),
        pa.field("src_packets", pa.uint64(), nullable=False),
        pa.field("src_bytes", pa.uint64(), nullable=False),  # wire (orig) frame length
        pa.field("dst_packets", pa.uint64(), nullable=False),
        pa.field("dst_bytes", pa.uint64(), nullable=False),
        pa.field("tcp_flags_src", pa.uint8(), nullable=False),
        pa.field("tcp_flags_dst", pa.uint8(), nullable=False),
        pa.field("state", pa.string(), nullable=False),  # Zeek conn_state
        pa.field("direction", pa.string(), nullable=False),
        pa.field("sampling", pa.uint32(), nullable=False),
        # --- extensions (nullable) ---
        pa.field("src_ip_bytes", pa.uint64()),  # IP-layer bytes, comparable to Zeek *_ip_bytes
        pa.field("dst_ip_bytes", pa.uint64()),
        pa.field("exporter", pa.string()),  # NetFlow/IPFIX exporter address
        pa.field("observation_domain", pa.uint32()),  # v9 source id / IPFIX domain
        pa.field("verdict", pa.string()),  # Hubble verdict
        pa.field("drop_reason", pa.string()),  # Hubble drop reason
        # inner flows of a tunnel (VXLAN, Geneve, GRE): null on every other flow
        pa.field("tunnel", pa.string()),  # vxlan, geneve, gre
        pa.field("tunnel_id", pa.uint32()),  # VNI / GRE key
        pa.field("outer_src_ip", pa.string()),  # the node that carried the initiator's packets
        pa.field("outer_dst_ip", pa.string()),
        pa.field("outer_flow_id", pa.string()),  # Community ID of the outer UDP/GRE flow
    ]
)

#: nullable columns added to schema v1 after stores were written without them: a flow file
#: lacking some of them is still schema v1 (its readers see null there)
ADDED_COLUMNS = ("tunnel", "tunnel_id", "outer_src_ip", "outer_dst_ip", "outer_flow_id")

#: one line of meaning per column of the ``flows`` view (``flowaudit query --describe``):
#: every FLOW_SCHEMA column, then ``date``, the store's Hive partition column
FLOW_DESCRIPTIONS: dict[str, str] = {
    "flow_id": "Community ID v1 (1:...), the join key with Zeek, Suricata, Arkime",
    "source_kind": "where the flow came from: pcap, pcapng, netflow5, netflow9, ipfix, "
    "nfcapd, zeek, hubble",
    "capture_id": "BLAKE3-256 (hex, as b3sum prints it) of the capture or record file the "
    "flow was read from",
    "vlan_id": "outermost 802.1Q/802.1ad VLAN id; null when untagged",
    "ip_version": "4 or 6",
    "src_ip": "initiator address as text (dotted quad / RFC 5952): use this to read or match",
    "dst_ip": "responder address as text (dotted quad / RFC 5952): use this to read or match",
    "src_addr": "initiator address as 16 sortable bytes (IPv4 as ::ffff:a.b.c.d), for "
    "range comparisons with rules/hosts/scope lo..hi; shown as 32 hex digits",
    "dst_addr": "responder address as 16 sortable bytes (IPv4 as ::ffff:a.b.c.d), for "
    "range comparisons with rules/hosts/scope lo..hi; shown as 32 hex digits",
    "protocol": "IANA protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6)",
    "src_port": "initiator port; for ICMP the type (Community ID mapping); null without ports",
    "dst_port": "responder port; for ICMP the code (Community ID mapping); null without ports",
    "first_seen": "time of the flow's first packet (UTC, µs)",
    "last_seen": "time of the flow's last packet (UTC, µs)",
    "src_packets": "packets from the initiator",
    "src_bytes": "bytes from the initiator: on-the-wire frame lengths (pcap), as exported "
    "(NetFlow), IP bytes (Zeek), 0 (Hubble); sum() of it is a HUGEINT",
    "dst_packets": "packets from the responder",
    "dst_bytes": "bytes from the responder (as src_bytes)",
    "tcp_flags_src": "OR of the TCP flags the initiator sent (FIN 1, SYN 2, RST 4, PSH 8, "
    "ACK 16, URG 32)",
    "tcp_flags_dst": "OR of the TCP flags the responder sent",
    "state": "Zeek conn_state: S0 attempt unanswered, REJ rejected, SF normal, S1 "
    "established not closed, RSTO, RSTR, SH, OTH mid-stream ...",
    "direction": "how the initiator was decided: syn, first_packet, service_port, exporter",
    "sampling": "1 for captures; the exporter's sampling interval for NetFlow",
    "src_ip_bytes": "IP-layer bytes from the initiator (comparable to Zeek orig_ip_bytes); "
    "null when the reader does not know them",
    "dst_ip_bytes": "IP-layer bytes from the responder; null when unknown",
    "exporter": "NetFlow/IPFIX exporter address; null for other sources",
    "observation_domain": "NetFlow v9 source id / IPFIX observation domain; null otherwise",
    "verdict": "Hubble verdict (FORWARDED, DROPPED, ...); null for other sources",
    "drop_reason": "Hubble drop reason; null for other sources",
    "tunnel": "inner flow of a tunnel: vxlan, geneve or gre (its addresses are the inner, "
    "pod, ones; the audit never matches them against the node matrix); null otherwise",
    "tunnel_id": "VXLAN/Geneve VNI or GRE key of an inner flow; null otherwise",
    "outer_src_ip": "inner flow: the outer address that carried the initiator's packets "
    "(the first packet's), e.g. the sending node",
    "outer_dst_ip": "inner flow: the outer address the initiator's packets went to",
    "outer_flow_id": "inner flow: Community ID of the outer UDP/GRE flow that carried its "
    "first packet (join with flow_id)",
    "date": "the store's partition: UTC day of first_seen (Hive date=YYYY-MM-DD)",
}

#: the column a store's ``flows`` view adds after FLOW_SCHEMA (its Hive partition)
PARTITION_FIELD = pa.field("date", pa.date32())

SOURCE_KINDS = ("pcap", "pcapng", "netflow5", "netflow9", "ipfix", "nfcapd", "zeek", "hubble")
DIRECTIONS = ("syn", "first_packet", "service_port", "exporter")


def empty_flows() -> pa.Table:
    """No flows is an empty table with the declared schema, never None."""
    from flowaudit._util.arrow import empty_table

    return empty_table(FLOW_SCHEMA)


def validate_flows(table: pa.Table | pa.RecordBatch) -> pa.Table:
    """Return ``table`` cast to FLOW_SCHEMA (column order and types), or raise ValueError."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    missing = [f.name for f in FLOW_SCHEMA if f.name not in table.column_names]
    extra = [n for n in table.column_names if FLOW_SCHEMA.get_field_index(n) < 0]
    if extra:
        raise ValueError(f"flow table has columns outside schema v1: {extra}")
    cols: list[Any] = []
    for f in FLOW_SCHEMA:
        if f.name in missing:
            if not f.nullable:
                raise ValueError(f"flow table lacks required column {f.name!r}")
            cols.append(pa.nulls(table.num_rows, f.type))
        else:
            cols.append(table.column(f.name).cast(f.type))
    out = pa.Table.from_arrays(cols, schema=FLOW_SCHEMA)
    out.validate(full=False)
    return out
