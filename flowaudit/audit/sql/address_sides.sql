-- name: address_sides
-- Each row is one distinct address of the window's conversations with its side (the
-- smallest matrix group holding it, else its address class) and its address class (groups
-- not considered). `sides` is built from the matrix (matrix/hosts.py side_ranges): groups
-- first, then the classes in precedence order; the lowest rank holding the address wins.
CREATE OR REPLACE TEMP TABLE addr_side AS
SELECT
    a.addr,
    a.ip,
    arg_min(s.side, s.rank) AS side,
    arg_min(s.side, s.rank) FILTER (WHERE NOT s.is_group) AS class
FROM addresses AS a
JOIN sides AS s ON a.addr BETWEEN s.lo AND s.hi
GROUP BY a.addr, a.ip
ORDER BY a.addr;
