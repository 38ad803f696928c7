-- name: coverage_keys
-- Each row is one key by which the coverage grid places violations (`violation_list`, the
-- audit's list with its order `ord`): the sides and cells (address_sides.sql) of both ends,
-- protocol and responder port, in the order of the first violation that has it (the grid's
-- extra service columns are numbered in that order). audit/coverage.py places each key.
SELECT k.*, sc.lo AS src_lo, dc.lo AS dst_lo  -- each cell's first address
FROM (
    SELECT src_side, src_cell, dst_side, dst_cell, protocol, dst_port, min(ord) AS first
    FROM violation_list
    GROUP BY src_side, src_cell, dst_side, dst_cell, protocol, dst_port
) AS k
JOIN cells AS sc ON sc.cell = k.src_cell
JOIN cells AS dc ON dc.cell = k.dst_cell
ORDER BY k.first;
