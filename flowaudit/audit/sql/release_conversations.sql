-- name: release_conversations
-- Drops the conversation temp tables once the questions about conversations are answered
-- (the rest of the audit reads the violations, violation_rows, and the cells): they count
-- against the engine's memory limit, and a million conversations are a few hundred MB.
DROP TABLE IF EXISTS conv_match;
DROP TABLE IF EXISTS conv_cp;
DROP TABLE IF EXISTS conv;
DROP TABLE IF EXISTS addr_side;
