"""The fast ingest path: compiled kernels (AOT and JIT agree), mapped reads, hashing, Arrow.

These pin what the speed work must not change: the ahead-of-time kernels and the numba
JIT fallback produce the same packets and flows; the memory-mapped reader and the
stream reader (gzip) produce the same batches for any window size; the windowed sha256
is the file's sha256; the Arrow columns built from buffers equal the obvious Python
values; and an ingest imports neither numba (AOT build present) nor pandas nor
pyarrow.compute, which together cost most of a 2M-packet ingest.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import blake3
import numpy as np
import pyarrow as pa
import pytest
from testpaths import DATA, REPO

from flowaudit._util import arrow as A
from flowaudit._util import files as _files
from flowaudit.flows.builder import FlowBuilder, address_rows
from flowaudit.ingest import _Hasher
from flowaudit.kernels import build as _native
from flowaudit.packets.pcap import iter_packets, read_all

PCAPS = DATA / "pcaps"
# Ethernet+VLAN+QinQ, IPv6, fragments, SLL, SLL2, pcapng, big-endian, null/loopback
SAMPLES = [
    "zeek-http-get.pcap",
    "zeek-http-qinq-0.pcap",
    "zeek-ftp-ipv6.pcap",
    "zeek-ipv4-fragmented-3.pcap",
    "ndpi-dns_fragmented.pcap",
    "tcpdump-tcp-handshake-nano.sll.pcap",
    "ptcpdump-tfo.sll2.pcap",
    "ptcpdump-tcp.comments.pcapng",
    "tcpdump-pptp.bigendian.pcap",
    "zeek-http-connect-with-header.null.pcap",
    "zeek-communityid-icmp6.pcap",
]

_FLOWS_SCRIPT = """
import json, sys
from flowaudit.kernels.build import kernels
from flowaudit.flows.builder import FlowBuilder
from flowaudit.packets.pcap import iter_packets
out = {"origin": kernels().origin, "flows": {}, "packets": {}}
for path in sys.argv[1:]:
    b = FlowBuilder("cap", "pcap")
    tables = [b.add(batch) for batch in iter_packets(path)] + [b.finish()]
    rows = [r for t in tables for r in t.to_pylist()]
    out["flows"][path] = json.loads(json.dumps(rows, default=str))
    out["packets"][path] = sum(
        int(batch.arrays["wire_len"].sum()) + int(batch.arrays["src_lo"].sum() % 997)
        for batch in iter_packets(path)
    )
json.dump(out, sys.stdout)
"""


def _flows_in_child(env_extra: dict[str, str]) -> dict[str, object]:
    env = dict(os.environ, **env_extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", _FLOWS_SCRIPT, *[str(PCAPS / s) for s in SAMPLES]],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=900,
    )
    result: dict[str, object] = json.loads(proc.stdout)
    return result


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler: no AOT build")
def test_aot_and_jit_kernels_give_identical_flows() -> None:
    aot = _flows_in_child({"FLOWAUDIT_NATIVE": "aot"})
    jit = _flows_in_child({"FLOWAUDIT_NATIVE": "jit"})
    assert str(aot["origin"]).startswith("aot:")
    assert jit["origin"] == "jit"
    assert aot["packets"] == jit["packets"]
    assert aot["flows"] == jit["flows"]
    flows = aot["flows"]
    assert isinstance(flows, dict)
    assert sum(len(v) for v in flows.values()) > 40  # the samples make real flows


def test_aot_module_key_follows_the_kernel_sources() -> None:
    path = _native.module_path()
    assert path.name.startswith(f"{_native.MODULE}-{_native.key()}")
    assert set(_native.KERNELS) == {
        "walk_pcap", "walk_pcapng", "decode", "walk", "sweep", "rehash", "frag_rehash",
        "conn_states", "find_inner", "community_ids", "address_text",
    }  # fmt: skip
    # the key covers every module of the kernels folder, and every kernel lives there
    assert set(_native.SOURCES) == {p.name for p in _native.HERE.glob("*.py")}
    assert {"layout.py", "icmp.py", "walk.py", "decode.py", "flowtable.py"} <= set(_native.SOURCES)
    for module, _sig in _native.KERNELS.values():
        assert module.startswith("flowaudit.kernels."), module


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("chunk", [4096, 1000, 70_000])
def test_mapped_windows_and_gzip_stream_read_the_same_packets(
    name: str, chunk: int, tmp_path: Path
) -> None:
    ref = read_all(PCAPS / name)
    gz = tmp_path / (name + ".gz")
    gz.write_bytes(gzip.compress((PCAPS / name).read_bytes()))
    for path in (PCAPS / name, gz):
        parts = list(iter_packets(path, chunk_bytes=chunk, max_batch=5))
        assert sum(len(p) for p in parts) == len(ref)
        for k, v in ref.arrays.items():
            got = np.concatenate([p.arrays[k] for p in parts])
            assert np.array_equal(got, v), (path.name, k)


# BLAKE3 of the empty input and of bytes 0..250 repeated (1024 bytes): the reference
# implementation's test vectors (BLAKE3 team, test_vectors.json, default hash, 32 bytes)
B3_EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
B3_1024 = "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"


@pytest.mark.parametrize("window", [4096, 1 << 20])
def test_windowed_digest_is_the_file_blake3(
    window: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_files, "HASH_WINDOW", window)
    vector = tmp_path / "vector"
    vector.write_bytes(bytes(i % 251 for i in range(1024)))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert _Hasher(empty).digest() == _files.digest_file(empty) == B3_EMPTY
    assert _Hasher(vector).digest() == _files.digest_file(vector, threads=1) == B3_1024
    for path in [PCAPS / "zeek-ftp-ipv6.pcap", PCAPS / "zeek-echo-connections.pcap.gz", vector]:
        want = blake3.blake3(path.read_bytes()).hexdigest()
        assert _Hasher(path).digest() == _files.digest_file(path) == want
        with open(path, "rb") as f:  # read, not mapped (a pipe, an odd filesystem)
            assert _files._read_digest(f, 1) == want  # type: ignore[arg-type]
        b3sum = shutil.which("b3sum")  # Debian's b3sum (CI installs it): what reviewers run
        assert b3sum is not None or not os.environ.get("CI"), "CI must check against b3sum"
        if b3sum is not None:
            out = subprocess.run([b3sum, "--no-names", str(path)], capture_output=True, text=True)
            assert out.stdout.strip() == want


def _child_digest(path: str, out: Any) -> None:
    out.put(_files.digest_file(path, threads=0))


def test_all_core_digest_in_a_forked_child(tmp_path: Path) -> None:
    """blake3's all-core pool does not survive fork(): a child of a process that hashed with
    all cores hashes with one thread (it used to wait forever, e.g. under mutmut)."""
    import multiprocessing

    big = tmp_path / "big"
    big.write_bytes(np.random.default_rng(3).integers(0, 256, 8 << 20, np.uint8).tobytes())
    want = blake3.blake3(big.read_bytes()).hexdigest()
    assert _files.digest_file(big, threads=0) == want  # the pool runs in this process now
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_digest, args=(str(big), out))
    child.start()
    child.join(60)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung, "the forked child's all-core hash never returned"
    assert child.exitcode == 0 and out.get(timeout=5) == want


def test_arrow_columns_from_buffers() -> None:
    addrs = ["10.25.233.4", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::ffff:1.2.3.4",
             "fe80::1:2", "192.168.1.100", "2001:db8::1"]  # fmt: skip
    ipv, hi, lo = [], [], []
    for a in addrs:
        ip = ipaddress.ip_address(a)
        v = int(ip) | (0xFFFF00000000 if ip.version == 4 else 0)
        ipv.append(ip.version)
        hi.append(v >> 64)
        lo.append(v & (2**64 - 1))
    text = A.ip_text(np.array(ipv, np.int8), np.array(hi, np.uint64), np.array(lo, np.uint64))
    assert text.to_pylist() == [str(ipaddress.ip_address(a)) for a in addrs]
    # the compiled row writer (the flow builders') gives the same text
    fast = A.ip_text(np.array(ipv, np.int8), np.array(hi, np.uint64), np.array(lo, np.uint64),
                     address_rows)  # fmt: skip
    assert fast.to_pylist() == [str(ipaddress.ip_address(a)) for a in addrs]
    rng = np.random.default_rng(5)
    quads = rng.integers(0, 1 << 32, 2000, dtype=np.uint64)
    quads[:6] = [0, 9, 10, 99, 100, 0xFFFFFFFF]  # every digit count of every octet
    quads[6:9] = [0x0A09630A, 0x64FF0063, 0x01020304]
    want4 = [str(ipaddress.IPv4Address(int(q))) for q in quads]
    four, zeros = np.full(len(quads), 4, np.int8), np.zeros(len(quads), np.uint64)
    assert A.ip_text(four, zeros, quads, address_rows).to_pylist() == want4
    # IPv6 rows among them (a few distinct ones, repeated, as in a flow batch), both writers
    v6 = [ipaddress.IPv6Address(x) for x in ("fe80::1", "2001:db8::a:0:0:1", "ff02::fb",
                                             "::", "2001:db8:1:2:3:4:5:6",
                                             "::ffff:10.1.2.3")]  # fmt: skip
    pick = rng.integers(-len(v6), len(v6), len(quads))  # < 0: an IPv4 row
    ipv6 = np.where(pick < 0, 4, 6).astype(np.int8)
    hi6 = np.array([int(v6[p]) >> 64 if p >= 0 else 0 for p in pick], np.uint64)
    lo6 = np.array([int(v6[p]) & (2**64 - 1) if p >= 0 else int(q)
                    for p, q in zip(pick, quads, strict=True)], np.uint64)  # fmt: skip
    want = [str(v6[p]) if p >= 0 else w for p, w in zip(pick, want4, strict=True)]
    assert A.ip_text(ipv6, hi6, lo6, address_rows).to_pylist() == want
    assert A.ip_text(ipv6, hi6, lo6).to_pylist() == want
    assert A.ip_text(np.array([4], np.int8), np.zeros(1, np.uint64),
                     np.array([0xFFFF0A000001], np.uint64)).to_pylist() == ["10.0.0.1"]  # fmt: skip
    assert A.from_codes(np.array([], np.int8), ("S0",)).to_pylist() == []
    assert A.from_codes(np.array([2, 0, 1, 2]), ("S0", "SF", "RSTRH")).to_pylist() == [
        "RSTRH", "S0", "SF", "RSTRH"]  # fmt: skip
    assert A.constant("pcap", 3).to_pylist() == ["pcap"] * 3
    assert A.constant("", 2).to_pylist() == ["", ""] and A.constant("x", 0).to_pylist() == []
    v = A.fixed(pa.int16(), np.array([111, -1, 5], np.int16), null=np.array([False, True, False]))
    assert v.to_pylist() == [111, None, 5]
    assert v.type == pa.int16()
    with pytest.raises(TypeError):
        A.fixed(pa.int16(), np.array([1], np.int64))


def test_ingest_loads_neither_numba_nor_pandas_nor_pyarrow_compute(tmp_path: Path) -> None:
    _native.kernels()  # make sure the AOT module exists (built here if it was not)
    if not _native.kernels().origin.startswith("aot:"):
        # CI has a C compiler: there the compiled module must build, not be skipped
        assert not os.environ.get("CI"), "the ahead-of-time kernel build failed in CI"
        pytest.skip("no AOT build on this machine: the JIT fallback imports numba")
    cap, store = str(PCAPS / "zeek-http-get.pcap"), str(tmp_path)
    code = (
        "import sys\nfrom flowaudit import api\n"
        f"(r,) = api.ingest({cap!r}, api.open_store({store!r}))\n"
        "heavy = ('numba', 'pandas', 'pyarrow.compute')\n"
        "print(r.flows, sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert proc.stdout.split() == ["1", "[]"]


def test_flow_tables_are_in_first_seen_then_flow_id_order() -> None:
    b = FlowBuilder("cap", "pcap")
    tables = [b.add(x) for x in iter_packets(PCAPS / "zeek-echo-connections.pcap.gz")]
    tables.append(b.finish())
    for t in tables:
        keys = list(
            zip(t.column("first_seen").to_pylist(), t.column("flow_id").to_pylist(), strict=True)
        )
        assert keys == sorted(keys)
    assert sum(t.num_rows for t in tables) > 100


def test_the_build_is_announced_through_the_callback_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run's build says so (the CLI prints it on stderr); library code never prints;
    a process waiting for another's build says that instead."""
    heard: list[str] = []
    built: list[Path] = []
    monkeypatch.setattr(_native, "_build_in_child", lambda path: built.append(path))
    _native.on_build(heard.append)
    try:
        target = tmp_path / "k" / "mod.so"
        _native._build_locked(target)
        assert (heard, built) == ([_native.BUILDING], [target])
        # another live process holds the build lock: wait (told once), then give up
        heard.clear()
        target.with_suffix(".lock").write_text(str(os.getppid()))
        monkeypatch.setattr(_native, "BUILD_TIMEOUT_S", 0.5)
        _native._build_locked(target)
        assert heard == [_native.WAITING] and built == [target]
    finally:
        _native.on_build(None)
    _native._build_locked(tmp_path / "k2" / "mod.so")  # no callback: silent
    assert heard == [_native.WAITING]


def test_a_fresh_install_says_it_compiles_then_selftest_passes(tmp_path: Path) -> None:
    """The CLI prints the build notice on stderr (the build itself is stubbed: a fresh
    cache dir and a failing compiler make the JIT fallback take over)."""
    code = (
        "import sys\nfrom flowaudit.kernels import build\n"
        "build._build_in_child = lambda path: build._note_failure(\n"
        "    path.with_suffix('.failed'), 'stubbed: no compiler')\n"
        "from flowaudit.cli import main\nsys.argv = ['flowaudit', 'selftest']\nmain()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), FLOWAUDIT_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("FLOWAUDIT_NATIVE", None)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("flowaudit: compiling the packet kernels once (~30 s)…\n")
    assert "kernels: numba JIT (no AOT build)" in proc.stdout
    # 14 violations: the sample's truth less its 4 LAN control-plane flows (apart)
    assert "audit: 125 flows, 14 violations" in proc.stdout
    assert proc.stdout.endswith("selftest: all well\n")


def test_selftest_with_the_compiled_kernels() -> None:
    from click.testing import CliRunner

    from flowaudit.cli import cli

    r = CliRunner().invoke(cli, ["selftest"])
    assert r.exit_code == 0, r.output
    assert "ingest: vlan111-mixed.pcap: 3,000 packets, 125 flows" in r.stdout
    assert r.stdout.endswith("selftest: all well\n")
