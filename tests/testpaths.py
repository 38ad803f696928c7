"""Paths and the samples' site settings shared by the tests (``tests/`` is on sys.path)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DATA = TESTS / "data"
SAMPLES = REPO / "samples" / "pcaps"
MIXED = SAMPLES / "vlan111-mixed.pcap"
APPROVED = SAMPLES / "vlan111-approved.pcap"
#: the samples' admin workstations (the seed gives no address for them)
ADMIN = {"admin_workstations": ["10.25.100.10", "10.25.100.11"]}
ADMIN_OPT = ["--group", "admin_workstations=10.25.100.10,10.25.100.11"]
