-- name: difference_keys
-- Each row is one distinct key of "what differs" between a violation (`violation_rows`)
-- and its nearest rule: the text depends on the reason, vlan, nearest rule, protocol,
-- responder port and the cells of both addresses (address_sides.sql; their sides follow
-- from the cells), and on the addresses themselves only where it names them. audit/run.py
-- words each key once (`difference_texts`), violation_groups.sql fills in the addresses.
-- A key also fixes the finding group (the same key and hash as finding_groups.sql).
SELECT
    k.*,
    sc.lo AS src_lo,  -- each cell's first address
    dc.lo AS dst_lo,
    substr(sha256(concat_ws('|', 'flowaudit-group-v1', reason, src_side, dst_side,
                            protocol::VARCHAR, coalesce(dst_port::VARCHAR, '-'))),
           1, 16) AS group_id
FROM (
    SELECT DISTINCT
        reason, vlan_id, nearest_rule, protocol, dst_port, src_cell, dst_cell, src_side,
        dst_side
    FROM violation_rows
) AS k
JOIN cells AS sc ON sc.cell = k.src_cell
JOIN cells AS dc ON dc.cell = k.dst_cell;
