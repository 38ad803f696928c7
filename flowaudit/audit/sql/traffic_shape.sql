-- name: traffic_shape
-- Each row is one (source side → destination side) of the window's conversations (sides as
-- in finding groups: the smallest matrix group, else the address class), with its flows and
-- bytes, split into approved (a rule admits them), LAN control plane (conv_cp; counted as
-- not approved with $strict) and not approved. The report's overview of the traffic.
WITH c AS (
    SELECT
        c.src_side,
        c.dst_side,
        c.flows,
        c.bytes,
        m.conv_id IS NOT NULL AS approved,
        cp.conv_id IS NOT NULL AND NOT $strict AS control_plane
    FROM conv AS c
    LEFT JOIN (SELECT DISTINCT conv_id FROM conv_match) AS m ON m.conv_id = c.conv_id
    LEFT JOIN conv_cp AS cp ON cp.conv_id = c.conv_id
)
SELECT
    src_side,
    dst_side,
    sum(flows)::BIGINT AS flows,
    sum(bytes)::BIGINT AS bytes,
    coalesce(sum(flows) FILTER (WHERE approved), 0)::BIGINT AS approved_flows,
    coalesce(sum(bytes) FILTER (WHERE approved), 0)::BIGINT AS approved_bytes,
    coalesce(sum(flows) FILTER (WHERE control_plane), 0)::BIGINT AS control_plane_flows,
    coalesce(sum(bytes) FILTER (WHERE control_plane), 0)::BIGINT AS control_plane_bytes,
    coalesce(sum(flows) FILTER (WHERE NOT approved AND NOT control_plane), 0)::BIGINT
        AS unapproved_flows,
    coalesce(sum(bytes) FILTER (WHERE NOT approved AND NOT control_plane), 0)::BIGINT
        AS unapproved_bytes
FROM c
GROUP BY src_side, dst_side
ORDER BY bytes DESC, flows DESC, src_side, dst_side;
