"""Zeek's ``conn_state`` over generated TCP packet sequences, against its definitions.

Sequences are drawn from a small grammar: an opening (handshake, SYN alone, SYN-ACK
alone, mid-stream), data in both directions, retransmitted packets anywhere, and a
teardown (none, half-closes, both FINs in either order, FIN then RST from the same side
then the peer's FIN, RSTs before or after the FINs). The expected state is read off the
grammar with the table of Zeek's definitions (base/protocols/conn/main.zeek,
``conn_state``) plus the one rule the table leaves implicit, from Zeek's TCP analyzer:
a FIN followed by a RST from one side, answered by the peer's FIN, is a normal close
(SF); a RST after both FINs changes nothing. Packets are plain rows fed to FlowBuilder,
as in test_flows.py.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st

from flowaudit.flows.builder import FlowBuilder, FlowConfig
from flowaudit.flows.ports import service_port_mask
from flowaudit.kernels.layout import FRAG_HAS_L4, KIND_IP
from flowaudit.packets.batch import PacketBatch

A, B = ("10.0.0.1", 40000), ("10.0.0.2", 80)  # B's port is well known: B is the responder
FLAG_BITS = {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}
#: Zeek's conn_state table
ZEEK = {
    "S0": "Connection attempt seen, no reply",
    "S1": "Connection established, not terminated",
    "SF": "Normal establishment and termination",
    "REJ": "Connection attempt rejected",
    "S2": "Established, close attempt by originator seen (no reply from responder)",
    "S3": "Established, close attempt by responder seen (no reply from originator)",
    "RSTO": "Established, originator aborted (sent a RST)",
    "RSTR": "Responder sent a RST",
    "RSTOS0": "Originator sent a SYN followed by a RST, never saw a SYN-ACK",
    "RSTRH": "Responder sent a SYN ACK followed by a RST, never saw a SYN from the originator",
    "SH": "Originator sent a SYN followed by a FIN, never saw a SYN ACK",
    "SHR": "Responder sent a SYN ACK followed by a FIN, never saw a SYN from the originator",
    "OTH": "No SYN seen, just midstream traffic",
}
Pkt = tuple[str, str, int]  # (sender "A"/"B", flags, payload bytes)
OTHER = {"A": "B", "B": "A"}


def batch(seq: list[Pkt]) -> PacketBatch:
    b = PacketBatch.empty(len(seq))
    for i, (who, flags, data) in enumerate(seq):
        (sip, sport), (dip, dport) = (A, B) if who == "A" else (B, A)
        s, d = int(ipaddress.ip_address(sip)), int(ipaddress.ip_address(dip))
        b["ts_ns"][i] = i * 10_000_000  # 10 ms apart: all within the close linger
        b["ip_len"][i] = 40 + data
        b["wire_len"][i] = 54 + data
        b["vlan"][i] = -1
        b["kind"][i] = KIND_IP
        b["ip_version"][i] = 4
        b["src_hi"][i], b["src_lo"][i] = 0, (0xFFFF << 32) | s
        b["dst_hi"][i], b["dst_lo"][i] = 0, (0xFFFF << 32) | d
        b["protocol"][i] = 6
        b["sport"][i], b["dport"][i] = sport, dport
        b["tcp_flags"][i] = sum(FLAG_BITS[c] for c in flags)
        b["frag"][i] = FRAG_HAS_L4
        b["frag_id"][i] = 0
    b.check()
    return b


def flows_of(seq: list[Pkt]) -> list[dict[str, Any]]:
    fb = FlowBuilder("cap", "pcap", FlowConfig(service_ports=service_port_mask(())))
    out = fb.add(batch(seq)).to_pylist()
    return out + fb.finish().to_pylist()


# --- the grammar ------------------------------------------------------------------------


@st.composite
def repeated(draw: st.DrawFn, pkt: Pkt) -> list[Pkt]:
    """A packet, retransmitted 0-2 times."""
    return [pkt] * draw(st.integers(1, 3))


@st.composite
def chatter(draw: st.DrawFn, senders: str = "AB") -> list[Pkt]:
    """Data and pure ACKs from the given sides (no SYN, FIN or RST), maybe retransmitted."""
    out: list[Pkt] = []
    for _ in range(draw(st.integers(0, 4))):
        who = draw(st.sampled_from(senders))
        kind = draw(st.sampled_from([("PA", 100), ("A", 0), ("PA", 1)]))
        out += draw(repeated((who, *kind)))
    return out


@st.composite
def established(draw: st.DrawFn) -> tuple[list[Pkt], str]:
    """A handshake, data, and a teardown → (packets, Zeek state)."""
    seq = draw(repeated(("A", "S", 0))) + draw(repeated(("B", "SA", 0))) + [("A", "A", 0)]
    seq += draw(chatter())
    kind = draw(st.sampled_from(["open", "fin", "both_fins", "fin_rst_fin", "rst", "fin_then_rst"]))
    if kind == "open":
        return seq, "S1"
    if kind == "fin":  # one side closes; the other may go on sending (a half-close)
        x = draw(st.sampled_from("AB"))
        seq += draw(repeated((x, "FA", 0))) + draw(chatter(OTHER[x]))
        return seq, "S2" if x == "A" else "S3"
    if kind == "both_fins":  # either side first, half-close data between, RSTs after
        x = draw(st.sampled_from("AB"))
        seq += draw(repeated((x, "FA", 0))) + draw(chatter(OTHER[x]))
        seq += draw(repeated((OTHER[x], "FA", 0))) + draw(chatter("AB"))
        for who in draw(st.lists(st.sampled_from("AB"), max_size=2)):
            seq.append((who, draw(st.sampled_from(["R", "RA"])), 0))
        return seq, "SF"
    if kind == "fin_rst_fin":  # FIN, then RST from the same side, then the peer's FIN
        x = draw(st.sampled_from("AB"))
        seq += draw(repeated((x, "FA", 0))) + draw(chatter(OTHER[x]))
        seq += draw(repeated((x, draw(st.sampled_from(["R", "RA"])), 0)))
        seq += draw(chatter(OTHER[x])) + [(OTHER[x], "FA", 0)]
        return seq, "SF"
    if kind == "rst":  # an abort with no FIN before it
        x = draw(st.sampled_from("AB"))
        seq += draw(repeated((x, draw(st.sampled_from(["R", "RA"])), 0)))
        return seq, "RSTO" if x == "A" else "RSTR"
    # one FIN (either side), then a RST from either side: the RST decides
    f, x = draw(st.sampled_from("AB")), draw(st.sampled_from("AB"))
    seq += draw(repeated((f, "FA", 0))) + draw(chatter(OTHER[f]))
    seq += draw(repeated((x, draw(st.sampled_from(["R", "RA"])), 0)))
    return seq, "RSTO" if x == "A" else "RSTR"


@st.composite
def unanswered(draw: st.DrawFn) -> tuple[list[Pkt], str]:
    """No complete handshake: a SYN alone, or a SYN-ACK alone, then what follows."""
    if draw(st.booleans()):
        seq = draw(repeated(("A", "S", 0)))
        end = draw(st.sampled_from(["S0", "REJ", "RSTOS0", "SH"]))
        tail = {
            "S0": [],
            "REJ": draw(repeated(("B", draw(st.sampled_from(["R", "RA"])), 0))),
            "RSTOS0": [("A", "R", 0)],
            "SH": [("A", "F", 0)],
        }[end]
        return seq + tail, end
    seq = draw(repeated(("B", "SA", 0)))
    end = draw(st.sampled_from(["RSTRH", "SHR"]))
    return seq + [("B", "R" if end == "RSTRH" else "F", 0)], end


@st.composite
def midstream(draw: st.DrawFn) -> tuple[list[Pkt], str]:
    first = draw(st.sampled_from([("A", "PA", 100), ("B", "PA", 100), ("A", "A", 0)]))
    return [first, *draw(chatter())], "OTH"


SEQUENCES = st.one_of(established(), established(), unanswered(), midstream())


@given(case=SEQUENCES)
@example(case=([("A", "S", 0), ("B", "SA", 0), ("A", "A", 0), ("A", "FA", 0), ("A", "R", 0),
                ("B", "FA", 0)], "SF"))  # fmt: skip
@example(case=([("A", "S", 0), ("B", "SA", 0), ("A", "A", 0), ("B", "FA", 0), ("B", "R", 0),
                ("A", "FA", 0)], "SF"))  # fmt: skip
@example(case=([("A", "S", 0), ("B", "SA", 0), ("A", "A", 0), ("A", "FA", 0), ("B", "FA", 0),
                ("A", "R", 0)], "SF"))  # fmt: skip
@example(case=([("A", "S", 0), ("B", "SA", 0), ("A", "A", 0), ("A", "FA", 0), ("B", "R", 0)],
               "RSTR"))  # fmt: skip
def test_conn_state_follows_zeeks_definitions(case: tuple[list[Pkt], str]) -> None:
    seq, state = case
    assert state in ZEEK
    (flow,) = flows_of(seq)
    assert flow["state"] == state, ZEEK[state]
    event(state)
    # the originator is A: it sent the SYN, received the SYN-ACK, or has the client port
    assert (flow["src_ip"], flow["src_port"], flow["dst_ip"], flow["dst_port"]) == (*A, *B)
    for side, who in (("src", "A"), ("dst", "B")):
        mine = [(f, d) for w, f, d in seq if w == who]
        assert flow[f"{side}_packets"] == len(mine)
        assert flow[f"{side}_ip_bytes"] == sum(40 + d for _, d in mine)
        assert flow[f"{side}_bytes"] == sum(54 + d for _, d in mine)
        flags = 0
        for f, _ in mine:
            flags |= sum(FLAG_BITS[c] for c in f)
        assert flow[f"tcp_flags_{side}"] == flags
