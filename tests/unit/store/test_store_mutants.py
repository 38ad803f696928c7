"""The store's contract, edge by edge (the survivors of mutmut over ``flowaudit/store.py``).

Each expectation is stated from ARCHITECTURE.md ("Store commit protocol", "What a store
must be") and the layout in ``store.py``'s docstring, not read back from a run:
``flows/date=YYYY-MM-DD/<blake3[:16]>-<run>-<n>.parquet`` partitioned by each flow's
first_seen date; ``manifest/<blake3>.json`` lists exactly the capture's files; a second
commit of one capture is dropped and leaves nothing; a failed commit leaves no flow file
without its manifest; times outside 1970-01-01..2261-12-31 are never stored; a writer's
``.tmp/<run>/owner.json`` records its process. Flows are built in code with known times.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flowrows import flow, make_flows

import flowaudit._util.files as files_mod
import flowaudit.store as store_mod
from flowaudit.errors import StoreError, WriteError
from flowaudit.store import CaptureRecord, FlowStore
from flowaudit.store_check import CHECK_HINT, OWNER_FILE, owner_identity

UTC = dt.UTC
DAY0 = dt.datetime(2026, 11, 20, tzinfo=UTC)
A, B = "a" * 64, "b" * 64
#: the layout of a flow file's path (store.py's docstring)
FILE_RE = re.compile(r"flows/date=(\d{4}-\d{2}-\d{2})/([0-9a-f]{16})-([0-9a-f]+)-(\d+)\.parquet")


def rows_at(*spans: tuple[dt.datetime, dt.datetime]) -> pa.Table:
    """One flow per (first_seen, last_seen), each its own source port."""
    rows = []
    for i, (first, last) in enumerate(spans):
        r = flow("10.25.233.4", "10.25.233.5", 2379, sport=1000 + i)
        r["first_seen"], r["last_seen"] = first, last
        rows.append(r)
    return make_flows(rows)


def at(days: float, us: int = 0) -> dt.datetime:
    return DAY0 + dt.timedelta(days=days, microseconds=us)


def record(digest: str) -> CaptureRecord:
    return CaptureRecord(
        blake3=digest, path="x.pcap", size=1, source_kind="pcap", reader="test", packets=0,
        flows=0, skipped=0, ingested_at="2026-12-07T00:00:00Z",
    )  # fmt: skip


def commit(root: Path, digest: str, *tables: pa.Table) -> bool:
    """Write and commit one capture as ``ingest`` does (a failure aborts the writer)."""
    writer = FlowStore(root).begin(capture_id=lambda: digest)
    try:
        for t in tables:
            writer.add(t)
        return writer.commit(record(digest))
    except BaseException:
        writer.abort()
        raise


def on_disk(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / "flows").rglob("*.parquet")}


def part(name: str, k: int) -> str:
    """Group ``k`` of a flow file's path: 1 date, 2 capture, 3 run, 4 n."""
    m = FILE_RE.fullmatch(name)
    assert m is not None, name
    return m.group(k)


def by_n(names: list[str]) -> list[str]:
    """A capture's files in the order they were written (their ``<n>``)."""
    return sorted(names, key=lambda f: int(part(f, 4)))


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def file_times(path: Path) -> list[tuple[dt.datetime, dt.datetime]]:
    t = pq.read_table(path, columns=["first_seen", "last_seen"])
    return list(zip(t.column(0).to_pylist(), t.column(1).to_pylist(), strict=True))


# ---------------------------------------------------------------- partitions and layout
@pytest.mark.parametrize("ndays", [1, 2, 3])
def test_one_table_is_split_by_first_seen_date_at_midnight(tmp_path: Path, ndays: int) -> None:
    # the last microsecond of a day, its midnight and the midnight after
    firsts = [at(0, 8 * 3600 * 10**6), at(1, -1), at(1), at(2)][: ndays + 1]
    spans = [(f, f + dt.timedelta(hours=30)) for f in firsts]  # last_seen on another day
    assert commit(tmp_path, A, rows_at(*spans))
    (rec,) = FlowStore(tmp_path).captures()
    want: dict[str, list[dt.datetime]] = {}
    for f in firsts:
        want.setdefault(f.date().isoformat(), []).append(f)
    assert len(want) == ndays
    assert {part(f, 1) for f in rec.files} == set(want)
    for f in rec.files:
        day = part(f, 1)
        assert [a for a, _ in file_times(tmp_path / f)] == want[day]
        # the writer stamps the capture's id (flowrows gives "0" * 64)
        assert set(pq.read_table(tmp_path / f).column("capture_id").to_pylist()) == {A}
    assert (rec.flows, rec.first_seen, rec.last_seen) == (
        len(firsts), iso(firsts[0]), iso(spans[-1][1])
    )  # fmt: skip
    assert on_disk(tmp_path) == set(rec.files)


def test_file_names_follow_the_layout(tmp_path: Path) -> None:
    assert commit(tmp_path, A, rows_at((at(0), at(0, 5))), rows_at((at(3), at(3, 5))))
    (rec,) = FlowStore(tmp_path).captures()
    parts = [FILE_RE.fullmatch(f) for f in rec.files]
    assert all(p is not None for p in parts), rec.files
    assert {p.group(2) for p in parts if p} == {A[:16]}
    assert len({p.group(3) for p in parts if p}) == 1  # one run wrote them
    assert sorted(p.group(1) for p in parts if p) == ["2026-11-20", "2026-11-23"]


def test_manifest_is_the_record_in_canonical_json(tmp_path: Path) -> None:
    assert commit(tmp_path, A, rows_at((at(0), at(0, 1))))
    text = (tmp_path / "manifest" / f"{A}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert data["blake3"] == A and data["flows"] == 1 and data["path"] == "x.pcap"


# ---------------------------------------------------------------- spills and times
def test_spills_every_flow_rows_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_mod, "FLOW_ROWS_PER_FILE", 100)
    many = rows_at(*[(at(0, i), at(0, i + 1)) for i in range(99)])
    sizes = [40, 0, 59, 1, 99, 1, 60, 1]
    # pending rows: 40, 40, 99, 100 (a file), 99, 100 (a file), 60, 61 (written at commit)
    assert commit(tmp_path, A, *(many.slice(0, n) for n in sizes))
    (rec,) = FlowStore(tmp_path).captures()
    counts = [pq.ParquetFile(tmp_path / f).metadata.num_rows for f in by_n(rec.files)]
    assert counts == [100, 100, 61] and rec.flows == 261


def test_spills_are_written_one_at_a_time_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_mod, "FLOW_ROWS_PER_FILE", 1)  # a spill per table
    starts = [at(0, 1000 * i) for i in range(40)]
    assert commit(tmp_path, A, *(rows_at((t, t + US)) for t in starts))
    (rec,) = FlowStore(tmp_path).captures()
    # the n-th file holds the n-th table: one writer, no two spills sharing a file
    assert [file_times(tmp_path / f) for f in by_n(rec.files)] == [[(t, t + US)] for t in starts]


def test_the_spill_threshold_is_250000_rows(tmp_path: Path) -> None:
    one = rows_at((at(0), at(0, 1)))
    full = one.take(pa.array([0] * 250_000))
    assert commit(tmp_path, A, full, one)
    (rec,) = FlowStore(tmp_path).captures()
    counts = [pq.ParquetFile(tmp_path / f).metadata.num_rows for f in by_n(rec.files)]
    assert counts == [250_000, 1]


def test_a_large_table_is_written_in_row_groups_of_256000(tmp_path: Path) -> None:
    # ingest adds what a flow builder finishes at once, which may exceed a spill
    big = rows_at((at(0), at(0, 1))).take(pa.array([0] * 300_000))
    assert commit(tmp_path, A, big)
    (rec,) = FlowStore(tmp_path).captures()
    (f,) = rec.files
    meta = pq.ParquetFile(tmp_path / f).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [256_000, 44_000]


def test_first_and_last_seen_span_every_spill_in_any_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_mod, "FLOW_ROWS_PER_FILE", 1)  # a spill per table
    middle = rows_at((at(1), at(1, 10)))
    earliest = rows_at((at(0, 7), at(0, 8)))
    longest = rows_at((at(0, 9), at(5)))  # starts early, ends last
    late = rows_at((at(2), at(2, 1)))
    assert commit(tmp_path, A, middle, earliest, longest, late)
    (rec,) = FlowStore(tmp_path).captures()
    assert (rec.first_seen, rec.last_seen) == (iso(at(0, 7)), iso(at(5)))
    assert rec.flows == 4 and len(rec.files) == 4


def test_a_sliced_table_stores_its_own_times(tmp_path: Path) -> None:
    t = rows_at(*[(at(0, 10 * i), at(0, 10 * i + 5)) for i in range(8)])
    # two chunks that start inside their buffers (offsets 2 and 5)
    sliced = pa.concat_tables([t.slice(2, 2), t.slice(5, 2)])
    assert [c.offset for c in sliced.column("first_seen").chunks] == [2, 5]
    assert commit(tmp_path, A, sliced)
    (rec,) = FlowStore(tmp_path).captures()
    assert (rec.flows, rec.first_seen, rec.last_seen) == (4, iso(at(0, 20)), iso(at(0, 65)))
    (f,) = rec.files
    assert [a for a, _ in file_times(tmp_path / f)] == [at(0, 20), at(0, 30), at(0, 50), at(0, 60)]


EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
END = dt.datetime(2262, 1, 1, tzinfo=UTC)  # the first instant not stored
US = dt.timedelta(microseconds=1)


@pytest.mark.parametrize(
    "first, last, stored",
    [
        (EPOCH, EPOCH + US, True),
        (END - 2 * US, END - US, True),
        (EPOCH - US, EPOCH + US, False),  # only the start is out of range
        (END - 2 * US, END, False),  # only the end is out of range
    ],
)
def test_times_are_stored_within_1970_to_2261_only(
    tmp_path: Path, first: dt.datetime, last: dt.datetime, stored: bool
) -> None:
    good = rows_at((at(0), at(0, 1)))
    table = rows_at((first, last))
    if stored:
        assert commit(tmp_path, A, good, table)
        (rec,) = FlowStore(tmp_path).captures()
        assert (rec.first_seen, rec.last_seen, rec.flows) == (
            iso(min(first, at(0))), iso(max(last, at(0, 1))), 2
        )  # fmt: skip
        dates = sorted(part(f, 1) for f in rec.files)
        assert dates == sorted({first.date().isoformat(), "2026-11-20"})
        return
    with pytest.raises(StoreError) as e:
        commit(tmp_path, A, good, table)
    assert e.value.message.startswith("flow times outside 1970-01-01..2261-12-31 (µs ")
    assert e.value.hint == "a reader must skip such records; please report the input"
    assert FlowStore(tmp_path).captures() == [] and on_disk(tmp_path) == set()
    assert not (tmp_path / ".tmp").exists()


def test_null_times_are_refused(tmp_path: Path) -> None:
    t = rows_at((at(0), at(0, 1)))
    i = t.schema.get_field_index("last_seen")
    nulls = t.set_column(
        i, pa.field("last_seen", t.schema.field(i).type), pa.nulls(1, t.schema.field(i).type)
    )
    with pytest.raises(StoreError, match="^flow table with null first_seen/last_seen"):
        commit(tmp_path, A, nulls)
    assert FlowStore(tmp_path).captures() == [] and on_disk(tmp_path) == set()


# ---------------------------------------------------------------- the commit protocol
def test_a_second_commit_of_one_capture_is_dropped_and_leaves_nothing(tmp_path: Path) -> None:
    store = FlowStore(tmp_path)
    first, second = store.begin(lambda: A), store.begin(lambda: A)
    first.add(rows_at((at(0), at(0, 1)), (at(1), at(1, 1))))
    second.add(rows_at((at(0), at(0, 2)), (at(2), at(2, 2)), (at(3), at(3, 2))))
    assert (first.run != second.run) and first.tmp.is_dir() and second.tmp.is_dir()
    assert first.commit(record(A)) is True
    assert second.commit(record(A)) is False
    (rec,) = store.captures()
    assert rec.flows == 2 and on_disk(tmp_path) == set(rec.files)
    assert {part(f, 3) for f in rec.files} == {first.run}
    assert not (tmp_path / ".tmp").exists()
    assert list((tmp_path / ".locks").iterdir()) == []


def test_two_captures_share_no_file(tmp_path: Path) -> None:
    assert commit(tmp_path, A, rows_at((at(0), at(0, 1))))
    assert commit(tmp_path, B, rows_at((at(0), at(0, 1)), (at(0, 5), at(0, 6))))
    store = FlowStore(tmp_path)
    a, b = store.get(A), store.get(B)
    assert a is not None and b is not None
    assert (a.flows, b.flows) == (1, 2) and not set(a.files) & set(b.files)
    assert on_disk(tmp_path) == set(a.files) | set(b.files)
    assert store.flow_files([B]) == [tmp_path / f for f in b.files]
    assert store.flow_files([]) == []
    assert sorted(store.flow_files()) == sorted(tmp_path / f for f in a.files + b.files)
    assert store.get("c" * 64) is None


def test_a_failed_manifest_write_leaves_no_flow_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(path: Any, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files_mod, "write_text_atomic", disk_full)
    two_days = rows_at((at(0), at(0, 1)), (at(0, 3), at(0, 4)), (at(1), at(1, 1)))
    with pytest.raises(StoreError) as e:
        commit(tmp_path, A, two_days, two_days)
    assert (
        e.value.message
        == f"{tmp_path / 'manifest' / A}.json: cannot write: No space left on device"
    )
    assert FlowStore(tmp_path).captures() == [] and on_disk(tmp_path) == set()
    assert not (tmp_path / ".tmp").exists() and list((tmp_path / ".locks").iterdir()) == []
    monkeypatch.undo()
    assert commit(tmp_path, A, two_days)  # and the capture can be committed again
    (rec,) = FlowStore(tmp_path).captures()
    assert rec.flows == 3 and on_disk(tmp_path) == set(rec.files)


def test_a_failed_flow_write_names_the_file_and_leaves_nothing(tmp_path: Path) -> None:
    # a real write failure: the file-size limit (EFBIG, as on a full disk), not a mock
    writer = FlowStore(tmp_path).begin(lambda: A)
    writer.add(rows_at(*[(at(0, i), at(0, i + 1)) for i in range(50)]))
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
    try:
        with pytest.raises(WriteError) as e:
            writer.commit(record(A))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
        writer.abort()
    assert e.value.message.startswith(f"{writer.tmp / '00000.parquet'}: cannot write flows: ")
    assert "File too large" in e.value.message and e.value.usage is False  # exit 3
    assert FlowStore(tmp_path).captures() == [] and on_disk(tmp_path) == set()
    assert not (tmp_path / ".tmp").exists()


def test_a_writer_records_its_owner_and_abort_leaves_nothing(tmp_path: Path) -> None:
    writer = FlowStore(tmp_path / "a" / "b").begin()
    assert writer.tmp == tmp_path / "a" / "b" / ".tmp" / writer.run
    assert json.loads((writer.tmp / OWNER_FILE).read_text(encoding="utf-8")) == owner_identity()
    writer.add(rows_at((at(0), at(0, 1))))
    writer._spill()
    writer.abort()
    assert not (tmp_path / "a" / "b" / ".tmp").exists()
    assert on_disk(tmp_path / "a" / "b") == set()
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["flows", "manifest"]


def test_abort_returns_once_the_write_in_flight_has_stopped(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    writer = FlowStore(tmp_path).begin(lambda: A)
    writer.add(rows_at((at(0), at(0, 1))).take(pa.array([0] * 200_000)))
    writer._spill()
    deadline = time.monotonic() + 60
    while not any(writer.tmp.glob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert any(writer.tmp.glob("*.parquet"))  # the background writer is busy with 200,000 rows
    writer.abort()
    assert set(threading.enumerate()) - before == set()  # no writer thread left behind
    assert not (tmp_path / ".tmp").exists() and on_disk(tmp_path) == set()


def test_abort_keeps_another_writers_run(tmp_path: Path) -> None:
    store = FlowStore(tmp_path)
    mine, theirs = store.begin(), store.begin()
    mine.abort()
    assert not mine.tmp.exists() and theirs.tmp.is_dir()
    theirs.abort()
    assert not (tmp_path / ".tmp").exists()


def test_no_capture_is_begun_beside_sha256_ones(tmp_path: Path) -> None:
    # a store of flowaudit <= 0.1.0 keys captures by SHA-256: never mix BLAKE3 ones into it
    assert commit(tmp_path, A, rows_at((at(0), at(0, 1))))
    old = tmp_path / "manifest" / f"{A}.json"
    data = json.loads(old.read_text())
    sha = hashlib.sha256(b"an old capture").hexdigest()
    data["sha256"] = sha
    del data["blake3"]
    old.unlink()
    (tmp_path / "manifest" / f"{sha}.json").write_text(json.dumps(data))
    with pytest.raises(StoreError) as e:
        FlowStore(tmp_path).begin()
    assert e.value.message.startswith(f"{tmp_path}: written by flowaudit <= 0.1.0 with SHA-256")
    assert f"(1 manifest(s), e.g. {sha}.json)" in e.value.message
    assert (e.value.hint or "").startswith(f"rebuild it from its captures: mv {tmp_path} ")
    assert not (tmp_path / ".tmp").exists()  # no writer was started


def test_begin_names_a_store_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError) as e:
        FlowStore(tmp_path / "file" / "s").begin()
    assert (
        e.value.message == f"{tmp_path / 'file' / 's'}: cannot create flow store: Not a directory"
    )


def test_the_dictionary_columns_and_compression(tmp_path: Path) -> None:
    # dictionary-encoded: the columns with few distinct values (store.py); zstd throughout
    few = {"source_kind", "capture_id", "src_ip", "dst_ip", "src_addr", "dst_addr", "state",
           "direction", "exporter", "verdict", "drop_reason", "tunnel", "outer_src_ip",
           "outer_dst_ip"}  # fmt: skip
    assert commit(tmp_path, A, rows_at(*[(at(0, i), at(0, i + 1)) for i in range(50)]))
    (rec,) = FlowStore(tmp_path).captures()
    (f,) = rec.files
    meta = pq.ParquetFile(tmp_path / f).metadata
    rg = meta.row_group(0)
    got = set()
    for i in range(rg.num_columns):
        col = rg.column(i)
        assert col.compression == "ZSTD", col.path_in_schema
        if any("DICTIONARY" in enc for enc in col.encodings):
            got.add(col.path_in_schema.split(".")[0])
    assert got == few


# ---------------------------------------------------------------- reading
def test_check_readable_names_what_is_wrong(tmp_path: Path) -> None:
    cases = [
        (tmp_path / "none", "no flow store here", "run `flowaudit ingest CAPTURE` first"),
        (tmp_path / "file", "not a directory", None),
        (tmp_path, "not a flow store (no manifest/ directory)",
         "pass --store pointing at a directory made by `flowaudit ingest`"),
    ]  # fmt: skip
    (tmp_path / "file").write_text("x")
    for root, what, hint in cases:
        with pytest.raises(StoreError) as e:
            FlowStore(root).check_readable()
        assert (e.value.message, e.value.hint) == (f"{root}: {what}", hint)
    assert commit(tmp_path / "s", A, rows_at((at(0), at(0, 1))))
    FlowStore(tmp_path / "s").check_readable()
    assert FlowStore(tmp_path / "s").exists() and not FlowStore(tmp_path).exists()


def test_a_manifest_directory_without_read_access_is_refused() -> None:
    # outside pytest's private (0700) temp tree, so that another user can reach the store
    base = Path(tempfile.mkdtemp(prefix="flowaudit-perm-"))
    try:
        base.chmod(0o755)
        assert commit(base, A, rows_at((at(0), at(0, 1))))
        store = FlowStore(base)
        store.manifest_dir.chmod(0o311)  # the owner may write and enter, not list; others enter
        root = os.geteuid() == 0  # root may read anything: ask as nobody (os.access: real uid)
        try:
            if root:
                os.setreuid(65534, -1)
            assert os.access(store.manifest_dir, os.F_OK)  # it exists, for this user too
            with pytest.raises(StoreError) as e:
                store.check_readable()
        finally:
            if root:
                os.setreuid(0, -1)
            store.manifest_dir.chmod(0o755)
        assert (e.value.message, e.value.hint) == (f"{store.manifest_dir}: permission denied", None)
    finally:
        shutil.rmtree(base)


def test_the_empty_path_is_refused_with_a_hint() -> None:
    with pytest.raises(StoreError) as e:
        FlowStore("")
    assert (e.value.message, e.value.hint) == ("the flow store path is empty", "pass --store DIR")


def test_a_file_listed_twice_is_one_warning_however_often_read(tmp_path: Path) -> None:
    assert commit(tmp_path, A, rows_at((at(0), at(0, 1)), (at(0, 2), at(0, 3))))
    p = tmp_path / "manifest" / f"{A}.json"
    data = json.loads(p.read_text())
    data["files"] = data["files"] * 2
    p.write_text(json.dumps(data))
    store = FlowStore(tmp_path)
    for _ in range(3):
        (rec,) = store.captures()
        assert len(store.flow_files()) == 1
    assert len(store.warnings) == 1 and f"{A}.json" in store.warnings[0]


def test_a_flow_file_of_another_schema_names_its_manifest_and_the_check(tmp_path: Path) -> None:
    assert commit(tmp_path, A, rows_at((at(0), at(0, 1))))
    (rec,) = FlowStore(tmp_path).captures()
    (f,) = rec.files
    pq.write_table(pa.table({"x": [1]}), tmp_path / f)  # a Parquet file, not of flows
    with pytest.raises(StoreError) as e:
        FlowStore(tmp_path).flow_files()
    assert e.value.message.startswith(f"{tmp_path / f}: ")
    assert e.value.message.endswith(f" (named by manifest/{A}.json)")
    assert e.value.hint == CHECK_HINT


def test_a_missing_flow_file_is_counted_and_named(tmp_path: Path) -> None:
    assert commit(tmp_path, A, rows_at((at(0), at(0, 1)), (at(2), at(2, 1))))
    (rec,) = FlowStore(tmp_path).captures()
    gone = tmp_path / by_n(rec.files)[1]
    gone.unlink()
    with pytest.raises(StoreError) as e:
        FlowStore(tmp_path).flow_files()
    assert e.value.message == (
        f"{tmp_path}: 1 flow file(s) listed in the manifest are missing, e.g. {gone}"
    )
    assert e.value.hint == CHECK_HINT
