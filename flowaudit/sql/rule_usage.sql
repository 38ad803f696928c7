-- name: rule_usage
-- Each row is one (rule, protocol, responder port, initiator, responder) that carried
-- traffic in the window, with its flow count: the raw material for unused and
-- partly-used verdicts (audit.py takes the complement of ports and host pairs).
SELECT m.rule_id, c.protocol, m.port, m.init_ip, m.resp_ip, sum(c.flows)::BIGINT AS flows
FROM conv_match AS m
JOIN conv AS c USING (conv_id)
GROUP BY m.rule_id, c.protocol, m.port, m.init_ip, m.resp_ip
ORDER BY m.rule_id, c.protocol, m.port, m.init_ip, m.resp_ip;
