-- name: control_plane
-- Each row is one LAN control-plane talker: (kind, protocol, initiator, responder) with its
-- counters, from conv_cp (control_plane_conversations.sql). Empty with $strict: then these
-- conversations are violations with reason `control-plane`.
SELECT
    cp.kind,
    c.protocol,
    c.src_ip,
    c.dst_ip,
    sum(c.flows)::BIGINT AS flows,
    sum(c.packets)::BIGINT AS packets,
    sum(c.bytes)::BIGINT AS bytes,
    min(c.first_seen) AS first_seen,
    max(c.last_seen) AS last_seen
FROM conv_cp AS cp
JOIN conv AS c USING (conv_id)
WHERE NOT $strict
GROUP BY cp.kind, c.protocol, c.src_ip, c.dst_ip
ORDER BY cp.kind, c.protocol, c.src_ip, c.dst_ip;
