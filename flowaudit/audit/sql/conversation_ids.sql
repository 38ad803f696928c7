-- name: conversation_ids
-- Each row is one conversation of conv_raw with its addresses' text forms, sides and cells
-- (address_sides.sql) and an integer id (conv_id), the key the match tables refer to: only
-- a key (no report shows it), so conv_raw's row id (unique within the table; no window
-- over the rows, which numbers them on one thread).
-- conv_raw is dropped once conv holds it (the temp tables count against the engine's
-- memory limit).
CREATE OR REPLACE TEMP TABLE conv AS
SELECT
    c.rowid + 1 AS conv_id,
    s.ip AS src_ip,
    d.ip AS dst_ip,
    c.*,
    s.side AS src_side,
    d.side AS dst_side,
    s.cell AS src_cell,
    d.cell AS dst_cell
FROM conv_raw AS c
JOIN addr_side AS s ON s.addr = c.src_addr
JOIN addr_side AS d ON d.addr = c.dst_addr;
DROP TABLE conv_raw;
