"""Ingest fanned out over Spark tasks leaves the store a serial ingest leaves.

Eight generated captures (benchmarks/gen_vlan111.py, different seeds and start times) are
ingested once serially and once with ``flowaudit.spark.ingest``: each capture's flow rows
are equal, and each manifest is equal apart from its ingest time and its flow files'
run-unique names (their ``date=`` partitions are the same).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from pcaptools import load_generator

import flowaudit.spark
from flowaudit import api
from flowaudit.cli import cli

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    gen = load_generator()
    d = tmp_path_factory.mktemp("caps")
    out = []
    for i in range(8):
        p = d / f"cap{i}.pcap"
        # two days apart in pairs: the flow files land in different date= partitions
        gen.generate(
            p, packets=1500 + 100 * i, seed=10 + i, start=f"2026-11-{20 + i // 2}T08:00:00Z"
        )
        out.append(p)
    return out


def _flows(store: Path, manifest: dict[str, Any]) -> pa.Table:
    t = pa.concat_tables([pq.read_table(store / f) for f in manifest["files"]])
    return t.sort_by([("flow_id", "ascending"), ("first_seen", "ascending")])


def _manifests(store: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((store / "manifest").glob("*.json"))}


def _comparable(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in m.items() if k not in ("ingested_at", "files")}
    out["partitions"] = sorted(f.split("/")[1] for f in m["files"])
    return out


def test_fan_out_equals_serial(spark: Any, captures: list[Path], tmp_path: Path) -> None:
    serial, fanned = tmp_path / "serial", tmp_path / "fanned"
    want = api.ingest(captures, serial)
    got = flowaudit.spark.ingest(spark, captures, fanned)
    assert [r.blake3 for r in got] == [r.blake3 for r in want]  # input order
    assert [(r.packets, r.flows) for r in got] == [(r.packets, r.flows) for r in want]
    ms, mf = _manifests(serial), _manifests(fanned)
    assert len(ms) == 8 and ms.keys() == mf.keys()
    assert len({p for m in ms.values() for p in _comparable(m)["partitions"]}) == 4
    for digest, m in ms.items():
        assert _comparable(mf[digest]) == _comparable(m)
        a, b = _flows(serial, m), _flows(fanned, mf[digest])
        assert a.num_rows == m["flows"] > 0
        assert b.equals(a)
    # a second fan-out adds nothing: every capture is known by its digest
    again = flowaudit.spark.ingest(spark, captures, fanned)
    assert all(r.already_ingested for r in again)
    assert _manifests(fanned) == mf


def test_cli_ingest_backend_spark(spark: Any, captures: list[Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    res = CliRunner().invoke(
        cli, ["ingest", "--store", str(store), "--backend", "spark", *map(str, captures[:3])]
    )
    assert res.exit_code == 0, res.output
    assert len(_manifests(store)) == 3


def test_fan_out_failure_is_raised_after_the_others_commit(
    spark: Any, captures: list[Path], tmp_path: Path
) -> None:
    from flowaudit.errors import CaptureError

    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 10)  # a pcap magic, then a cut header
    store = tmp_path / "store"
    with pytest.raises(CaptureError) as e:
        flowaudit.spark.ingest(spark, [captures[0], bad, captures[1]], store)
    assert "bad.pcap" in str(e.value)
    assert len(_manifests(store)) == 2  # the good ones, committed
