-- name: release_violations
-- Drops the temp tables violation_rows and violation_keys (violations.sql) once
-- violation_groups.sql has listed the violations: the list is an Arrow table from here on.
DROP TABLE IF EXISTS violation_rows;
DROP TABLE IF EXISTS violation_keys;
