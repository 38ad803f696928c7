-- name: release_violations
-- Drops the temp table violation_rows (violations.sql) once violation_groups.sql has
-- listed the violations: the list is an Arrow table from here on.
DROP TABLE IF EXISTS violation_rows;
