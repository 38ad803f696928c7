-- name: rule_observability
-- Each row is a rule with the number of flows in the window between its `from` and
-- `to` hosts on any port and protocol, in either orientation: when that is zero the
-- capture point never saw those hosts talk, and "unused" is not proven. Conversations are
-- summed per (initiator cell, responder cell) first: a rule admits every address of a cell
-- or none (address_sides.sql).
WITH cell_pairs AS (
    SELECT src_cell, dst_cell, sum(flows) AS flows
    FROM conv
    GROUP BY src_cell, dst_cell
),
pairs AS (
    SELECT DISTINCT r.rule_id, c.src_cell, c.dst_cell, c.flows
    FROM rules AS r
    JOIN cell_pairs AS c
      ON (c.src_cell BETWEEN r.src_lo AND r.src_hi AND c.dst_cell BETWEEN r.dst_lo AND r.dst_hi)
      OR (c.src_cell BETWEEN r.dst_lo AND r.dst_hi AND c.dst_cell BETWEEN r.src_lo AND r.src_hi)
)
SELECT r.rule_id, coalesce(sum(p.flows), 0)::BIGINT AS flows_between_groups
FROM (SELECT DISTINCT rule_id FROM rules) AS r
LEFT JOIN pairs AS p USING (rule_id)
GROUP BY r.rule_id
ORDER BY r.rule_id;
