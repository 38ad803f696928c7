-- name: coverage_findings
-- Each row is one coverage grid cell that holds violations (`violation_list`, placed by
-- key in `coverage_keys`: audit/coverage.py): its finding ids in list order and its flows.
SELECT
    k.cell,
    list(v.finding_id ORDER BY v.ord) AS findings,
    sum(v.flows)::BIGINT AS flows
FROM violation_list AS v
JOIN coverage_keys AS k
  ON k.src_side = v.src_side AND k.src_cell = v.src_cell
 AND k.dst_side = v.dst_side AND k.dst_cell = v.dst_cell
 AND k.protocol = v.protocol AND k.dst_port IS NOT DISTINCT FROM v.dst_port
GROUP BY k.cell
ORDER BY k.cell;
