-- name: violation_groups
-- Each row is a violation (`violation_rows`) with its sides and the id of its finding
-- group (the same key and hash as finding_groups.sql), in the order of violations.sql.
SELECT
    v.*,
    s.side AS src_side,
    d.side AS dst_side,
    substr(sha256(concat_ws('|', 'flowaudit-group-v1', v.reason, s.side, d.side,
                            v.protocol::VARCHAR, coalesce(v.dst_port::VARCHAR, '-'))),
           1, 16) AS group_id
FROM violation_rows AS v
JOIN addr_side AS s ON s.ip = v.src_ip
JOIN addr_side AS d ON d.ip = v.dst_ip
ORDER BY v.packets DESC, v.flows DESC, v.src_ip, v.dst_ip, v.protocol, v.dst_port, v.vlan_id;
