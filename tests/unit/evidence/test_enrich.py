"""Enrichment: tshark names what flagged traffic is; one pass maps each value to its finding.

Expected values were established independently with tshark 4.0 ``-T fields`` on the
same files (see tests/data/evidence/SOURCES.md):

* zeek-ssh-three-conns.pcap: ``-e ssh.protocol`` finds only the port-22 banners; with
  ``-d tcp.port==2200,ssh -d tcp.port==41644,ssh`` also the two odd-port connections';
* zeek-pppoe-over-qinq.pcap: ``-e tls.handshake.extensions_server_name`` = xp.apple.com,
  ``-e x509ce.dNSName`` = the 5 SAN names; the leaf's subject CN (``-V``:
  ``id-at-commonName=mzuserxp.itunes.apple.com``) is one of them;
* zeek-http-get.pcap: ``-e http.host`` = bro.org; tcpdump-dns_udp.pcap:
  ``-e dns.qry.name`` = www.tcpdump.org (query and answer).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from testpaths import DATA, REPO

from flowaudit import api
from flowaudit.evidence.enrich import decode_as_rules, enrich_pcap, enrich_result
from flowaudit.evidence.write import write_evidence

EV = DATA / "evidence"
SSH = EV / "zeek-ssh-three-conns.pcap"
CAPTURES = [SSH, EV / "zeek-pppoe-over-qinq.pcap", EV / "zeek-http-get.pcap",
            EV / "tcpdump-dns_udp.pcap"]  # fmt: skip

EXPECTED = {
    # SSH on 2200 and 41644: found only through decode-as
    "209e6c322ef59e4e": {"ssh_banner": ["SSH-2.0-OpenSSH_6.2", "SSH-2.0-paramiko_1.15.2"]},
    "2ce671d7a6bf7e14": {
        "ssh_banner": ["SSH-2.0-OpenSSH_5.9p1 Debian-5ubuntu1.1", "SSH-2.0-OpenSSH_6.6"]
    },
    "e7be1288dc07efe8": {"ssh_banner": ["SSH-2.0-OpenSSH_5.8", "SSH-2.0-OpenSSH_5.9"]},
    "74f6495e2422b384": {
        "tls_sni": ["xp.apple.com"],
        "tls_cert_names": [
            "metrics.mzstatic.com",
            "mzuserxp.itunes.apple.com",
            "xp-cdn.apple.com",
            "xp.apple.com",
            "xp2.apple.com",
        ],  # fmt: skip
    },
    "6bff6c3c79f7592e": {"http_host": ["bro.org"]},
    "5a79448f54e3eb95": {"dns_names": ["www.tcpdump.org"]},
}


@pytest.mark.tshark
def test_enrich_result_attaches_each_value_to_its_finding() -> None:
    result = api.audit(CAPTURES)
    assert sorted(result.violations.column("finding_id").to_pylist()) == sorted(EXPECTED)
    enriched = enrich_result(result, CAPTURES)
    assert enriched.enrichment == EXPECTED
    assert result.enrichment == {}  # the input result is left as it was


@pytest.mark.tshark
def test_odd_ports_are_decoded_by_payload() -> None:
    assert decode_as_rules(SSH) == ["tcp.port==2200,ssh", "tcp.port==41644,ssh"]
    plain = subprocess.run(
        ["tshark", "-r", str(SSH), "-Y", "ssh.protocol", "-T", "fields", "-e", "tcp.dstport"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert set(plain) == {"22", "51880"}  # without decode-as: only the port-22 connection
    assert enrich_pcap(SSH)["*"]["ssh_banner"] == sorted(
        v for f in ("209e6c322ef59e4e", "2ce671d7a6bf7e14", "e7be1288dc07efe8")
        for v in EXPECTED[f]["ssh_banner"]
    )  # fmt: skip


@pytest.mark.tshark
def test_evidence_manifest_carries_the_enrichment(tmp_path: Path) -> None:
    res = write_evidence("209e6c32", [SSH], tmp_path, enrich=True)
    assert res.enrichment == EXPECTED["209e6c322ef59e4e"]
    doc = json.loads(res.manifest_path.read_text())
    assert doc["enrichment"] == EXPECTED["209e6c322ef59e4e"]
    assert "first 16 packets" in doc["enrichment_note"]


def test_no_enrich_leaves_enrichment_out(tmp_path: Path) -> None:
    res = write_evidence("6bff6c3c", [EV / "zeek-http-get.pcap"], tmp_path, enrich=False)
    assert res.enrichment is None and res.packets == 14


@pytest.mark.slow
@pytest.mark.tshark
def test_audit_enrich_shows_an_optional_column_in_every_format(tmp_path: Path) -> None:
    """`flowaudit audit --enrich` on the sample: its DNS violations name their queries."""
    from click.testing import CliRunner

    from flowaudit.cli import cli

    sample = REPO / "samples" / "pcaps" / "vlan111-mixed.pcap"
    base = ["audit", str(sample), "--group", "admin_workstations=10.25.100.10,10.25.100.11"]
    r = CliRunner().invoke(cli, [*base, "--enrich", "--format", "json"])
    assert r.exit_code == 1, r.output
    got = {v["finding_id"]: v["enrichment"] for v in json.loads(r.stdout)["violations"]}
    named = {k: v for k, v in got.items() if v}
    # the generator's DNS queries (to 8.8.8.8 and 1.1.1.1), mDNS browsing, the SSH banners
    # of a node logging in to the appliance, and a node's TLS ClientHello to an unknown host
    assert named == {
        "cb64648a01a4f24a": {"tls_sni": ["objectstore.backup.internal"]},
        "fe11e0e7d5f0aedf": {
            "ssh_banner": ["SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.7", "SSH-2.0-OpenSSH_9.6"]
        },
        "e72e186073f987aa": {"dns_names": ["registry.k8s.io"]},
        "7700428a88263ab2": {"dns_names": ["registry.k8s.io"]},
    }
    assert len(got) == 14  # every violation has the key, most with nothing to name
    for fmt in ("markdown", "html", "csv", "text"):
        out = tmp_path / f"r.{fmt}"
        r = CliRunner().invoke(cli, [*base, "--enrich", "--format", fmt, "-o", str(out)])
        assert r.exit_code == 1, r.output
        text = out.read_text()
        assert "what it is" in text and "DNS registry.k8s.io" in text, fmt
    plain = CliRunner().invoke(cli, [*base, "--format", "markdown"]).output
    assert "what it is" not in plain  # optional: only with --enrich


@pytest.mark.tshark
def test_enrich_from_a_store_needs_the_captures_where_they_were(tmp_path: Path) -> None:
    """Auditing a store: enrichment reads the captures at their recorded paths."""
    from click.testing import CliRunner

    from flowaudit.cli import cli

    moved = tmp_path / "http.pcap"
    other = tmp_path / "dns.pcap"
    moved.write_bytes((EV / "zeek-http-get.pcap").read_bytes())
    other.write_bytes((EV / "tcpdump-dns_udp.pcap").read_bytes())
    store = tmp_path / "store"
    api.ingest([moved, other], store)
    moved.unlink()
    r = CliRunner().invoke(cli, ["audit", "--store", str(store), "--enrich", "--format", "json"])
    assert r.exit_code == 1, r.output
    assert f"{moved}: capture no longer at this path; its findings are not enriched" in r.output
    doc = json.loads(r.output[r.output.index("{") :])
    got = {v["finding_id"]: v["enrichment"] for v in doc["violations"]}
    assert got["5a79448f54e3eb95"] == {"dns_names": ["www.tcpdump.org"]}
    assert got["6bff6c3c79f7592e"] == {}  # its capture is gone
    other.unlink()
    r = CliRunner().invoke(cli, ["audit", "--store", str(store), "--enrich"])
    assert r.exit_code == 2
    assert "--enrich needs the packets: no capture of the store is at its recorded path" in r.output
