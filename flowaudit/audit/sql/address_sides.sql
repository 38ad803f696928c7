-- name: address_sides
-- Each row is one distinct address of the window's conversations with its side (the
-- smallest matrix group holding it, else its address class), its address class (groups
-- not considered) and its cell. `sides` is built from the matrix (matrix/hosts.py
-- side_ranges): groups first, then the classes in precedence order; the lowest rank
-- holding the address wins. `cells` (audit/run.py) cuts the address space at every bound
-- of a group, scope subnet, class or rule: the addresses of one cell are in the same
-- ranges, so a fact that depends only on range membership is computed once per cell (on
-- its first address, `cells.lo`) and holds for every address in it; `cell` is its number.
CREATE OR REPLACE TEMP TABLE addr_side AS
SELECT
    a.addr,
    a.ip,
    arg_min(s.side, s.rank) AS side,
    arg_min(s.side, s.rank) FILTER (WHERE NOT s.is_group) AS class,
    min(c.cell) AS cell
FROM addresses AS a
JOIN sides AS s ON a.addr BETWEEN s.lo AND s.hi
JOIN cells AS c ON a.addr BETWEEN c.lo AND c.hi
GROUP BY a.addr, a.ip
ORDER BY a.addr;
