"""Input limits: what flowaudit refuses to read, in one place (issue 12).

Every limit here guards a reader against input that is hostile or broken rather than
merely large: a reviewed matrix is a few kilobytes with shallow nesting, and a flow record's
integer fields have the ranges of their wire types. Input beyond a limit is refused with a
usage error naming file and line (matrices) or skipped with a counted warning naming the
line (flow records); it is never truncated, wrapped or passed on. Documented in
``rules/README.md`` (matrix limits) and ``ARCHITECTURE.md`` (record fields).

Imports nothing, so every layer may use it.
"""

from __future__ import annotations

# --- matrix YAML (flowaudit.matrix.yamlio) -----------------------------------------------
#: largest matrix or overlay file read, checked before parsing (the shipped one is ~16 KiB)
MATRIX_MAX_BYTES = 4 * 1024 * 1024
#: deepest nesting of YAML collections, checked while composing (the format needs 4)
MATRIX_MAX_DEPTH = 32
#: most rules in one matrix (the shipped one has 41): `rules lint` compares rules pairwise
#: (2,000 rules: ~20 s; 4,000: ~80 s; the 27,000 a 4 MiB file holds: about an hour)
MATRIX_MAX_RULES = 2000
#: most compiled rule rows (per rule: protocols × from-address ranges × to-address ranges ×
#: port ranges; the shipped matrix compiles to 64): the audit's cost grows with them
#: (10,000 rows: ~25 s on the 125-flow sample; 100,000: ~5 min). Without it a 270 KB
#: matrix (1,000 one-address groups, 20 rules naming all of them) compiled to 20 million
#: rows and took 7 GB.
MATRIX_MAX_RULE_ROWS = 10_000
# YAML anchors and aliases are refused outright (a reviewed matrix spells every rule out;
# aliases are how a 16 KB file expands to gigabytes).

# --- flow records (flowaudit.records: Zeek, Hubble) --------------------------------------
#: deepest bracket nesting of one JSON line (a Hubble event nests ~4 deep)
JSON_MAX_DEPTH = 64
#: port numbers (TCP/UDP/SCTP) and ICMP type/code are unsigned 16 bit / 8 bit
MAX_PORT = 0xFFFF
MAX_ICMP = 0xFF
#: IP protocol numbers
MAX_PROTOCOL = 0xFF
#: 802.1Q VLAN ids
MAX_VLAN = 4095
#: packet and byte counters are unsigned 64 bit
MAX_COUNTER = 0xFFFF_FFFF_FFFF_FFFF
#: timestamps and durations: within 1970-01-01 .. 9999-12-31 (µs since the epoch), the
#: range every report can print
MAX_TIME_US = 253_402_300_799_999_999

__all__ = [
    "JSON_MAX_DEPTH",
    "MATRIX_MAX_BYTES",
    "MATRIX_MAX_DEPTH",
    "MATRIX_MAX_RULES",
    "MATRIX_MAX_RULE_ROWS",
    "MAX_COUNTER",
    "MAX_ICMP",
    "MAX_PORT",
    "MAX_PROTOCOL",
    "MAX_TIME_US",
    "MAX_VLAN",
]
