-- name: flow_views
-- The audit's views over all_flows (the store's flows): `flows`, what the node matrix
-- audits, and `inner_flows`, the inner flows of VXLAN/Geneve/GRE tunnels (pod addresses,
-- never matched against the node matrix: the overlay section reports them).
CREATE OR REPLACE TEMP VIEW flows AS SELECT * FROM all_flows WHERE tunnel IS NULL;
CREATE OR REPLACE TEMP VIEW inner_flows AS SELECT * FROM all_flows WHERE tunnel IS NOT NULL;
