"""Inner packets of VXLAN, Geneve and GRE frames → inner flows (schema v1 + tunnel columns).

``InnerFlowBuilder`` is the flow builder (same key, initiator, counters, Zeek state,
timeouts) keyed also by the tunnel: (tunnel, VNI/GRE key, outer VLAN) takes the place of the
VLAN in the flow key, so the packets of one inner conversation are one flow whichever outer
flows carried them (VXLAN picks the outer source port per inner flow; a node pair's two
directions are two outer flows). Each inner flow remembers its first packet's outer header:

* ``tunnel`` / ``tunnel_id``: ``vxlan``/``geneve``/``gre``, the VNI or GRE key (null when
  a GRE header has no key); ``vlan_id``: the outer frame's VLAN (the inner frame's own tag,
  rare, is not kept).
* ``outer_src_ip`` / ``outer_dst_ip``: the outer addresses oriented with the inner flow:
  the node that carried the inner initiator's packets, then the other one.
* ``outer_flow_id``: the Community ID of the outer UDP/GRE flow of the first packet.

The inner packets are the same frames as the outer ones, so summing packets over inner and
outer flows counts those frames twice: filter on ``tunnel IS NULL`` for the wire's totals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from flowaudit._util import arrow as A
from flowaudit.flows.builder import FlowBuilder, FlowConfig, address_rows
from flowaudit.flows.community_id import community_ids
from flowaudit.kernels.layout import TUNNEL_NAMES
from flowaudit.packets.batch import PACKET_FIELDS, PacketBatch

# what is kept of each inner flow's first packet, by flow uid
_FIRST = ("src_hi", "src_lo", "sport", "outer_ip_version", "outer_src_hi", "outer_src_lo",
          "outer_dst_hi", "outer_dst_lo", "outer_protocol", "outer_sport",
          "outer_dport")  # fmt: skip


class InnerFlowBuilder(FlowBuilder):
    """Streams inner batches (``PacketBatch.inner``) into inner flows."""

    def __init__(self, capture_id: str, source_kind: str, config: FlowConfig | None = None) -> None:
        super().__init__(capture_id, source_kind, config)
        self._keys: dict[tuple[int, int, int], int] = {}  # (tunnel, id, outer vlan) → key
        self._key_rows: list[tuple[int, int, int]] = []
        self._first_uid = np.zeros(0, dtype=np.int64)  # sorted
        self._first: dict[str, npt.NDArray[np.generic]] = {
            k: np.zeros(0, dtype=_dtype(k)) for k in _FIRST
        }

    def add(self, batch: PacketBatch) -> pa.Table:
        a = batch.arrays
        plain = PacketBatch({k: a[k] for k in PACKET_FIELDS})
        plain.arrays["vlan"] = self._tunnel_keys(a["tunnel"], a["tunnel_id"], a["outer_vlan"])
        uids = np.full(len(batch), -1, dtype=np.int64)
        self._walk(plain, uids)
        self._remember(a, uids)  # before the drain: flows may end within this batch
        return self._drain()

    def _tunnel_keys(
        self,
        tun: npt.NDArray[np.generic],
        tid: npt.NDArray[np.generic],
        vlan: npt.NDArray[np.generic],
    ) -> npt.NDArray[np.int32]:
        """Each packet's dense key of (tunnel, id, outer VLAN), the flow table's VLAN slot."""
        # one int64 per packet: tunnel (2 bits) | id + 1 (33 bits) | VLAN + 1 (13 bits)
        packed = ((tun.astype(np.int64) << 46) | ((tid.astype(np.int64) + 1) << 13)) | (
            vlan.astype(np.int64) + 1
        )
        codes = np.empty(len(packed), dtype=np.int32)
        left = np.ones(len(packed), dtype=bool)
        for _ in range(8):  # the usual case: a few keys, one pass over the batch each
            if not left.any():
                return codes
            v = int(packed[int(np.argmax(left))])
            hit = packed == v
            codes[hit] = self._key_code(v)
            left &= ~hit
        rest = np.flatnonzero(left)  # many keys: sort the rest
        uniq, inv = np.unique(packed[rest], return_inverse=True)
        codes[rest] = np.array([self._key_code(v) for v in uniq.tolist()], np.int32)[inv]
        return codes

    def _key_code(self, v: int) -> int:
        t = (v >> 46, ((v >> 13) & ((1 << 33) - 1)) - 1, (v & 0x1FFF) - 1)
        k = self._keys.get(t)
        if k is None:
            k = self._keys[t] = len(self._key_rows)
            self._key_rows.append(t)
        return k

    def _remember(self, a: dict[str, npt.NDArray[np.generic]], uids: npt.NDArray[np.int64]) -> None:
        """Keep the first packet of each flow created by this batch (uids grow by creation)."""
        rows = np.flatnonzero(uids >= 0)  # the packets that created a flow, uids ascending
        if not len(rows):
            return
        self._first_uid = np.concatenate([self._first_uid, uids[rows]])
        for k in _FIRST:
            self._first[k] = np.concatenate([self._first[k], a[k][rows]])

    def _lookup(self, uids: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[np.generic]]:
        """The first-packet rows of flows ``uids`` (emitted now), and forget them."""
        pos = np.searchsorted(self._first_uid, uids)
        out = {k: v[pos] for k, v in self._first.items()}
        keep = np.ones(len(self._first_uid), dtype=bool)
        keep[pos] = False
        self._first_uid = self._first_uid[keep]
        for k in _FIRST:
            self._first[k] = self._first[k][keep]
        return out

    def _more_columns(
        self,
        cols: dict[str, pa.Array],
        uids: npt.NDArray[np.int64],
        key: npt.NDArray[np.int32],
        initiator: tuple[npt.NDArray[Any], ...],
    ) -> None:
        n = len(uids)
        f = self._lookup(uids)
        keys = np.asarray(self._key_rows, dtype=np.int64).reshape(-1, 3)
        tun, tid, vlan = keys[key, 0], keys[key, 1], keys[key, 2]
        cols["vlan_id"] = A.fixed(pa.int16(), vlan.astype(np.int16), null=vlan < 0)
        cols["tunnel"] = A.from_codes(tun.astype(np.int8), TUNNEL_NAMES)
        cols["tunnel_id"] = A.fixed(pa.uint32(), tid.astype(np.uint32), null=tid < 0)
        # orient the outer addresses with the inner flow: did its initiator send packet 1?
        src_hi, src_lo, dst_hi, dst_lo, sport = initiator
        same = (src_hi == f["src_hi"]) & (src_lo == f["src_lo"])
        loop = (src_hi == dst_hi) & (src_lo == dst_lo)  # same address both ends: by port
        same = np.where(loop, sport.astype(np.int64) == f["sport"].astype(np.int64), same)
        ohi = np.where(same, f["outer_src_hi"], f["outer_dst_hi"])
        olo = np.where(same, f["outer_src_lo"], f["outer_dst_lo"])
        rhi = np.where(same, f["outer_dst_hi"], f["outer_src_hi"])
        rlo = np.where(same, f["outer_dst_lo"], f["outer_src_lo"])
        ipv = f["outer_ip_version"].astype(np.int8)
        text = A.ip_text(np.concatenate([ipv, ipv]), np.concatenate([ohi, rhi]),
                         np.concatenate([olo, rlo]), address_rows)  # fmt: skip
        cols["outer_src_ip"] = text.slice(0, n)
        cols["outer_dst_ip"] = text.slice(n, n)
        cols["outer_flow_id"] = community_ids(
            ipv, f["outer_src_hi"], f["outer_src_lo"], f["outer_dst_hi"], f["outer_dst_lo"],
            f["outer_protocol"], f["outer_sport"], f["outer_dport"],
        )  # fmt: skip


def _dtype(name: str) -> str:
    from flowaudit.packets.batch import INNER_FIELDS

    return INNER_FIELDS.get(name) or PACKET_FIELDS[name]


__all__ = ["InnerFlowBuilder"]
