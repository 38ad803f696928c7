-- name: finding_flows
-- Each row is one flow of one violation (finding): the flows of the audit window whose
-- conversation (conversations.sql: vlan, initiator, responder, protocol, responder port,
-- initiator port when the initiator is uncertain, native-VLAN flag) no rule admits
-- (matches.sql), and whose conversation belongs to the finding's group (violations.sql:
-- vlan, initiator ip, responder ip, protocol, responder port). Needs the temp tables
-- conv and conv_match built by the audit's steps. Parameters: $since, $until and
-- $service_ports (as for conversations.sql), $vlan_id, $src_ip, $dst_ip, $protocol,
-- $dst_port (the finding's key; NULL vlan/port match NULL).
WITH f AS (
    SELECT
        fl.*,
        -- the same certainty and alt_port as conversations.sql
        CASE
            WHEN fl.protocol NOT IN (1, 58) AND coalesce(
                fl.direction IN ('syn', 'exporter')
                OR (fl.protocol IN (6, 17, 132) AND fl.src_port >= 1024
                    AND get_bit($service_ports::BIT, fl.src_port) = 0
                    AND (fl.dst_port < 1024 OR get_bit($service_ports::BIT, fl.dst_port) = 1)),
                false)
            THEN NULL
            ELSE fl.src_port
        END AS alt_port,
        fl.vlan_id IS NULL AND t.capture_id IS NOT NULL AS native_vlan
    FROM flows AS fl
    LEFT JOIN (
        SELECT DISTINCT capture_id FROM flows WHERE vlan_id IS NOT NULL
    ) AS t ON t.capture_id = fl.capture_id

    WHERE ($since IS NULL OR fl.last_seen >= $since)
      AND ($until IS NULL OR fl.first_seen < $until)
),
c AS (
    SELECT *
    FROM conv
    WHERE NOT EXISTS (SELECT 1 FROM conv_match AS m WHERE m.conv_id = conv.conv_id)
      AND vlan_id IS NOT DISTINCT FROM $vlan_id
      AND src_ip = $src_ip
      AND dst_ip = $dst_ip
      AND protocol = $protocol
      AND dst_port IS NOT DISTINCT FROM $dst_port
)
SELECT
    f.flow_id, f.vlan_id, f.src_ip, f.dst_ip, f.src_port, f.dst_port, f.protocol,
    f.first_seen, f.last_seen, f.src_packets, f.src_bytes, f.dst_packets, f.dst_bytes,
    f.state, f.direction, f.capture_id, f.src_addr, f.dst_addr
FROM f
JOIN c
  ON c.vlan_id IS NOT DISTINCT FROM f.vlan_id
 AND c.src_addr = f.src_addr
 AND c.dst_addr = f.dst_addr
 AND c.protocol = f.protocol
 AND c.dst_port IS NOT DISTINCT FROM f.dst_port
 AND c.alt_port IS NOT DISTINCT FROM f.alt_port
 AND c.native_vlan = f.native_vlan
ORDER BY f.capture_id, f.first_seen, f.flow_id, f.src_port;
