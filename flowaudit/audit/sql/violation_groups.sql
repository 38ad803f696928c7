-- name: violation_groups
-- Each row is a violation (`violation_rows`) with its sides, and from its key's row of
-- `difference_texts` (difference_keys.sql, worded by audit/run.py): the id of its finding
-- group and what differs from its nearest rule, the violation's addresses filled in; the
-- cells (for the coverage grid) last. Ordered as the reports list violations: largest first.
SELECT
    v.finding_id, v.reason, v.vlan_id, v.ip_version, v.src_ip, v.dst_ip, v.protocol,
    v.dst_port, v.direction_uncertain, v.native_vlan, v.flows, v.packets, v.bytes,
    v.first_seen, v.last_seen, v.attempted, v.rejected, v.established, v.midstream,
    v.answered, v.sampling, v.nearest_rule,
    v.src_side,
    v.dst_side,
    t.group_id,
    t.before_src
        || CASE WHEN t.names_src THEN v.src_ip ELSE '' END
        || t.before_dst
        || CASE WHEN t.names_dst THEN v.dst_ip ELSE '' END
        || t.after_dst AS differences,
    v.src_cell,
    v.dst_cell
FROM violation_rows AS v
JOIN difference_texts AS t
  ON t.reason = v.reason
 AND t.vlan_id IS NOT DISTINCT FROM v.vlan_id
 AND t.nearest_rule IS NOT DISTINCT FROM v.nearest_rule
 AND t.protocol = v.protocol
 AND t.dst_port IS NOT DISTINCT FROM v.dst_port
 AND t.src_cell = v.src_cell
 AND t.dst_cell = v.dst_cell
ORDER BY v.packets DESC, v.flows DESC, v.src_ip, v.dst_ip, v.protocol, v.dst_port, v.vlan_id;
