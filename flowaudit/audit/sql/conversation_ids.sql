-- name: conversation_ids
-- Each row is one conversation of conv_raw with its addresses' text forms and an integer
-- id (conv_id), the key the match tables refer to.
CREATE OR REPLACE TEMP TABLE conv AS
SELECT
    row_number() OVER (
        ORDER BY c.vlan_id NULLS FIRST, c.src_addr, c.dst_addr, c.protocol, c.dst_port,
                 c.alt_port, c.native_vlan
    ) AS conv_id,
    s.ip AS src_ip,
    d.ip AS dst_ip,
    c.*
FROM conv_raw AS c
JOIN addresses AS s ON s.addr = c.src_addr
JOIN addresses AS d ON d.addr = c.dst_addr
ORDER BY conv_id;
