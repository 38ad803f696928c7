-- name: matches
-- Each row is one (conversation, rule, orientation) where the rule admits the
-- conversation: same protocol, initiator in `from`, responder in `to`, responder
-- port in the rule's range (or the reverse for bidirectional rules). A protocol without
-- ports (GRE, ESP, VRRP: port NULL) is taken as port 0, so a rule of it with `ports: any`
-- (the default for such protocols) admits it. Conversations with an uncertain initiator
-- are also tried reversed, using the initiator's port.
-- Rules whose group has no addresses yet have NULL bounds and match nothing. Only
-- conversations on a scope VLAN (or untagged in an untagged capture) can match:
-- off-VLAN traffic is a finding.
CREATE OR REPLACE TEMP TABLE conv_match AS
WITH c AS (
    SELECT *
    FROM conv
    WHERE NOT native_vlan AND (
          vlan_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM scope WHERE vlan IS NOT NULL)
       OR vlan_id IN (SELECT vlan FROM scope WHERE vlan IS NOT NULL))
)
SELECT c.conv_id, r.rule_id, 'forward' AS orientation,
       c.src_ip AS init_ip, c.dst_ip AS resp_ip, c.dst_port AS port
FROM c
JOIN rules AS r
  ON c.protocol = r.protocol
 AND coalesce(c.dst_port, 0) BETWEEN r.port_lo AND r.port_hi
 AND ((c.src_addr BETWEEN r.src_lo AND r.src_hi AND c.dst_addr BETWEEN r.dst_lo AND r.dst_hi)
      OR (r.bidirectional
          AND c.src_addr BETWEEN r.dst_lo AND r.dst_hi
          AND c.dst_addr BETWEEN r.src_lo AND r.src_hi))
UNION
SELECT c.conv_id, r.rule_id, 'reversed' AS orientation,
       c.dst_ip AS init_ip, c.src_ip AS resp_ip, c.alt_port AS port
FROM c
JOIN rules AS r
  ON c.uncertain
 AND c.protocol = r.protocol
 AND coalesce(c.alt_port, 0) BETWEEN r.port_lo AND r.port_hi
 AND ((c.dst_addr BETWEEN r.src_lo AND r.src_hi AND c.src_addr BETWEEN r.dst_lo AND r.dst_hi)
      OR (r.bidirectional
          AND c.dst_addr BETWEEN r.dst_lo AND r.dst_hi
          AND c.src_addr BETWEEN r.src_lo AND r.src_hi));
