-- name: finding_groups
-- Each row is a finding group: the violations (`violation_rows`, from violations.sql) that
-- share (reason, source side, destination side, protocol, responder port), a side being the
-- smallest matrix group holding the address, else its address class (address_sides.sql).
-- The group id is a hash of that key, like finding ids: stable across windows. `findings`
-- lists the member finding ids, largest first; `top_initiators` / `top_responders` the
-- three addresses that moved the most bytes on each side. The key is hashed once per group.
WITH g AS (
    SELECT
        k.*,
        substr(sha256(concat_ws('|', 'flowaudit-group-v1', reason, src_side, dst_side,
                                protocol::VARCHAR, coalesce(dst_port::VARCHAR, '-'))),
               1, 16) AS group_id
    FROM (SELECT DISTINCT reason, src_side, dst_side, protocol, dst_port
          FROM violation_rows) AS k
),
keyed AS (
    SELECT
        g.group_id, v.finding_id, v.reason, v.src_side, v.dst_side, v.protocol, v.dst_port,
        v.src_ip, v.dst_ip, v.flows, v.packets, v.bytes, v.first_seen, v.last_seen
    FROM violation_rows AS v
    JOIN g
      ON g.reason = v.reason AND g.src_side = v.src_side AND g.dst_side = v.dst_side
     AND g.protocol = v.protocol AND g.dst_port IS NOT DISTINCT FROM v.dst_port
),
by_src AS (
    SELECT group_id, src_ip AS ip, sum(bytes) AS bytes FROM keyed GROUP BY group_id, src_ip
),
by_dst AS (
    SELECT group_id, dst_ip AS ip, sum(bytes) AS bytes FROM keyed GROUP BY group_id, dst_ip
),
tops AS (
    SELECT
        s.group_id,
        s.top_initiators,
        s.distinct_initiators,
        d.top_responders,
        d.distinct_responders
    FROM (
        SELECT group_id, list(ip ORDER BY bytes DESC, ip)[1:3] AS top_initiators,
               count(*)::BIGINT AS distinct_initiators
        FROM by_src GROUP BY group_id
    ) AS s
    JOIN (
        SELECT group_id, list(ip ORDER BY bytes DESC, ip)[1:3] AS top_responders,
               count(*)::BIGINT AS distinct_responders
        FROM by_dst GROUP BY group_id
    ) AS d USING (group_id)
),
totals AS (
    SELECT
        group_id,
        any_value(reason) AS reason,
        any_value(src_side) AS src_side,
        any_value(dst_side) AS dst_side,
        any_value(protocol) AS protocol,
        any_value(dst_port) AS dst_port,
        list(finding_id ORDER BY bytes DESC, packets DESC, finding_id) AS findings,
        sum(flows)::BIGINT AS flows,
        sum(packets)::BIGINT AS packets,
        sum(bytes)::BIGINT AS bytes,
        min(first_seen) AS first_seen,
        max(last_seen) AS last_seen
    FROM keyed
    GROUP BY group_id
)
SELECT
    k.group_id, k.reason, k.src_side, k.dst_side, k.protocol, k.dst_port, k.findings,
    k.flows, k.packets, k.bytes, t.distinct_initiators, t.distinct_responders,
    k.first_seen, k.last_seen, t.top_initiators, t.top_responders
FROM totals AS k
JOIN tops AS t USING (group_id)
ORDER BY k.bytes DESC, k.packets DESC, k.flows DESC, k.reason, k.src_side, k.dst_side,
         k.protocol, k.dst_port NULLS FIRST, k.group_id;
