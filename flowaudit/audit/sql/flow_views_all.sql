-- name: flow_views_all
-- `flowaudit query`'s view: every flow of the store, inner flows of tunnels included
-- (select them with WHERE tunnel IS NOT NULL).
CREATE OR REPLACE TEMP VIEW flows AS SELECT * FROM all_flows;
CREATE OR REPLACE TEMP VIEW inner_flows AS SELECT * FROM all_flows WHERE tunnel IS NOT NULL;
