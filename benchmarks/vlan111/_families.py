"""The seed port matrix as generator data: approved families, service ports, violation kinds.

``APPROVED`` holds one ``Family`` per approved kind of traffic, parsed from
``_APPROVED_TABLE`` (each line names its seed table row and firewall-summary row);
``VIOLATIONS`` lists the violation templates ``Planner.violation`` builds, by index, with the
reason code each one shows (``REASONS``). ``direction_for`` says how a flow builder decides
the initiator (DESIGN.md ``direction``), using flowaudit's default service-port mask.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._frames import ADMINS, NODES, PODS

REASONS = (
    "port-not-approved",
    "reverse-direction",
    "unknown-source",
    "unknown-destination",
    "protocol-not-approved",
    "off-vlan",
    "out-of-scope-address",
    "control-plane",  # LAN control plane (ND, MLD, mDNS): apart, a violation only with --strict
)
ICMP_DIRECTION = "first_packet"  # echo request sender = first packet = initiator
# ICMP "ports" in the truth: src = type, dst = counterpart type (echo 8 -> 0, ND 135 -> 136)
# or the code when the type has no counterpart, as Community ID v1 and Zeek map them
# flowaudit's default service-port mask (flows.py): ports < 1024 plus the matrix ports
_MATRIX_PORTS = "443 5080 6443 22 30003 2379 2380 10250 10257 10259 4240 4244 4245 8472 51871"
SERVICE_PORTS = frozenset(
    [*map(int, _MATRIX_PORTS.split()), 16509, 7946, *range(9001, 9023), *range(49152, 49216)]
)


# Zeek's likely_server_ports (zeek @ a13de64f, scripts/base/protocols/*): they outrank the
# other service ports, so a DHCP 68 -> 67 flow is oriented by its server port
LIKELY_SERVER_PORTS = frozenset(
    [21, 22, 25, 53, 67, 79, 80, 81, 88, 123, 135, 137, 139, 143, 161, 162, 443, 445, 465,
     502, 514, 563, 585, 587, 614, 631, 636, 784, 853, 989, 990, 992, 993, 995, 1080, 1434,
     1812, 1883, 2811, 3128, 3306, 3389, 4011, 5060, 5222, 5223, 5269, 5353, 5355, 6379,
     6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000]
)  # fmt: skip


def direction_for(proto: int, pa: int, pb: int, syn: bool) -> str:
    if proto == 6 and syn:
        return "syn"
    if proto in (1, 58):
        return ICMP_DIRECTION
    return "service_port" if port_level(pb) > port_level(pa) else "first_packet"


def port_level(port: int) -> int:
    """2 likely server port, 1 service port (well known or the matrix's), 0 other."""
    if port in LIKELY_SERVER_PORTS:
        return 2
    return 1 if 0 < port < 1024 or port in SERVICE_PORTS else 0


@dataclass(frozen=True)
class Family:
    """A kind of approved traffic: who talks to whom on which ports, and how much."""

    name: str
    weight: float
    clients: tuple[str, ...]
    servers: tuple[str, ...]
    ports: tuple[int, ...]
    kind: str  # "tcp", "udp1" (one-way datagrams), "udp2" (request/response)
    n: tuple[int, int]  # exchanges (udp1: datagrams)
    req: tuple[int, int]  # bytes, log-uniform
    resp: tuple[int, int]
    seed_row: str  # "<seed table>: <row>"; {port} is replaced by the port used
    fw_rule: str | None  # the row of the seed's "Firewall Rules Summary", if any


# One approved family per line: name | weight | clients | servers | ports | kind | exchanges |
# request bytes | response bytes | seed table: row | firewall-summary row. Sizes are log-uniform.
_APPROVED_TABLE = """
agent         |14  |nodes|pma  |443   |tcp |1-3 |200-1500|100-3000|{EXT}: 443 TCP|Cluster to PMA
registry      |1   |nodes|pma  |30003 |tcp |1-2 |300-800 |2e4-2e6  |{EXT}: 30003 TCP|Cluster to PMA
pma-k8s-api   |8   |pma  |nodes|6443  |tcp |1-4 |300-900 |300-30000|{PMA}: 6443 TCP|PMA to Cluster
admin-ui      |3   |admin|pma  |443   |tcp |2-8 |400-1200|1000-60000|{PMA}: 443 TCP|Admin to PMA
admin-local-ui|1   |admin|pma  |5080  |tcp |2-6 |400-1200|500-20000|{PMA}: 5080 TCP|Admin to PMA
admin-ssh     |0.3 |admin|ssh  |22    |tcp |6-20|36-600  |36-1500  |{PMA}: 22 TCP  |SSH to PMA
k8s-api       |10  |nodes|nodes|6443  |tcp |1-4 |300-900 |300-30000|{K8S}: 6443 TCP|{K8S_FW}
etcd-client   |10  |nodes|nodes|2379  |tcp |1-6 |80-600  |60-2000  |{K8S}: 2379-2380 TCP|{K8S_FW}
kubelet       |5   |nodes|nodes|10250 |tcp |1-3 |200-600 |200-40000|{K8S}: 10250 TCP|{K8S_FW}
kube-scheduler|1   |nodes|nodes|10259 |tcp |1-1 |120-200 |100-400  |{K8S}: 10259 TCP|
kube-ctrl-mgr |1   |nodes|nodes|10257 |tcp |1-1 |120-200 |100-400  |{K8S}: 10257 TCP|
cilium-health |6   |nodes|nodes|4240  |tcp |1-1 |90-160  |150-400  |{CIL}: 4240 TCP|
hubble-server |2   |nodes|nodes|4244  |tcp |1-4 |100-400 |200-8000 |{CIL}: 4244 TCP|
hubble-relay  |1   |nodes|nodes|4245  |tcp |1-4 |100-400 |200-8000 |{CIL}: 4245 TCP|
vxlan         |12  |nodes|nodes|8472  |udp1|1-30|70-1450 |0-0      |{CIL}: 8472 UDP|
px-api        |3   |nodes|nodes|9001  |tcp |1-3 |200-800 |200-6000 |{PX}: 9001 TCP|{PX_FW}
px-gossip     |6   |nodes|nodes|9002  |udp2|1-2 |100-600 |100-600  |{PX}: 9002 UDP|{PX_FW}
px-replication|1   |nodes|nodes|9003  |tcp |1-2 |5e4-1e6 |60-200   |{PX}: 9003 TCP|{PX_FW}
px-grpc|5|nodes|nodes|9012-9014,9018-9022|tcp|1-3|1e2-7e2|1e2-3e3|{PX}: {{port}} TCP|{PX_FW}
libvirt       |0.3 |nodes|nodes|16509 |tcp |2-5 |100-500 |100-2000 |{VMO}: 16509 TCP|{VMO_FW}
migration     |0.03|nodes|nodes|49152-49215|tcp|1-1|5e5-4e6|60-200|{VMO}: 49152-49215 TCP|{VMO_FW}
metallb-tcp   |0.5 |nodes|nodes|7946  |tcp |1-1 |300-2000|300-2000 |MetalLB Ports: 7946 TCP|
"""
TABLES = {
    "PMA": "Palette Management Appliance Ports",
    "EXT": "Bare Metal Cluster Ports / External Communication",
    "K8S": "Inter-Node Communication (Kubernetes)",
    "CIL": "Inter-Node Communication (Cilium)",
    "PX": "Portworx Ports (Inter-Node)",
    "VMO": "VMO / KubeVirt Ports (Inter-Node)",
    "K8S_FW": "Inter-node (K8s)",
    "PX_FW": "Inter-node (PX)",
    "VMO_FW": "Inter-node (VMO)",
}
_GROUPS = {"nodes": NODES, "admin": ADMINS, "pma": ("pma",), "ssh": ("pma_ssh",)}


def _rng(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    return int(float(lo)), int(float(hi or lo))


def _parse_families(table: str) -> tuple[Family, ...]:
    out = []
    for line in table.strip().splitlines():
        c = [x.strip() for x in line.split("|")]
        ports = tuple(
            p for part in c[4].split(",") for p in range(_rng(part)[0], _rng(part)[1] + 1)
        )
        fam = Family(
            c[0],
            float(c[1]),
            _GROUPS[c[2]],
            _GROUPS[c[3]],
            ports,
            c[5],
            _rng(c[6]),
            _rng(c[7]),
            _rng(c[8]),
            c[9].format(**TABLES),
            c[10].format(**TABLES) or None,
        )
        out.append(fam)
    return tuple(out)


APPROVED = _parse_families(_APPROVED_TABLE)
GOSSIP_ROW, ETCD_PEER_ROW = "MetalLB Ports: 7946 UDP", TABLES["K8S"] + ": 2379-2380 TCP"
K8S_FW = "Inter-node (K8s)"

# violation templates, by index in Planner.violation (the last one is IPv6 link-local noise)
VIOLATIONS = (
    "port-not-approved",
    "port-not-approved",
    "reverse-direction",
    "reverse-direction",
    "unknown-source",
    "unknown-source",
    "unknown-destination",
    "protocol-not-approved",
    "protocol-not-approved",
    "protocol-not-approved",
    "off-vlan",
    "off-vlan",
    "out-of-scope-address",
    "out-of-scope-address",
    "out-of-scope-address",
)


# day-on-the-lan: what pods ask of pods on other nodes, over the VXLAN overlay (any pod is a
# client of a server on another node). Not matrix rows: inner flows are not audited against
# the node matrix. DNS carries a real lookup and answer (TMPL "dnsq_svc"/"dnsr_svc").
_PODS = tuple(p[0] for p in PODS)
OVERLAY = (
    Family("coredns", 5, _PODS, ("coredns-a", "coredns-b"), (53,), "udp2", (1, 1), (0, 0),
           (0, 0), "", None),
    Family("http", 4, _PODS, ("frontend-a", "frontend-b"), (8080,), "tcp", (1, 4), (200, 900),
           (300, 20000), "", None),
    Family("grpc", 3, _PODS, ("api-a", "api-b"), (9090,), "tcp", (1, 6), (100, 600),
           (100, 4000), "", None),
    Family("postgres", 2, _PODS, ("postgres-0",), (5432,), "tcp", (1, 8), (60, 600),
           (60, 8000), "", None),
)  # fmt: skip
