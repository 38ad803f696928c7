-- name: conversations
-- Each row is one conversation of the audit window: the flows that share
-- (vlan, initiator, responder, protocol, responder port). The initiator is certain when
-- the flow builder saw it (direction 'syn' or 'exporter'), when a TCP/UDP/SCTP flow goes
-- from an ephemeral port (>= 1024 and not a service port) to a well-known (< 1024) or
-- service port ($service_ports: a 65536-bit string, bit p set for a port the matrix
-- approves), or when an ICMP flow's
-- initiator sent the request of a request/response pair (echo, timestamp, information,
-- address mask; ICMPv6 echo). Otherwise it is uncertain and the initiator port is kept too
-- (ICMP: always, it is the initiator's type), so the reversed orientation can be tried. `native_vlan` marks untagged flows of a capture
-- that also holds tagged frames: on a trunk SPAN those come from the native VLAN, not
-- from the audited one. Parameters: $since, $until (timestamps or NULL).
-- Addresses stay 16-byte keys here (decoding 2 x N address strings was a fifth of the
-- audit's time); conversation_ids.sql adds their text and a conversation id.
CREATE OR REPLACE TEMP TABLE conv_raw AS
SELECT
    vlan_id,
    any_value(ip_version) AS ip_version,
    src_addr,
    dst_addr,
    protocol,
    dst_port,
    CASE WHEN certain AND protocol NOT IN (1, 58) THEN NULL ELSE src_port END AS alt_port,
    vlan_id IS NULL AND capture_tagged AS native_vlan,
    bool_or(NOT certain) AS uncertain,
    count(*)::BIGINT AS flows,
    -- counters are UBIGINT: summed per side (each sum is a HUGEINT, never overflows), then
    -- saturated at the BIGINT maximum (only a corrupt record counts that high)
    least(sum(src_packets) + sum(dst_packets), 9223372036854775807)::BIGINT AS packets,
    least(sum(src_bytes) + sum(dst_bytes), 9223372036854775807)::BIGINT AS bytes,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    count(*) FILTER (WHERE state IN ('S0', 'SH', 'RSTOS0')) AS attempted,
    count(*) FILTER (WHERE state IN ('REJ', 'RSTRH', 'SHR')) AS rejected,
    count(*) FILTER (WHERE protocol = 6
                 AND state IN ('S1', 'S2', 'S3', 'SF', 'RSTO', 'RSTR')) AS established,
    count(*) FILTER (WHERE state = 'OTH') AS midstream,
    count(*) FILTER (WHERE src_packets > 0 AND dst_packets > 0
                     AND state NOT IN ('REJ', 'RSTRH', 'RSTOS0')) AS answered,
    max(sampling) AS sampling
FROM (
    SELECT
        f.*,
        t.capture_id IS NOT NULL AS capture_tagged,
        coalesce(
            f.direction IN ('syn', 'exporter')
            OR (f.protocol IN (6, 17, 132) AND f.src_port >= 1024
                AND get_bit($service_ports::BIT, f.src_port) = 0
                AND (f.dst_port < 1024 OR get_bit($service_ports::BIT, f.dst_port) = 1))
            OR (f.protocol = 1 AND f.src_port IN (8, 13, 15, 17))
            OR (f.protocol = 58 AND f.src_port = 128),
            false) AS certain
    FROM flows AS f
    LEFT JOIN (
        SELECT DISTINCT capture_id FROM flows WHERE vlan_id IS NOT NULL
    ) AS t ON t.capture_id = f.capture_id

    WHERE ($since IS NULL OR f.last_seen >= $since)
      AND ($until IS NULL OR f.first_seen < $until)
)
GROUP BY vlan_id, src_addr, dst_addr, protocol, dst_port, alt_port, native_vlan;
