"""Record-format detection by content (``--format auto``): nfcapd, Zeek conn.log, Hubble.

Responsible for one question: which record reader fits a file, judged from its first
bytes (gzip opened transparently), never from its name. NetFlow/IPFIX inside a pcap is
deliberately not detected (a capture may legitimately contain export traffic to audit;
``--format netflow`` is explicit).

* **nfcapd**: little-endian magic ``0xA50C`` and layout version 1 or 2 at byte 0.
* **zeek**: a TSV log whose header has ``#separator`` or ``#fields`` (comment lines
  such as Zeek's btest ``###`` banner may come first), or JSON lines whose first object
  has ``uid`` and ``id.orig_h``.
* **hubble**: JSON lines whose first object has a ``flow`` object (``hubble observe
  -o json``).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

from flowaudit.errors import CaptureError
from flowaudit.ingest.sniff import open_stream

SNIFF_BYTES = 1 << 16
RECORD_FORMATS = ("nfcapd", "zeek", "hubble")


def detect_record_format(path: str | Path) -> str | None:
    """ "nfcapd", "zeek", "hubble", or None when the content is none of them."""
    p = Path(path)
    try:
        with open_stream(p) as f:
            head = f.read(SNIFF_BYTES)
    except (OSError, EOFError, zlib.error) as e:
        raise CaptureError(f"{p}: cannot read at byte 0: {e}") from e
    if len(head) >= 4:
        magic, version = struct.unpack_from("<HH", head, 0)
        if magic == 0xA50C and version in (1, 2):
            return "nfcapd"
    text = head.decode("utf-8", "replace")
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if s.startswith("#separator") or s.startswith("#fields"):
            return "zeek"
        if s.startswith("#"):
            continue  # a comment or another header before #separator
        if s.startswith("{"):
            return _json_kind(s)
        return None
    return None


def _json_kind(line: str) -> str | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None  # a first line cut by SNIFF_BYTES or not JSON at all
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("flow"), dict):
        return "hubble"
    if "uid" in obj and "id.orig_h" in obj:
        return "zeek"
    return None


__all__ = ["RECORD_FORMATS", "detect_record_format"]
