"""Input detection by content, never by file name; gzip opened transparently.

``sniff_format(path)`` says "pcap", "pcapng" or "unknown" from the first four bytes
of the (decompressed) content. ``open_stream(path)`` opens the file for reading,
through ``gzip`` when it starts with the gzip magic. Empty or unreadable files raise
``CaptureError`` naming the file and byte offset 0.

``detect_record_format(path)`` answers ``--format auto`` for flow-record files:

* **nfcapd**: little-endian magic ``0xA50C`` and layout version 1 or 2 at byte 0.
* **zeek**: a TSV log whose header has ``#separator`` or ``#fields`` (comment lines
  such as Zeek's btest ``###`` banner may come first), or JSON lines whose first object
  has ``uid`` and ``id.orig_h``.
* **hubble**: JSON lines whose first object has a ``flow`` object (``hubble observe
  -o json``).

NetFlow/IPFIX inside a pcap is deliberately not detected (a capture may legitimately
contain export traffic to audit; ``--format netflow`` is explicit).
"""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from pathlib import Path
from typing import IO, cast

from flowaudit.errors import CaptureError

GZIP_MAGIC = b"\x1f\x8b"
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
# classic pcap magics as they appear in the file: (big-endian?, nanosecond?)
PCAP_MAGICS: dict[bytes, tuple[bool, bool]] = {
    b"\xd4\xc3\xb2\xa1": (False, False),
    b"\xa1\xb2\xc3\xd4": (True, False),
    b"\x4d\x3c\xb2\xa1": (False, True),
    b"\xa1\xb2\x3c\x4d": (True, True),
}


def is_gzip(path: str | Path) -> bool:
    """True when the file starts with the gzip magic (1f 8b)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == GZIP_MAGIC
    except OSError as e:
        raise CaptureError(f"{path}: cannot read at byte 0: {e.strerror or e}") from e


def open_stream(path: str | Path) -> IO[bytes]:
    """Open ``path`` for binary reading, decompressing gzip transparently."""
    try:
        if is_gzip(path):
            return cast(IO[bytes], gzip.open(path, "rb"))
        return open(path, "rb")
    except OSError as e:
        raise CaptureError(f"{path}: cannot open: {e.strerror or e}") from e


def read_magic(path: str | Path) -> bytes:
    """The first four bytes of the decompressed content (fewer if the file is shorter)."""
    with open_stream(path) as f:
        try:
            head = f.read(4)
        except (OSError, EOFError, zlib.error) as e:
            raise CaptureError(f"{path}: unreadable gzip stream at byte 0: {e}") from e
    if not head:
        raise CaptureError(f"{path}: empty file at byte 0: not a capture")
    return head


def format_of_magic(head: bytes) -> str:
    """ "pcap", "pcapng" or "unknown" for the first four bytes of a capture."""
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return "unknown"


def sniff_format(path: str | Path) -> str:
    """Return "pcap", "pcapng" or "unknown" for ``path`` (through gzip)."""
    return format_of_magic(read_magic(path))


SNIFF_BYTES = 1 << 16


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
    except RecursionError:
        return None  # nested past the interpreter's limit: no Zeek or Hubble line is
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("flow"), dict):
        return "hubble"
    if "uid" in obj and "id.orig_h" in obj:
        return "zeek"
    return None


__all__ = [
    "detect_record_format",
    "format_of_magic",
    "is_gzip",
    "open_stream",
    "read_magic",
    "sniff_format",
]
