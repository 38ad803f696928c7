-- name: address_sides
-- Each row is one distinct address of the window's conversations with its side (the
-- smallest matrix group holding it, else its address class), its address class (groups
-- not considered) and its cell. `cells` (audit/run.py) cuts the address space at every
-- bound of a group, scope subnet, class or rule: the addresses of one cell are in the same
-- ranges, so a fact that depends only on range membership is computed once per cell (on
-- its first address, `cells.lo`) and holds for every address in it; `cell` is its number
-- (`addresses.cell`, found by audit/run.py), and its side and class are worked out once
-- per cell from the matrix (matrix/hosts.py side_ranges: groups first, then the classes in
-- precedence order; the lowest rank holding the cell wins). An address no side holds has
-- no row.
CREATE OR REPLACE TEMP TABLE addr_side AS
SELECT a.addr, a.ip, c.side, c.class, a.cell
FROM addresses AS a
JOIN cells AS c ON c.cell = a.cell
WHERE c.side IS NOT NULL;
