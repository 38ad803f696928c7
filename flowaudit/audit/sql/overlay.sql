-- name: overlay
-- What the tunnels carried: the inner flows of the window (`inner_flows`: VXLAN, Geneve,
-- GRE, see flow_views.sql), one row per (rule that admits the outer flow, tunnel, tunnel
-- id, outer initiator, outer responder, inner source network, inner destination, protocol,
-- responder port). The rule comes from the outer flow the inner flow's first packet rode
-- in (`outer_flow_id` = its Community ID), through the audit's own match (conv, conv_match);
-- NULL when no rule admits it (the outer flow is then a violation itself; with several
-- rules, the first by id). The inner source is grouped by /24 (IPv4; IPv6 by address).
-- With the matrix's pod allow list ($pods true; relations pod_cidrs, pod_allow), an inner
-- flow between two pod addresses on an allowed protocol and responder port is approved and
-- any other one has reason 'overlay-not-approved' and a finding id; without it every row
-- is informational (reason and finding_id NULL).
-- Parameters: $since, $until (timestamps or NULL), $pods (boolean).
WITH i AS (
    SELECT *
    FROM inner_flows
    WHERE ($since IS NULL OR last_seen >= $since)
      AND ($until IS NULL OR first_seen < $until)
),
o AS (
    SELECT DISTINCT flow_id, vlan_id, src_addr, dst_addr, protocol, dst_port
    FROM flows
    WHERE flow_id IN (SELECT outer_flow_id FROM i)
),
outer_rule AS (
    SELECT o.flow_id, min(m.rule_id) AS rule_id
    FROM o
    JOIN conv AS c
      ON c.vlan_id IS NOT DISTINCT FROM o.vlan_id
     AND c.src_addr = o.src_addr
     AND c.dst_addr = o.dst_addr
     AND c.protocol = o.protocol
     AND c.dst_port IS NOT DISTINCT FROM o.dst_port
    JOIN conv_match AS m ON m.conv_id = c.conv_id
    GROUP BY o.flow_id
),
g AS (
    SELECT
        r.rule_id,
        i.tunnel,
        i.tunnel_id,
        i.outer_src_ip,
        i.outer_dst_ip,
        CASE WHEN i.ip_version = 4
             THEN split_part(i.src_ip, '.', 1) || '.' || split_part(i.src_ip, '.', 2) || '.'
                  || split_part(i.src_ip, '.', 3) || '.0/24'
             ELSE i.src_ip END AS inner_src_ip,
        i.dst_ip AS inner_dst_ip,
        i.protocol,
        i.dst_port,
        i.src_packets,
        i.dst_packets,
        i.src_bytes,
        i.dst_bytes,
        i.first_seen,
        i.last_seen,
        CASE
            WHEN NOT $pods THEN NULL
            WHEN EXISTS (SELECT 1 FROM pod_cidrs AS p WHERE i.src_addr BETWEEN p.lo AND p.hi)
             AND EXISTS (SELECT 1 FROM pod_cidrs AS p WHERE i.dst_addr BETWEEN p.lo AND p.hi)
             AND EXISTS (SELECT 1 FROM pod_allow AS a
                         WHERE a.protocol = i.protocol
                           AND coalesce(i.dst_port, 0) BETWEEN a.port_lo AND a.port_hi)
            THEN NULL
            ELSE 'overlay-not-approved'
        END AS reason
    FROM i
    LEFT JOIN outer_rule AS r ON r.flow_id = i.outer_flow_id
)
SELECT
    CASE WHEN reason IS NOT NULL THEN
        substr(sha256(concat_ws('|', 'flowaudit-overlay-v1', tunnel,
                                coalesce(tunnel_id::VARCHAR, '-'), inner_src_ip, inner_dst_ip,
                                protocol::VARCHAR, coalesce(dst_port::VARCHAR, '-'))), 1, 16)
    END AS finding_id,
    reason,
    rule_id, tunnel, tunnel_id, outer_src_ip, outer_dst_ip, inner_src_ip, inner_dst_ip,
    protocol, dst_port,
    count(*)::BIGINT AS flows,
    -- counters are UBIGINT: summed per side (a HUGEINT each), then saturated
    least(sum(src_packets) + sum(dst_packets), 9223372036854775807)::BIGINT AS packets,
    least(sum(src_bytes) + sum(dst_bytes), 9223372036854775807)::BIGINT AS bytes,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen
FROM g
GROUP BY reason, rule_id, tunnel, tunnel_id, outer_src_ip, outer_dst_ip, inner_src_ip,
         inner_dst_ip, protocol, dst_port
ORDER BY reason NULLS LAST, rule_id NULLS LAST, tunnel, tunnel_id, outer_src_ip, outer_dst_ip, inner_src_ip,
         inner_dst_ip, protocol, dst_port NULLS FIRST;
