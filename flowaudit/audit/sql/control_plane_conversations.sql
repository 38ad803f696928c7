-- name: control_plane_conversations
-- Each row is one conversation of the LAN control plane: no rule admits it, it is on a
-- scope VLAN (or untagged in an untagged capture), its protocol and responder port (ICMP:
-- either end's type, the initiator's kept as alt_port) are in the `control_plane` list
-- (audit/control_plane.yaml), and its responder's address class is one the list names
-- (multicast, broadcast, link-local) -- or its initiator's is a group address: a reply
-- seen alone (DHCP 67 -> 255.255.255.255:68) is oriented by its server port, so the group
-- address it was sent to is the initiator. Needs conv, conv_match and addr_side.
CREATE OR REPLACE TEMP TABLE conv_cp AS
SELECT c.conv_id, min(cp.kind) AS kind
FROM conv AS c
JOIN addr_side AS d ON d.addr = c.dst_addr
JOIN addr_side AS s ON s.addr = c.src_addr
JOIN control_plane AS cp
  ON cp.protocol = c.protocol
 AND (cp.dst_class = d.class
      OR (cp.dst_class = s.class AND s.class IN ('multicast', 'broadcast')))
 AND (cp.lo IS NULL
      OR c.dst_port BETWEEN cp.lo AND cp.hi
      OR (cp.icmp AND c.alt_port BETWEEN cp.lo AND cp.hi))
WHERE NOT c.native_vlan
  AND (c.vlan_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM scope WHERE vlan IS NOT NULL)
       OR c.vlan_id IN (SELECT vlan FROM scope WHERE vlan IS NOT NULL))
  AND NOT EXISTS (SELECT 1 FROM conv_match AS m WHERE m.conv_id = c.conv_id)
GROUP BY c.conv_id
ORDER BY c.conv_id;
