"""Capture file → PacketBatch: pick a reader by magic bytes (not suffix) and stream.

``open_capture(path)`` returns the capture's format and an iterator of ``PacketBatch``
(``batch``): the fast reader (``pcap``, ``pcapng``, ``buffer``, over the compiled
kernels) or the tshark engine (``tshark``, the only pyshark user). ``detect`` judges
inputs by content; ``linklayer`` finds the IP header of a frame in Python.
``flowaudit.ingest.ingest_file`` turns the batches into flows in the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flowaudit.choices import ENGINES
from flowaudit.errors import CaptureError

if TYPE_CHECKING:  # numpy stays unimported until a capture is opened
    from flowaudit.packets.batch import PacketBatch, ReadStats


@dataclass
class OpenedCapture:
    path: Path
    source_kind: str  # "pcap" | "pcapng"
    reader: str  # "fast" | "tshark"
    batches: Iterator[PacketBatch]
    stats: ReadStats


def open_capture(
    path: str | Path,
    engine: str = "auto",
    progress: Callable[[int], None] | None = None,
    vxlan_ports: Sequence[int] | None = None,
) -> OpenedCapture:
    """Open a pcap/pcapng capture (``.gz`` transparently) with the chosen engine.

    ``auto`` uses the fast reader; ``tshark`` forces the tshark engine (for link
    types the fast reader does not decode). ``progress(bytes_read_from_disk)`` is
    called as the fast reader advances. ``vxlan_ports``, when given, opens tunnels
    (``packets.tunnels``: VXLAN on those UDP ports, Geneve, GRE): each batch's ``inner``
    holds the inner packets.
    """
    from flowaudit.packets.batch import ReadStats
    from flowaudit.packets.detect import sniff_format

    p = Path(path)
    if engine not in ENGINES:
        raise CaptureError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if not p.exists():
        raise CaptureError(f"{p}: no such file")
    if p.is_dir():
        raise CaptureError(f"{p}: is a directory, not a capture file")
    fmt = sniff_format(p)
    stats = ReadStats()
    if engine == "tshark":
        # tshark reads more than pcap/pcapng (snoop, ERF, ...): let it try
        from flowaudit.packets.tshark import iter_packets_tshark

        kind = fmt if fmt in ("pcap", "pcapng") else "pcap"
        batches = iter_packets_tshark(p, stats=stats, vxlan_ports=vxlan_ports)
        return OpenedCapture(p, kind, "tshark", batches, stats)
    if fmt not in ("pcap", "pcapng"):
        raise CaptureError(
            f"{p}: not a pcap or pcapng capture (unrecognised magic bytes at offset 0)",
            hint="NetFlow, nfcapd, Zeek and Hubble inputs need --format",
        )
    from flowaudit.packets.pcap import iter_packets

    ports = None
    if vxlan_ports is not None:
        from flowaudit.packets.tunnels import port_table

        ports = port_table(vxlan_ports)
    batches = iter_packets(p, stats=stats, progress=progress, tunnel_ports=ports)
    return OpenedCapture(p, fmt, "fast", batches, stats)


__all__ = ["OpenedCapture", "open_capture"]
