-- name: finding_groups
-- Each row is a finding group: the violations (`violation_rows`, from violations.sql) that
-- share (reason, source side, destination side, protocol, responder port), a side being the
-- smallest matrix group holding the address, else its address class (address_sides.sql).
-- The group id is a hash of that key, like finding ids: stable across windows. `findings`
-- lists the member finding ids, largest first; `top_initiators` / `top_responders` the
-- three addresses that moved the most bytes on each side (arg_min over (-bytes, ip) with
-- n = 3: the three smallest keys, without sorting every address of a group). The key is
-- hashed once per group; the violations are aggregated by the key itself (no join of
-- every violation to its group id).
WITH by_src AS (
    SELECT reason, src_side, dst_side, protocol, dst_port, src_ip AS ip, sum(bytes) AS bytes
    FROM violation_rows
    GROUP BY reason, src_side, dst_side, protocol, dst_port, src_ip
),
by_dst AS (
    SELECT reason, src_side, dst_side, protocol, dst_port, dst_ip AS ip, sum(bytes) AS bytes
    FROM violation_rows
    GROUP BY reason, src_side, dst_side, protocol, dst_port, dst_ip
),
tops_src AS (
    SELECT reason, src_side, dst_side, protocol, dst_port,
           arg_min(ip, (-bytes, ip), 3) AS top_initiators,
           count(*)::BIGINT AS distinct_initiators
    FROM by_src GROUP BY reason, src_side, dst_side, protocol, dst_port
),
tops_dst AS (
    SELECT reason, src_side, dst_side, protocol, dst_port,
           arg_min(ip, (-bytes, ip), 3) AS top_responders,
           count(*)::BIGINT AS distinct_responders
    FROM by_dst GROUP BY reason, src_side, dst_side, protocol, dst_port
),
totals AS (
    SELECT
        reason, src_side, dst_side, protocol, dst_port,
        substr(sha256(concat_ws('|', 'flowaudit-group-v1', reason, src_side, dst_side,
                                protocol::VARCHAR, coalesce(dst_port::VARCHAR, '-'))),
               1, 16) AS group_id,
        list(finding_id ORDER BY bytes DESC, packets DESC, finding_id) AS findings,
        sum(flows)::BIGINT AS flows,
        sum(packets)::BIGINT AS packets,
        sum(bytes)::BIGINT AS bytes,
        min(first_seen) AS first_seen,
        max(last_seen) AS last_seen
    FROM violation_rows
    GROUP BY reason, src_side, dst_side, protocol, dst_port
)
SELECT
    k.group_id, k.reason, k.src_side, k.dst_side, k.protocol, k.dst_port, k.findings,
    k.flows, k.packets, k.bytes, s.distinct_initiators, d.distinct_responders,
    k.first_seen, k.last_seen, s.top_initiators, d.top_responders
FROM totals AS k
JOIN tops_src AS s
  ON s.reason = k.reason AND s.src_side = k.src_side AND s.dst_side = k.dst_side
 AND s.protocol = k.protocol AND s.dst_port IS NOT DISTINCT FROM k.dst_port
JOIN tops_dst AS d
  ON d.reason = k.reason AND d.src_side = k.src_side AND d.dst_side = k.dst_side
 AND d.protocol = k.protocol AND d.dst_port IS NOT DISTINCT FROM k.dst_port
ORDER BY k.bytes DESC, k.packets DESC, k.flows DESC, k.reason, k.src_side, k.dst_side,
         k.protocol, k.dst_port NULLS FIRST, k.group_id;
