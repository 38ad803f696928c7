"""An audit of many distinct conversations (many addresses) takes the per-key shortcuts:
facts and nearest rule per address cell, "what differs" worded once per key, coverage
placed per key. Each must give exactly what the row-by-row computation gives."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from testpaths import REPO

from flowaudit import api
from flowaudit.audit.coverage import coverage_rows
from flowaudit.audit.run import _add_differences, _cell_rows
from flowaudit.matrix.compile import relation_rows
from flowaudit.matrix.hosts import side_ranges

GROUPS = {"admin_workstations": ["10.25.100.0/24"]}


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_audit", REPO / "benchmarks" / "bench_audit.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = tmp_path_factory.mktemp("conversations") / "store"
    _bench().build_conversation_store(store, 3000)
    return api.audit(store=store, groups=GROUPS)


def test_every_conversation_is_a_violation_in_few_groups(audited: Any) -> None:
    v = audited.violations
    assert v.num_rows == 3000 == audited.stats["conversations"]
    assert audited.finding_groups.num_rows < 200
    assert sum(len(f) for f in audited.finding_groups.column("findings").to_pylist()) == 3000


def test_what_differs_per_key_is_what_differs_per_row(audited: Any) -> None:
    m = api.load_matrix(groups=GROUPS)
    v = audited.violations
    again = _add_differences(v.drop_columns(["differences"]), m)
    assert again.column("differences").to_pylist() == v.column("differences").to_pylist()
    texts = set(v.column("differences").to_pylist())
    assert any("is an internet address" in t for t in texts)
    assert any(t.startswith("src 10.25.232.") and "not in nodes" in t for t in texts)


def test_coverage_per_key_is_coverage_per_row(audited: Any) -> None:
    m = api.load_matrix(groups=GROUPS)
    names = audited.coverage.column_names
    want = [dict(zip(names, r, strict=True))
            for r in coverage_rows(m, audited.rule_usage, audited.violations)]  # fmt: skip
    got = audited.coverage.to_pylist()
    # whether a rule is unused or unobserved depends on the audit's observability
    for row in got + want:
        if row["status"] in ("unused", "unobserved"):
            row["status"] = "unused or unobserved"
    assert got == want
    assert sum(len(c["findings"]) for c in got) == 3000


def test_cells_never_straddle_a_range() -> None:
    m = api.load_matrix(groups=GROUPS)
    rows = _cell_rows(m)
    assert [r[0] for r in rows] == list(range(len(rows)))
    cells = [(int.from_bytes(lo, "big"), int.from_bytes(hi, "big")) for _, lo, hi, _, _ in rows]
    assert cells[0][0] == 0 and cells[-1][1] == 2**128 - 1
    assert all(a[1] + 1 == b[0] for a, b in zip(cells, cells[1:], strict=False))
    ranges = [(lo, hi) for _, _, lo, hi, _ in side_ranges(m)]
    for name, cols in (("rules", (3, 4, 6, 7)), ("hosts", (1, 2)), ("scope", (1, 2))):
        for row in relation_rows(m)[name][1]:
            ends = [row[i] for i in cols]
            for lo, hi in zip(ends[::2], ends[1::2], strict=True):
                if lo is not None:
                    ranges.append((int.from_bytes(lo, "big"), int.from_bytes(hi, "big")))
    assert len(ranges) > 20
    for a, b in ranges:
        for lo, hi in cells:
            assert (a <= lo and hi <= b) or hi < a or lo > b, (a, b, lo, hi)


def test_a_cells_side_and_class_are_those_of_each_of_its_addresses() -> None:
    """``cells`` carries each cell's side and class (address_sides.sql reads them from
    there): for the first, a middle and the last address of every cell they are the side
    of the lowest-ranked range holding that address and its address class."""
    from flowaudit.matrix.hosts import address_class
    from flowaudit.matrix.model import addr_text

    m = api.load_matrix(groups=GROUPS)
    ranges = side_ranges(m)
    seen = set()
    for _, lo_b, hi_b, side, cls in _cell_rows(m):
        lo, hi = int.from_bytes(lo_b, "big"), int.from_bytes(hi_b, "big")
        for n in (lo, (lo + hi) // 2, hi):
            want = next(s for _, s, a, b, _ in sorted(ranges) if a <= n <= b)
            assert (side, cls) == (want, address_class(addr_text(n), m)), addr_text(n)
            seen.add(side)
    assert {"admin_workstations", "site", "private", "internet", "multicast"} <= seen


def test_each_address_gets_the_cell_holding_it() -> None:
    """``_address_texts`` numbers each 16-byte address with its cell by comparing bytes:
    the same cell as integer comparison, also at the cells' ends, for ::, all-ones and
    addresses ending in zero bytes."""
    import bisect

    import pyarrow as pa

    from flowaudit.audit.run import _address_texts
    from flowaudit.matrix.model import addr_text

    m = api.load_matrix(groups=GROUPS)
    rows = _cell_rows(m)
    starts = [int.from_bytes(r[1], "big") for r in rows]
    probe = {0, 1, 2**128 - 1, 0xFFFF << 32, (0xFFFF << 32) | 0x0A190000, 1 << 64, 0xFF << 120}
    for s in starts[1:]:
        probe |= {s - 1, s, s + 1}
    values = sorted(probe)
    addrs = pa.chunked_array([pa.array([v.to_bytes(16, "big") for v in values], pa.binary())])
    texts, cells = _address_texts(addrs, rows)
    assert cells.to_pylist() == [bisect.bisect_right(starts, v) - 1 for v in values]
    assert texts.to_pylist() == [addr_text(v) for v in values]


def test_row_by_row_wording_gives_the_same_list(
    audited: Any, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A matrix whose names could hold the texts' address marks (a NUL; only a matrix built
    in code) is worded violation by violation: the same list, column for column."""
    from flowaudit.audit import run

    store = tmp_path_factory.mktemp("conversations-rows") / "store"
    _bench().build_conversation_store(store, 3000)
    monkeypatch.setattr(run, "_matrix_texts_ok", lambda m: False)
    slow = api.audit(store=store, groups=GROUPS)
    assert slow.violations.equals(audited.violations)
    assert slow.coverage.equals(audited.coverage)
