-- name: rule_usage
-- Each row is one (rule, protocol, responder port, initiator, responder) that carried
-- traffic in the window, with its flow count: the raw material for unused and
-- partly-used verdicts (audit.py takes the complement of ports and host pairs).
-- A flow is counted once per rule: a conversation with an uncertain initiator that the
-- rule admits both ways keeps both rows (either host pair may be the real one) but only
-- its forward row counts the flows; the reversed row shows 0.
WITH m AS (
    SELECT
        *,
        row_number() OVER (PARTITION BY conv_id, rule_id ORDER BY orientation) = 1 AS counted
    FROM conv_match
)
SELECT
    m.rule_id, c.protocol, m.port, m.init_ip, m.resp_ip,
    sum(CASE WHEN m.counted THEN c.flows ELSE 0 END)::BIGINT AS flows
FROM m
JOIN conv AS c USING (conv_id)
GROUP BY m.rule_id, c.protocol, m.port, m.init_ip, m.resp_ip
ORDER BY m.rule_id, c.protocol, m.port, m.init_ip, m.resp_ip;
