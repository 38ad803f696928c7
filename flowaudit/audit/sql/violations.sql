-- name: violations
-- Each row is a finding: traffic outside the approved matrix, grouped by
-- (vlan, initiator ip, responder ip, protocol, responder port), with its counters,
-- TCP state mix, the reason, and the nearest rule (fewest differences) for the
-- report to explain. An anti-join: conversations no rule admits in any orientation.
-- LAN control-plane conversations (conv_cp) are listed apart, unless $strict: then they
-- are violations with reason `control-plane`. Kept as the temp table violation_rows (within
-- the engine's memory limit, spilled beyond), unordered: violation_groups.sql orders them.
-- What depends only on where the addresses are (scope, groups, rules: the facts of the
-- reason and the nearest rule) is computed once per key (vlan, initiator cell, responder
-- cell, protocol, responder port), a cell standing for all its addresses (address_sides.sql):
-- a million findings to a million internet addresses share a few hundred keys. The first
-- statement keeps those facts per key of the unmatched conversations as the temp table
-- violation_keys (small), so the second joins each finding to its key once and its own
-- intermediate results are not kept twice.
CREATE OR REPLACE TEMP TABLE violation_keys AS
WITH keys AS (
    SELECT k.*, sc.lo AS src_addr, dc.lo AS dst_addr  -- each cell's first address
    FROM (
        SELECT DISTINCT vlan_id, src_cell, dst_cell, protocol, dst_port
        FROM conv AS c
        WHERE NOT EXISTS (SELECT 1 FROM conv_match AS m WHERE m.conv_id = c.conv_id)
    ) AS k
    JOIN cells AS sc ON sc.cell = k.src_cell
    JOIN cells AS dc ON dc.cell = k.dst_cell
),
facts AS (
    SELECT
        g.*,
        EXISTS (SELECT 1 FROM scope WHERE vlan IS NOT NULL) AS scoped_vlans,
        EXISTS (SELECT 1 FROM scope WHERE vlan = g.vlan_id) AS vlan_in_scope,
        EXISTS (SELECT 1 FROM scope WHERE g.src_addr BETWEEN lo AND hi)
            OR EXISTS (SELECT 1 FROM hosts WHERE g.src_addr BETWEEN lo AND hi) AS src_in_scope,
        EXISTS (SELECT 1 FROM scope WHERE g.dst_addr BETWEEN lo AND hi)
            OR EXISTS (SELECT 1 FROM hosts WHERE g.dst_addr BETWEEN lo AND hi) AS dst_in_scope,
        EXISTS (SELECT 1 FROM hosts WHERE g.src_addr BETWEEN lo AND hi) AS src_known,
        EXISTS (SELECT 1 FROM hosts WHERE g.dst_addr BETWEEN lo AND hi) AS dst_known,
        EXISTS (
            SELECT 1 FROM rules AS r
            WHERE r.protocol = g.protocol AND coalesce(g.dst_port, 0) BETWEEN r.port_lo AND r.port_hi
              AND g.src_addr BETWEEN r.dst_lo AND r.dst_hi
              AND g.dst_addr BETWEEN r.src_lo AND r.src_hi
        ) AS reverse_rule,
        EXISTS (
            SELECT 1 FROM rules AS r
            WHERE r.protocol <> g.protocol AND coalesce(g.dst_port, 0) BETWEEN r.port_lo AND r.port_hi
              AND g.src_addr BETWEEN r.src_lo AND r.src_hi
              AND g.dst_addr BETWEEN r.dst_lo AND r.dst_hi
        ) AS other_protocol_rule,
        EXISTS (
            SELECT 1 FROM rules AS r
            WHERE g.src_addr BETWEEN r.src_lo AND r.src_hi
              AND g.dst_addr BETWEEN r.dst_lo AND r.dst_hi
        ) AS pair_has_rules,
        EXISTS (
            SELECT 1 FROM rules AS r
            WHERE r.protocol = g.protocol
              AND g.src_addr BETWEEN r.src_lo AND r.src_hi
              AND g.dst_addr BETWEEN r.dst_lo AND r.dst_hi
        ) AS pair_has_protocol
    FROM keys AS g
),
scored AS (
    -- each violation against each rule, in either orientation; a rule is a candidate
    -- "nearest rule" only when both hosts are in scope, it shares the initiator's or the
    -- responder's group (in one orientation), and it differs in at most two of (source,
    -- destination, protocol, port) there (the swapped orientation counts one more)
    SELECT
        v.vlan_id, v.src_cell, v.dst_cell, v.protocol, v.dst_port,
        r.rule_id,
        coalesce(v.src_addr BETWEEN r.src_lo AND r.src_hi, false) AS fs,
        coalesce(v.dst_addr BETWEEN r.dst_lo AND r.dst_hi, false) AS fd,
        coalesce(v.src_addr BETWEEN r.dst_lo AND r.dst_hi, false) AS rs,
        coalesce(v.dst_addr BETWEEN r.src_lo AND r.src_hi, false) AS rd,
        (v.protocol <> r.protocol)::INTEGER AS proto_diff,
        (v.protocol IN (6, 17, 132)
         AND coalesce(v.dst_port, 0) NOT BETWEEN r.port_lo AND r.port_hi)::INTEGER AS port_diff,
        v.src_in_scope AND v.dst_in_scope AS in_scope,
        -- weights: a host outside the rule's group 4, initiator/responder swapped 1,
        -- another protocol 1, a port outside the rule's ports 2
        least(
            4 * coalesce(NOT (v.src_addr BETWEEN r.src_lo AND r.src_hi), true)::INTEGER
              + 4 * coalesce(NOT (v.dst_addr BETWEEN r.dst_lo AND r.dst_hi), true)::INTEGER,
            1 + 4 * coalesce(NOT (v.src_addr BETWEEN r.dst_lo AND r.dst_hi), true)::INTEGER
              + 4 * coalesce(NOT (v.dst_addr BETWEEN r.src_lo AND r.src_hi), true)::INTEGER
        )
          + (v.protocol <> r.protocol)::INTEGER
          + 2 * (coalesce(v.dst_port, 0) NOT BETWEEN r.port_lo AND r.port_hi)::INTEGER AS score,
        CASE
            WHEN coalesce(v.dst_port, 0) BETWEEN r.port_lo AND r.port_hi THEN 0
            ELSE least(abs(coalesce(v.dst_port, 0)::INTEGER - r.port_lo::INTEGER),
                       abs(coalesce(v.dst_port, 0)::INTEGER - r.port_hi::INTEGER))
        END AS port_distance
    FROM facts AS v
    JOIN rules AS r
      -- only rules that share a host group with the finding, in either orientation
      ON v.src_in_scope AND v.dst_in_scope
     AND (v.src_addr BETWEEN r.src_lo AND r.src_hi OR v.dst_addr BETWEEN r.dst_lo AND r.dst_hi
          OR v.src_addr BETWEEN r.dst_lo AND r.dst_hi OR v.dst_addr BETWEEN r.src_lo AND r.src_hi)
),
candidates AS (
    SELECT *
    FROM scored
    WHERE in_scope
      AND (((fs OR fd) AND (NOT fs)::INTEGER + (NOT fd)::INTEGER + proto_diff + port_diff <= 2)
        OR ((rs OR rd)
            AND 1 + (NOT rs)::INTEGER + (NOT rd)::INTEGER + proto_diff + port_diff <= 2))
),
nearest AS (
    SELECT
        vlan_id, src_cell, dst_cell, protocol, dst_port,
        arg_min(rule_id, (score, port_distance, rule_id)) AS nearest_rule
    FROM candidates
    GROUP BY vlan_id, src_cell, dst_cell, protocol, dst_port
)
SELECT f.*, n.nearest_rule FROM facts AS f
LEFT JOIN nearest AS n
  ON n.vlan_id IS NOT DISTINCT FROM f.vlan_id AND n.src_cell = f.src_cell
 AND n.dst_cell = f.dst_cell AND n.protocol = f.protocol
 AND n.dst_port IS NOT DISTINCT FROM f.dst_port;
CREATE OR REPLACE TEMP TABLE violation_rows AS
WITH unmatched AS (
    SELECT c.*, cp.conv_id IS NOT NULL AS control_plane
    FROM conv AS c
    LEFT JOIN conv_cp AS cp USING (conv_id)
    WHERE NOT EXISTS (SELECT 1 FROM conv_match AS m WHERE m.conv_id = c.conv_id)
      AND (cp.conv_id IS NULL OR $strict)
),
-- conversations whose finding key (vlan, initiator, responder, protocol, port) holds
-- more than one conversation: an uncertain one is kept per initiator port (alt_port), an
-- untagged one per native_vlan; any other conversation is a finding on its own
shared AS (
    SELECT DISTINCT vlan_id, src_addr, dst_addr, protocol, dst_port
    FROM conv
    WHERE alt_port IS NOT NULL OR vlan_id IS NULL
),
grouped AS (
    SELECT
        vlan_id, ip_version, src_ip, dst_ip, src_addr, dst_addr, protocol, dst_port,
        uncertain AS direction_uncertain, native_vlan, control_plane, flows, packets, bytes,
        first_seen, last_seen, attempted, rejected, established, midstream, answered,
        sampling, src_side, dst_side, src_cell, dst_cell
    FROM unmatched AS u
    WHERE u.alt_port IS NULL AND u.vlan_id IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM shared AS s
          WHERE s.vlan_id = u.vlan_id AND s.src_addr = u.src_addr AND s.dst_addr = u.dst_addr
            AND s.protocol = u.protocol AND s.dst_port IS NOT DISTINCT FROM u.dst_port)
    UNION ALL
    SELECT
        vlan_id, ip_version, src_ip, dst_ip,
        any_value(src_addr) AS src_addr, any_value(dst_addr) AS dst_addr,
        protocol, dst_port,
        bool_or(uncertain) AS direction_uncertain,
        bool_or(native_vlan) AS native_vlan,
        bool_or(control_plane) AS control_plane,
        sum(flows)::BIGINT AS flows,
        least(sum(packets), 9223372036854775807)::BIGINT AS packets,  -- saturated, as in
        least(sum(bytes), 9223372036854775807)::BIGINT AS bytes,      -- conversations.sql
        min(first_seen) AS first_seen, max(last_seen) AS last_seen,
        sum(attempted)::BIGINT AS attempted, sum(rejected)::BIGINT AS rejected,
        sum(established)::BIGINT AS established, sum(midstream)::BIGINT AS midstream,
        sum(answered)::BIGINT AS answered, max(sampling) AS sampling,
        -- one address, one side and cell
        any_value(src_side) AS src_side, any_value(dst_side) AS dst_side,
        any_value(src_cell) AS src_cell, any_value(dst_cell) AS dst_cell
    FROM unmatched AS u
    WHERE u.alt_port IS NOT NULL OR u.vlan_id IS NULL
       OR EXISTS (
          SELECT 1 FROM shared AS s
          WHERE s.vlan_id = u.vlan_id AND s.src_addr = u.src_addr AND s.dst_addr = u.dst_addr
            AND s.protocol = u.protocol AND s.dst_port IS NOT DISTINCT FROM u.dst_port)
    GROUP BY vlan_id, ip_version, src_ip, dst_ip, protocol, dst_port
),
reasoned AS (
    SELECT
        c.*,
        f.nearest_rule,
        CASE
            WHEN c.control_plane THEN 'control-plane'
            WHEN c.native_vlan THEN 'off-vlan'
            WHEN f.vlan_id IS NOT NULL AND f.scoped_vlans AND NOT f.vlan_in_scope THEN 'off-vlan'
            WHEN NOT f.src_in_scope OR NOT f.dst_in_scope THEN 'out-of-scope-address'
            WHEN NOT f.src_known THEN 'unknown-source'
            WHEN NOT f.dst_known THEN 'unknown-destination'
            WHEN f.reverse_rule THEN 'reverse-direction'
            WHEN f.other_protocol_rule OR (f.pair_has_rules AND NOT f.pair_has_protocol)
                THEN 'protocol-not-approved'
            ELSE 'port-not-approved'
        END AS reason
    FROM grouped AS c
    JOIN violation_keys AS f
      ON f.vlan_id IS NOT DISTINCT FROM c.vlan_id AND f.src_cell = c.src_cell
     AND f.dst_cell = c.dst_cell AND f.protocol = c.protocol
     AND f.dst_port IS NOT DISTINCT FROM c.dst_port
)
SELECT
    substr(sha256(concat_ws('|', 'flowaudit-violation-v1', coalesce(v.vlan_id::VARCHAR, '-'),
                            v.src_ip, v.dst_ip, v.protocol::VARCHAR,
                            coalesce(v.dst_port::VARCHAR, '-'))), 1, 16) AS finding_id,
    v.reason,
    v.vlan_id, v.ip_version, v.src_ip, v.dst_ip, v.protocol, v.dst_port,
    v.direction_uncertain, v.native_vlan,
    v.flows, v.packets, v.bytes, v.first_seen, v.last_seen,
    v.attempted, v.rejected, v.established, v.midstream, v.answered, v.sampling,
    v.nearest_rule, v.src_side, v.dst_side, v.src_cell, v.dst_cell
FROM reasoned AS v;
