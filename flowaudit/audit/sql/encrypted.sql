-- name: encrypted
-- The audit's limit of sight: traffic of the window whose payload this capture cannot open,
-- against all audited (outer) traffic. WireGuard: UDP to or from 51871 (Cilium's WireGuard
-- port) or 51820 (WireGuard's default); ESP: IP protocol 50 (IPsec, Cilium's other
-- encryption); the conversations inside either are not auditable from a capture.
-- Parameters: $since, $until (timestamps or NULL).
WITH w AS (
    SELECT
        CASE WHEN protocol = 50 THEN 'esp'
             WHEN protocol = 17 AND (dst_port IN (51871, 51820) OR src_port IN (51871, 51820))
             THEN 'wireguard' END AS kind,
        src_bytes,
        dst_bytes
    FROM flows
    WHERE ($since IS NULL OR last_seen >= $since)
      AND ($until IS NULL OR first_seen < $until)
)
SELECT
    count(*) FILTER (WHERE kind = 'wireguard')::BIGINT AS wireguard_flows,
    -- counters are UBIGINT: summed per side (a HUGEINT each), then saturated
    least(coalesce(sum(src_bytes) FILTER (WHERE kind = 'wireguard')
                   + sum(dst_bytes) FILTER (WHERE kind = 'wireguard'), 0),
          9223372036854775807)::BIGINT AS wireguard_bytes,
    count(*) FILTER (WHERE kind = 'esp')::BIGINT AS esp_flows,
    least(coalesce(sum(src_bytes) FILTER (WHERE kind = 'esp')
                   + sum(dst_bytes) FILTER (WHERE kind = 'esp'), 0),
          9223372036854775807)::BIGINT AS esp_bytes,
    count(*)::BIGINT AS flows,
    least(coalesce(sum(src_bytes) + sum(dst_bytes), 0), 9223372036854775807)::BIGINT AS bytes
FROM w;
