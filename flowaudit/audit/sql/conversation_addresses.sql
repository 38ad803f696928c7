-- name: conversation_addresses
-- Each row is one distinct address of the window's conversations (16 bytes); audit.py
-- registers their text forms as the `addresses` relation.
SELECT src_addr AS addr FROM conv_raw
UNION
SELECT dst_addr FROM conv_raw
ORDER BY addr;
