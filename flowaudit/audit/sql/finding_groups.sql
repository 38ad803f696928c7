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
)
SELECT
    k.group_id,
    any_value(k.reason) AS reason,
    any_value(k.src_side) AS src_side,
    any_value(k.dst_side) AS dst_side,
    any_value(k.protocol) AS protocol,
    any_value(k.dst_port) AS dst_port,
    list(k.finding_id ORDER BY k.bytes DESC, k.packets DESC, k.finding_id) AS findings,
    sum(k.flows)::BIGINT AS flows,
    sum(k.packets)::BIGINT AS packets,
    sum(k.bytes)::BIGINT AS bytes,
    any_value(t.distinct_initiators) AS distinct_initiators,
    any_value(t.distinct_responders) AS distinct_responders,
    min(k.first_seen) AS first_seen,
    max(k.last_seen) AS last_seen,
    any_value(t.top_initiators) AS top_initiators,
    any_value(t.top_responders) AS top_responders
FROM keyed AS k
JOIN tops AS t USING (group_id)
GROUP BY k.group_id
ORDER BY bytes DESC, packets DESC, flows DESC, reason, src_side, dst_side, protocol,
         dst_port NULLS FIRST, k.group_id;
