"""What VLAN 111 carries: the traffic mix of a scenario and the long-lived sessions.

``Planner`` draws flows from one seed: every approved matrix row at least once, violation
incidents, IPv6 link-local noise and ARP (``scheduled``), weighted approved traffic or random
violations to fill the frame budget (``bulk``), and unanswered ARP to pad to the exact frame
count (``pad``); in ``day-on-the-lan`` VXLAN carries pods' flows (``overlay``). ``Stream``
is a session that spans the whole capture (etcd peers and an admin SSH session seen
mid-stream, MetalLB 7946 <-> 7946 gossip); ``stream_rows`` yields its packets window by
window. The call order of the random draws is part of the output: keep it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._families import (
    APPROVED,
    ETCD_PEER_ROW,
    GOSSIP_ROW,
    K8S_FW,
    OVERLAY,
    TABLES,
    VIOLATIONS,
    Family,
)
from ._flows import Flow, FlowMaker, Row, pick, ri
from ._frames import ACK, ADMINS, NODES, POD_NODE, PSH, TCP4, TMPL, UDP4


class Planner(FlowMaker):
    """The traffic of one scenario, drawn deterministically from one seed."""

    def __init__(
        self, seed: int, scenario: str, port_seed: int | None = None, internet: int = 300
    ) -> None:
        super().__init__(seed, port_seed)
        self.scenario = scenario
        self.internet = internet
        self.weights = [f.weight for f in APPROVED]
        self.overlay_weights = [f.weight for f in OVERLAY]

    def exchanges(self, fam: Family, small: bool) -> list[tuple[int, int, int]]:
        r = self.r

        def lu(lo: int, hi: int) -> int:
            v = int(lo * (hi / lo) ** r.random()) if hi > lo else lo
            return min(lo, 16_000) if small else v

        n = 1 if small else ri(r, fam.n[0], fam.n[1] + 1)
        return [
            (
                lu(*fam.req),
                lu(*fam.resp) if fam.resp[1] else 0,
                ri(r, 200, 300_000) if i else ri(r, 50, 400),
            )
            for i in range(n)
        ]

    def noise(self, t: int) -> Flow | None:
        r = self.r
        h = pick(r, ("pma", "n4", "n5", "n6"))
        kind = ri(r, 3)
        if kind == 0:
            return self.icmp6(t, h + "_ll", "mld", 143, "mld_" + h, 2)
        if kind == 1:
            tgt = pick(r, [x for x in ("pma", "n4", "n5", "n6") if x != h])
            return self.icmp6(t, h + "_ll", tgt + "_snm", 135, f"ns_{h}_{tgt}", r.randint(1, 3))
        off, ln = TMPL["mdns"]
        pk = [(0, ln, 0 if k == 0 else 1_000_000, off) for k in range(r.randint(1, 3))]
        return self.udp(
            t,
            h + "_ll",
            "mdns",
            5353,
            5353,
            pk,
            "control-plane",
            note="IPv6 link-local noise: mDNS query",
        )

    # -- approved traffic and violations ---------------------------------------------------
    def approved(
        self, fam: Family, t: int, small: bool = False, port: int = 0, state: str = ""
    ) -> Flow | None:
        r = self.r
        if fam.name == "vxlan" and self.scenario == "day-on-the-lan":
            return self.overlay(t, small)  # VXLAN that carries pods' traffic
        a = pick(r, fam.clients)
        b = pick(r, [s for s in fam.servers if s != a])
        port = port or pick(r, fam.ports)
        kw: dict[str, Any] = {"seed_row": fam.seed_row.format(port=port), "fw_rule": fam.fw_rule}
        if fam.kind == "tcp":
            st = state or r.choices(("SF", "RSTO", "RSTR", "REJ", "S0"), (93, 3, 2, 1, 1))[0]
            return self.tcp(t, a, b, port, st, self.exchanges(fam, small), retx=ri(r, 3), **kw)
        ex = self.exchanges(fam, small)
        if fam.kind == "udp1":  # one-way datagrams (VXLAN: each side has its own flow)
            pk = [
                (0, ex[0][0] if small else ri(r, fam.req[0], fam.req[1] + 1), ri(r, 20, 20000), -1)
                for _ in range(1 if small else ri(r, fam.n[0], fam.n[1] + 1))
            ]
        else:
            rtt = self.rtt(a, b)
            pk = [x for q, s, th in ex for x in ((0, q, th, -1), (1, s, rtt, -1))]
        return self.udp(t, a, b, None, port, pk, "approved", **kw)

    def overlay(self, t: int, small: bool = False, fam: Family | None = None) -> Flow | None:
        """A pod's flow to a pod on another node (``fam``: a service of OVERLAY, else drawn),
        carried in VXLAN between the two nodes (``FlowMaker.encapsulate``)."""
        r = self.r
        fam = fam or r.choices(OVERLAY, self.overlay_weights)[0]
        b = pick(r, fam.servers)
        a = pick(r, [p for p in fam.clients if POD_NODE[p] != POD_NODE[b]])
        port, note = fam.ports[0], f"pod traffic over VXLAN: {fam.name}"
        f: Flow | None
        if fam.kind == "tcp":
            st = (
                "SF"
                if small
                else r.choices(("SF", "RSTO", "RSTR", "REJ", "S0"), (93, 3, 2, 1, 1))[0]
            )
            ex = self.exchanges(fam, small)
            f = self.tcp(t, a, b, port, st, ex, "overlay", retx=ri(r, 3), note=note)
        else:  # a lookup and its answer
            (qo, ql), (ro, rl) = TMPL["dnsq_svc"], TMPL["dnsr_svc"]
            pk = [(0, ql, 0, qo), (1, rl, self.rtt(a, b), ro)]
            f = self.udp(t, a, b, None, port, pk, "overlay", note=note)
        return f and self.encapsulate(f, POD_NODE[a], POD_NODE[b])

    def violation(self, i: int, t: int) -> Flow | None:  # noqa: C901
        """One flow of violation template ``i`` (see VIOLATIONS)."""
        r = self.r
        n1, n2 = r.sample(NODES, 2)
        ex = [(ri(r, 150, 600), ri(r, 200, 30000), ri(r, 50, 400))]
        if i == 0:
            return self.tcp(t, n1, n2, 2381, "SF", ex, "port-not-approved", note="etcd metrics")
        if i == 1:
            return self.tcp(
                t, n1, "pma", 22, "RSTO", [(21, 41, 300)], "port-not-approved",
                banners=("ssh_client", "ssh_server"),
            )  # fmt: skip
        if i == 2:
            return self.tcp(t, n1, "pma", 6443, "S0", [], "reverse-direction", retx=2)
        if i == 3:
            return self.tcp(t, "pma", n1, 443, "REJ", [], "reverse-direction")
        if i == 4:
            return self.tcp(t, "unk77", n1, 10250, "SF", ex, "unknown-source")
        if i == 5:
            return self.tcp(t, "unk77", n1, 10250, "REJ", [], "unknown-source")
        if i == 6:
            return self.tcp(t, n1, "srv20", 443, "SF", ex, "unknown-destination", tls_hello=True)
        if i == 7:
            pk = [(0, 60, 200_000, -1)] * r.randint(1, 3)
            return self.udp(t, n1, n2, None, 2379, pk, "protocol-not-approved")
        if i == 8:
            return self.echo(t, n1, n2, r.randint(2, 5), "protocol-not-approved")
        if i == 9:
            return self.echo(t, pick(r, ADMINS), "pma", 3, "protocol-not-approved")
        if i == 10:
            return self.tcp(t, pick(r, ADMINS), "pma", 443, "SF", ex, "off-vlan", vlan=112)
        if i == 11:
            return self.tcp(t, n1, n2, 10250, "SF", ex, "off-vlan", vlan=-1, note="untagged")
        (qo, ql), (ro, rl) = TMPL["dnsq"], TMPL["dnsr"]
        if i == 12:
            pk = [(0, ql, 0, qo), (1, rl, self.rtt(n1, "dns8"), ro)]
            return self.udp(t, n1, "dns8", None, 53, pk, "out-of-scope-address")
        if i == 13:
            return self.udp(t, n1, "dns1", None, 53, [(0, ql, 0, qo)], "out-of-scope-address")
        return self.noise(t)

    def bulk(self, t: int) -> Flow | None:
        if self.scenario == "violations":
            return self.violation(ri(self.r, len(VIOLATIONS)), t)
        return self.approved(self.r.choices(APPROVED, self.weights)[0], t)

    def scheduled(self, dur: int, packets: int) -> list[Flow]:
        """Coverage (every approved row), violation incidents, IPv6 noise and ARP."""
        r, out = self.r, []

        def when(lo: float, hi: float) -> int:
            return int(dur * lo) + ri(r, int(dur * (hi - lo)))

        if self.scenario != "violations":
            for fam in APPROVED:  # every approved row at least once, small
                for p in fam.ports if len(fam.ports) < 10 else (pick(r, fam.ports),):
                    out.append(self.approved(fam, when(0.02, 0.6), small=True, port=p, state="SF"))
            for fi, st in ((8, "RSTR"), (7, "RSTO"), (9, "REJ"), (11, "S0")):  # approved outcomes
                out.append(self.approved(APPROVED[fi], when(0.02, 0.6), True, state=st))
        if self.scenario == "day-on-the-lan":
            out += self.day(dur, when)
        elif self.scenario != "approved-only":
            for _ in range(max(1, packets // 1_000_000)):
                out += [self.violation(i, when(0.05, 0.9)) for i in range(len(VIOLATIONS))]
            for _ in range(3 * max(1, dur // 200_000_000)):
                out.append(self.noise(when(0.0, 0.95)))
        lan = ("pma", "n4", "n5", "n6", "gw", "unk77", "srv20")
        for _ in range(max(4, dur // 4_000_000)):
            a, b = r.sample(lan, 2)
            out.append(self.arp(when(0.0, 0.99), a, b, True))
        return [f for f in out if f is not None]

    def day(self, dur: int, when: Any) -> list[Flow | None]:
        """A day on VLAN 111 besides the matrix: image pulls from ``internet`` addresses over
        443, DNS and NTP to the site's servers, DHCP, VRRP adverts of the gateway pair, IPv6
        RA/NS/MLD and mDNS, and one pod flow of each OVERLAY service (VXLAN between nodes is
        approved traffic, drawn by ``bulk``: here it carries pod flows, see ``overlay``)."""
        r, out = self.r, []
        (qo, ql), (ro, rl) = TMPL["dnsq"], TMPL["dnsr"]
        for i in range(self.internet):  # every address at least once
            ex = [(ri(r, 300, 1500), ri(r, 2_000, 40_000), ri(r, 50, 400))]
            out.append(
                self.tcp(when(0.0, 0.9), pick(r, NODES), f"inet{i}", 443, "SF", ex,
                         "out-of-scope-address", tls_hello=True, note="image pull")
            )  # fmt: skip
        for _ in range(max(6, dur // 20_000_000)):  # DNS and NTP to the site's servers
            n = pick(r, NODES)
            pk = [(0, ql, 0, qo), (1, rl, self.rtt(n, "dns_site"), ro)]
            oos = "out-of-scope-address"
            out.append(self.udp(when(0.0, 0.95), n, "dns_site", None, 53, pk, oos))
            pk = [(0, 48, 0, -1), (1, 48, self.rtt(n, "ntp_site"), -1)]
            out.append(self.udp(when(0.0, 0.95), n, "ntp_site", None, 123, pk, oos))
        for _ in range(2):  # DHCP: a client's broadcast discover, the gateway's broadcast offer
            t = when(0.0, 0.9)
            out.append(self.udp(t, "dhcp0", "bcast", 68, 67, [(0, 300, 0, -1)], "control-plane",
                                note="DHCP discover"))  # fmt: skip
            out.append(self.udp(t + 2000, "gw", "bcast", 67, 68, [(0, 300, 0, -1)],
                                "control-plane", note="DHCP offer"))  # fmt: skip
        out.append(self.vrrp(when(0.0, 0.4), "gw2", 20, "vrrp_gw2"))  # master, then failover
        out.append(self.vrrp(when(0.5, 0.9), "gw3", 20, "vrrp_gw3"))
        out.append(self.icmp6(when(0.0, 0.9), "gw_ll", "allnodes", 134, "ra", 3, 15_000_000))
        for fam in OVERLAY:  # every pod service at least once (more come with VXLAN in bulk)
            out.append(self.overlay(when(0.02, 0.6), small=True, fam=fam))
        for _ in range(3 * max(1, dur // 200_000_000)):
            out.append(self.noise(when(0.0, 0.95)))  # ND, MLD, mDNS
        return out

    def pad(self, n: int, t0: int, t1: int) -> list[Flow]:
        """Unanswered ARP requests for a silent address: fill the exact frame count."""
        return [
            self.arp(t0 + ri(self.r, max(1, t1 - t0)), pick(self.r, NODES), "dark99", False)
            for _ in range(n)
        ]


@dataclass
class Stream:
    """A long-lived flow spanning the capture, generated window by window."""

    flow: Flow
    kind: str  # "etcd" / "ssh" (TCP seen mid-stream), "gossip" (UDP 7946 <-> 7946)
    cycles: int
    period: int
    phase: int
    rtt: int
    k: int = 0
    seq: list[int] = field(default_factory=lambda: [0, 0])

    SIZE = {"etcd": 2, "ssh": 3, "gossip": 4}


def plan_streams(pl: Planner, dur: int, packets: int) -> list[Stream]:
    if pl.scenario == "violations":
        return []
    out, r = [], pl.r
    plan = [("etcd", a, b, 2380, 0.02) for a, b in (("n4", "n5"), ("n4", "n6"), ("n5", "n6"))]
    plan += [("ssh", "adm0", "pma_ssh", 22, 0.005)]
    plan += [("gossip", a, b, 7946, 0.007) for a, b in (("n4", "n5"), ("n5", "n6"), ("n6", "n4"))]
    for kind, a, b, port, share in plan:
        size = Stream.SIZE[kind]
        phase = ri(r, 1000, 50_000)
        cycles = max(int(packets * share) // size, -(-dur // 10_000_000))  # gaps <= 10 s
        period = (dur - phase) // cycles
        dummy: list[Row] = [(phase, 0, 0, 0, 0, 0, -1), (dur + 1_000_000, 1, 0, 0, 0, 0, -1)]
        if kind == "gossip":
            f = pl.flow(
                UDP4,
                111,
                a,
                b,
                port,
                port,
                dummy,
                "approved",
                seed_row=GOSSIP_ROW,
                note="memberlist: both sides use 7946, first packet decides",
            )
        else:
            row = ETCD_PEER_ROW if kind == "etcd" else TABLES["PMA"] + ": 22 TCP"
            fw = K8S_FW if kind == "etcd" else "SSH to PMA"
            f = pl.flow(
                TCP4,
                111,
                a,
                b,
                None,
                port,
                dummy,
                "approved",
                "OTH",
                seed_row=row,
                fw_rule=fw,
                direction="service_port",
                note="mid-stream: the handshake precedes the capture",
            )
        assert f is not None
        st = Stream(f, kind, cycles, period, phase, pl.rtt(a, b))
        st.seq = [r.getrandbits(32), r.getrandbits(32)]
        out.append(st)
    return out


def stream_rows(pl: Planner, st: Stream, t1: int) -> list[Row]:
    r, rows, per = pl.r, [], st.period
    while st.k < st.cycles and st.phase + st.k * per < t1:
        t = st.phase + st.k * per + ri(r, max(1, per // 4))
        st.k += 1
        if st.kind == "etcd":  # append-entries heartbeat and its response
            pk = [(0, PSH | ACK, ri(r, 60, 300), 0), (1, PSH | ACK, ri(r, 30, 70), st.rtt)]
        elif st.kind == "ssh":  # a keystroke, its echo, the delayed ACK
            pk = [
                (0, PSH | ACK, 36, 0),
                (1, PSH | ACK, 36, st.rtt),
                (0, ACK, 0, min(40_000, per // 4)),
            ]
        else:  # memberlist ping/ack each way
            pk = [
                (0, 0, ri(r, 40, 90), 0),
                (1, 0, ri(r, 20, 40), st.rtt),
                (1, 0, ri(r, 40, 90), per // 3),
                (0, 0, ri(r, 20, 40), st.rtt),
            ]
        for d, fl, n, dt in pk:
            t += max(1, dt)
            if st.kind == "gossip":
                rows.append((t, d, 0, n, 0, 0, -1))
            else:
                rows.append((t, d, fl, n, st.seq[d], st.seq[1 - d], -1))
                st.seq[d] = (st.seq[d] + n) & 0xFFFFFFFF
    return rows
