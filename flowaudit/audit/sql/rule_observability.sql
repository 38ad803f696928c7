-- name: rule_observability
-- Each row is a rule with the number of flows in the window between its `from` and
-- `to` hosts on any port and protocol, in either orientation: when that is zero the
-- capture point never saw those hosts talk, and "unused" is not proven. Conversations are
-- summed per (initiator cell, responder cell) first: a rule admits every address of a cell
-- or none (address_sides.sql).
WITH cell_pairs AS (
    SELECT sc.lo AS src_lo, dc.lo AS dst_lo, p.flows  -- each cell's first address
    FROM (
        SELECT src_cell, dst_cell, sum(flows) AS flows FROM conv GROUP BY src_cell, dst_cell
    ) AS p
    JOIN cells AS sc ON sc.cell = p.src_cell
    JOIN cells AS dc ON dc.cell = p.dst_cell
),
pairs AS (
    SELECT DISTINCT r.rule_id, c.src_lo, c.dst_lo, c.flows
    FROM rules AS r
    JOIN cell_pairs AS c
      ON (c.src_lo BETWEEN r.src_lo AND r.src_hi AND c.dst_lo BETWEEN r.dst_lo AND r.dst_hi)
      OR (c.src_lo BETWEEN r.dst_lo AND r.dst_hi AND c.dst_lo BETWEEN r.src_lo AND r.src_hi)
)
SELECT r.rule_id, coalesce(sum(p.flows), 0)::BIGINT AS flows_between_groups
FROM (SELECT DISTINCT rule_id FROM rules) AS r
LEFT JOIN pairs AS p USING (rule_id)
GROUP BY r.rule_id
ORDER BY r.rule_id;
