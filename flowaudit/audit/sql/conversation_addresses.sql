-- name: conversation_addresses
-- Each row is one distinct address of the window's conversations (16 bytes), in no
-- particular order; audit/run.py registers them with their text forms and cells as the
-- `addresses` relation.
SELECT src_addr AS addr FROM conv_raw
UNION
SELECT dst_addr FROM conv_raw;
