-- name: window
-- One row: the audit window actually covered by the flows, and how many flows it holds.
SELECT
    min(first_seen) AS start,
    max(last_seen) AS "end",
    coalesce(sum(flows), 0)::BIGINT AS flows,
    coalesce(max(sampling), 1) AS max_sampling,
    count(DISTINCT conv_id) AS conversations
FROM conv;
