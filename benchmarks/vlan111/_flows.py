"""One intended flow and the packets each protocol puts on the wire, with unique flow keys.

``FlowMaker`` turns a host pair, ports and an outcome into packet rows (``Row``, times relative
to the capture start): a whole TCP connection (SF, RSTO, RSTR, REJ, S0 with SYN
retransmissions), UDP datagrams, ICMP echo, ICMPv6 ND/MLD and ARP. ``FlowMaker.flow`` reserves
each 5-tuple+VLAN for the flow's span plus its idle timeout, so no key is reused and every
intended flow is exactly one flow for a Zeek-like flow builder. ``encapsulate`` carries a flow
in VXLAN between two nodes and reserves its outer udp/8472 flows the same way. All randomness
comes from ``r`` (behaviour) and ``port_r`` (ephemeral ports only).
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._families import direction_for
from ._frames import (
    ACK,
    ADMINS,
    ARP,
    FIN,
    H_IP4,
    ICMP4,
    ICMP6,
    IPS,
    MLD6,
    PROTO,
    PSH,
    RST,
    SYN,
    TCP4,
    TMPL,
    UDP4,
    UDP6,
    VRRP4,
    VXLAN_PORT,
    VXLAN_VNI,
    H,
)

T = TypeVar("T")

MSS = 1448
IDLE_S = {6: 300, 17: 60, 1: 60, 58: 60, 112: 60}

Row = tuple[int, int, int, int, int, int, int]  # ts_us, dir, flags|icmp type, plen, seq, ack, tmpl


@dataclass
class Flow:
    """One intended flow: ``a`` is the initiator (truth ``src``), dir 0 is a → b."""

    lay: int
    vlan: int
    a: int
    b: int
    pa: int
    pb: int
    rows: list[Row]
    label: str
    state: str = ""
    direction: str = ""
    seed_row: str | None = None
    fw_rule: str | None = None
    note: str | None = None
    acc: list[int] = field(default_factory=lambda: [0] * 10)  # per-direction counters
    # carried in VXLAN: (outer node of a, outer node of b, outer UDP source port a -> b,
    # b -> a, VNI); ``vlan`` is then the outer frame's VLAN, the inner frame is untagged
    encap: tuple[int, int, int, int, int] | None = None


def ri(r: random.Random, lo: int, hi: int = 0) -> int:
    """A fast ``randrange(lo, hi)`` (``randrange(lo)`` when ``hi`` is 0)."""
    return lo + int(r.random() * (hi - lo)) if hi else int(r.random() * lo)


def pick(r: random.Random, seq: Sequence[T]) -> T:
    return seq[int(r.random() * len(seq))]


def vxlan_sport(node: int, ia: int, pa: int, ib: int, pb: int, proto: int) -> int:
    """The outer UDP source port node ``node`` gives an inner flow, as Linux picks it
    (``udp_flow_src_port``): the packet's flow hash scaled into 32768..60999. The hash is
    symmetric in the inner addresses and ports but keyed per host (each kernel's random
    ``hashrnd``), so the two directions of an inner flow leave on two outer flows."""
    (x, px), (y, py) = sorted(((int(H_IP4[ia]), pa), (int(H_IP4[ib]), pb)))
    h = zlib.crc32(
        struct.pack("!IIHHBI", x, y, px, py, proto, 0x9E3779B1 * (node + 1) & 0xFFFFFFFF)
    )
    return 32768 + ((h * (61000 - 32768)) >> 32)


class FlowMaker:
    """Builds flows (packet rows) deterministically from one seed; keeps keys from colliding."""

    def __init__(self, seed: int, port_seed: int | None = None) -> None:
        self.r = random.Random(seed)
        self.port_r = random.Random(seed if port_seed is None else port_seed)  # ephemeral ports
        self.ports: dict[tuple[int, int], int] = {}
        self.busy: dict[tuple[int, ...], list[tuple[int, int]]] = {}

    # -- keys: no 5-tuple+VLAN is reused within its idle timeout ---------------------------
    @staticmethod
    def _key(vlan: int, proto: int, ia: int, pa: int, ib: int, pb: int) -> tuple[int, ...]:
        return (vlan, proto, *min((ia, pa), (ib, pb)), *max((ia, pa), (ib, pb)))

    def _free(self, key: tuple[int, ...], t0: int, t1: int) -> bool:
        return all(t1 < s or t0 > e for s, e in self.busy.get(key, ()))

    def prune(self, before: int) -> None:
        for k in [k for k, v in self.busy.items() if max(e for _, e in v) < before]:
            del self.busy[k]

    def _eph(self, ia: int, ib: int) -> int:
        cur = self.ports.get((ia, ib)) or 32768 + ri(self.port_r, 28000)
        cur = cur + 1 if cur + 1 < 61000 else 32768
        cur = 49216 if 49152 <= cur < 49216 else cur  # never an approved migration port
        self.ports[(ia, ib)] = cur
        return cur

    def flow(
        self,
        lay: int,
        vlan: int,
        a: str,
        b: str,
        pa: int | None,
        pb: int,
        rows: list[Row],
        label: str,
        state: str = "",
        **kw: Any,
    ) -> Flow | None:
        """Reserve the key for the flow's span (+ idle timeout) and wrap the rows."""
        ia, ib, proto = H[a], H[b], PROTO[lay]
        if pa is None:  # ephemeral port: take the next free one for this host pair
            for _ in range(16):
                pa = self._eph(ia, ib)
                if self._free(
                    self._key(vlan, proto, ia, pa, ib, pb), rows[0][0] - 600_000_000, rows[-1][0]
                ):
                    break
            else:
                return None
        key = self._key(vlan, proto, ia, pa, ib, pb)
        gap = (IDLE_S[proto] + 5) * 1_000_000
        if not self._free(key, rows[0][0] - gap, rows[-1][0] + gap):
            return None
        self.busy.setdefault(key, []).append((rows[0][0], rows[-1][0] + gap))
        if not state:  # UDP/ICMP: S0 when only the initiator sent, SF when both did
            state = "SF" if any(r[1] for r in rows) else "S0"
        syn = lay == TCP4 and bool(rows[0][2] & SYN)
        kw.setdefault("direction", direction_for(proto, pa, pb, syn))
        return Flow(lay, vlan, ia, ib, pa, pb, rows, label, state=state, **kw)

    def encapsulate(self, f: Flow, na: str, nb: str, vni: int = VXLAN_VNI) -> Flow:
        """Carry ``f`` in VXLAN between nodes ``na`` (a's) and ``nb`` (b's): each direction
        rides its own outer UDP flow to port 8472, whose key is reserved like any flow's, so
        an outer flow carries exactly one direction of one inner flow. On the rare hash
        collision with a live outer flow the next free port is taken (Linux would merge the
        two; one row per outer flow keeps the truth simple), so this draws nothing from
        ``r``: ``port_seed`` still changes only ports."""
        ia, ib, proto = H[na], H[nb], PROTO[f.lay]
        sp = [vxlan_sport(ia, f.a, f.pa, f.b, f.pb, proto),
              vxlan_sport(ib, f.a, f.pa, f.b, f.pb, proto)]  # fmt: skip
        gap = (IDLE_S[17] + 5) * 1_000_000
        for d, (x, y) in enumerate(((ia, ib), (ib, ia))):
            ts = [r[0] for r in f.rows if r[1] == d]
            if not ts:
                continue
            while not self._free(
                key := self._key(f.vlan, 17, x, sp[d], y, VXLAN_PORT), min(ts) - gap, max(ts) + gap
            ):  # a live outer flow has this port: take the next (never fails, draws nothing)
                sp[d] = 32768 if sp[d] == 60999 else sp[d] + 1
            self.busy.setdefault(key, []).append((min(ts), max(ts) + gap))
        f.encap = (ia, ib, sp[0], sp[1], vni)
        return f

    def rtt(self, a: str, b: str) -> int:
        far = any(x in ADMINS or x in ("dns8", "dns1") or x.startswith("inet") for x in (a, b))
        return ri(self.r, 1500, 4000) if far else ri(self.r, 120, 400)

    # -- TCP --------------------------------------------------------------------------------
    def tcp(
        self,
        t: int,
        a: str,
        b: str,
        dport: int,
        state: str,
        ex: list[tuple[int, int, int]],
        label: str = "approved",
        vlan: int = 111,
        retx: int = 0,
        **kw: Any,
    ) -> Flow | None:
        """A whole TCP connection: SF, RSTO, RSTR (after data), REJ, S0 (with ``retx`` resends)."""
        r, rtt = self.r, self.rtt(a, b)
        rows: list[Row] = []
        seq, now, app = [r.getrandbits(32), r.getrandbits(32)], t, rows.append

        def snd(d: int, fl: int, n: int, dt: int) -> None:
            nonlocal now
            now += dt if dt > 0 else 1
            app((now, d, fl, n, seq[d], seq[1 - d] if fl & ACK else 0, -1))
            seq[d] = (seq[d] + n + (1 if fl & (SYN | FIN) else 0)) & 0xFFFFFFFF

        banners: tuple[str, str] | None = kw.pop("banners", None)
        tls_hello: bool = kw.pop("tls_hello", False)  # the first request is a ClientHello

        def data(d: int, n: int, dt: int, tmpl: int = -1) -> None:
            """MSS segments, an ACK every second one; ``tmpl``: the payload's pool offset
            (a one-segment message with real bytes), else pool bytes by sequence number."""
            nonlocal now
            nseg, e = (n + MSS - 1) // MSS, 1 - d
            s, ack = seq[d], seq[e]
            now += dt if dt > 0 else 1
            for j in range(nseg - 1):
                app((now, d, ACK, MSS, s, ack, -1))
                s = (s + MSS) & 0xFFFFFFFF
                if j & 1:
                    now += 20
                    app((now, e, ACK, 0, ack, s, -1))
                now += 12
            app((now, d, PSH | ACK, n - MSS * (nseg - 1), s, ack, tmpl if nseg == 1 else -1))
            seq[d] = (s + n - MSS * (nseg - 1)) & 0xFFFFFFFF

        snd(0, SYN, 0, 0)
        if state == "S0":
            for k in range(retx):  # Linux resends the SYN after 1 s, then 2 s
                seq[0] = (seq[0] - 1) & 0xFFFFFFFF
                snd(0, SYN, 0, 1_000_000 << k)
        elif state == "REJ":
            seq[1] = 0
            snd(1, RST | ACK, 0, rtt // 2)
        else:
            snd(1, SYN | ACK, 0, rtt // 2)
            snd(0, ACK, 0, rtt // 2)
            for k, (req, resp, think) in enumerate(ex):
                c_off, s_off = -1, -1
                if k == 0 and banners:
                    c_off, s_off = TMPL[banners[0]][0], TMPL[banners[1]][0]
                elif k == 0 and tls_hello and f"tls_hello_{req}" in TMPL:
                    c_off = TMPL[f"tls_hello_{req}"][0]
                data(0, req, think, c_off)
                if resp:
                    data(1, resp, rtt // 2 + ri(r, 20, 400), s_off)
                    snd(0, ACK, 0, rtt // 2)
                else:
                    snd(1, ACK, 0, rtt // 2)
            if state == "SF":
                snd(0, FIN | ACK, 0, ri(r, 100, 5000))
                snd(1, FIN | ACK, 0, rtt // 2)
                snd(0, ACK, 0, rtt // 2)
            else:
                snd(0 if state == "RSTO" else 1, RST | ACK, 0, ri(r, 100, 5000))
        return self.flow(TCP4, vlan, a, b, None, dport, rows, label, state, **kw)

    # -- UDP / ICMP / ARP -------------------------------------------------------------------
    def udp(
        self,
        t: int,
        a: str,
        b: str,
        sport: int | None,
        dport: int,
        pk: list[tuple[int, int, int, int]],
        label: str,
        vlan: int = 111,
        **kw: Any,
    ) -> Flow | None:
        """Datagrams ``(dir, payload bytes, gap µs, template offset or -1)``."""
        lay = UDP6 if ":" in IPS[H[a]] else UDP4
        rows: list[Row] = []
        for d, n, dt, tp in pk:
            t += max(1, dt)
            rows.append((t, d, 0, n, 0, 0, tp))
        return self.flow(lay, vlan, a, b, sport, dport, rows, label, **kw)

    def echo(self, t: int, a: str, b: str, n: int, label: str, **kw: Any) -> Flow | None:
        ident, rtt, rows = ri(self.r, 1, 65535), self.rtt(a, b), []
        for k in range(n):  # echo request (type 8) / reply (type 0), 56 bytes like ping
            rows += [
                (t + k * 1_000_000, 0, 8, 56, ident << 16 | k + 1, 0, -1),
                (t + k * 1_000_000 + rtt, 1, 0, 56, ident << 16 | k + 1, 0, -1),
            ]
        return self.flow(ICMP4, 111, a, b, 8, 0, rows, label, **kw)

    def icmp6(
        self, t: int, a: str, b: str, typ: int, tmpl: str, n: int, gap: int = 1_000_000
    ) -> Flow | None:
        off, ln = TMPL[tmpl]
        rows = [(t + k * gap, 0, typ, ln, 0, 0, off) for k in range(n)]
        lay = MLD6 if typ == 143 else ICMP6
        what = {143: "MLDv2 report", 134: "router advertisement"}.get(typ, "neighbour solicitation")
        note = "IPv6 link-local noise: " + what
        # ports as Community ID v1 and Zeek give them: type, then the counterpart type (NS 135
        # pairs with NA 136, RA 134 with RS 133) or, for types without one (MLDv2 report
        # 143), the code
        pb = {135: 136, 134: 133}.get(typ, 0)
        return self.flow(lay, 111, a, b, typ, pb, rows, "control-plane", note=note)

    def vrrp(self, t: int, a: str, n: int, tmpl: str) -> Flow | None:
        """``n`` VRRPv2 adverts from ``a`` to 224.0.0.18, one a second (no ports)."""
        off, ln = TMPL[tmpl]
        rows: list[Row] = [(t + k * 1_000_000, 0, 0, ln, 0, 0, off) for k in range(n)]
        return self.flow(
            VRRP4, 111, a, "vrrp", 0, 0, rows, "control-plane", direction="first_packet",
            note="VRRP advert of the gateway pair",
        )  # fmt: skip

    def arp(self, t: int, a: str, b: str, reply: bool) -> Flow:
        rows: list[Row] = [(t, 0, 0, 0, 0, 0, -1)]
        if reply:
            rows.append((t + ri(self.r, 30, 300), 1, 0, 0, 0, 0, -1))
        return Flow(ARP, 111, H[a], H[b], 1, 2, rows, "arp")
