"""Manifests are checked when read: a corrupt one is a clear StoreError (exit 2) or a
warning naming it; a reader never counts a flow file twice or reads one of another schema."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from storetools import load, manifest, save
from testpaths import ADMIN, ADMIN_OPT, APPROVED, MIXED

from flowaudit import api
from flowaudit.cli import cli
from flowaudit.errors import StoreError
from flowaudit.store import CaptureRecord, FlowStore
from flowaudit.store_check import MANIFEST_FIELDS, REQUIRED

COUNT = "SELECT count(*) AS n FROM flows"


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def readers(store: Path) -> list[list[str]]:
    return [["audit", "--store", str(store), *ADMIN_OPT], ["query", COUNT, "--store", str(store)]]


def test_schema_names_every_field_of_the_record() -> None:
    fields = [f.name for f in dataclasses.fields(CaptureRecord)]
    assert list(MANIFEST_FIELDS) == fields
    no_default = dataclasses.MISSING
    required = [
        f.name
        for f in dataclasses.fields(CaptureRecord)
        if f.default is no_default and f.default_factory is no_default
    ]
    assert list(REQUIRED) == required


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("flows", "125", 'field flows is a string ("125"), expected an integer >= 0'),
        ("size", True, "field size is a boolean (true), expected an integer >= 0"),
        ("packets", -3, "field packets is an integer (-3), expected an integer >= 0"),
        ("files", "flows/x.parquet", "field files is a string"),
        ("files", [1], "field files is a list ([1]), expected a list of strings"),
        ("stats", {"frames": "many"}, "field stats is an object"),
        ("first_seen", 1700000000, "field first_seen is an integer"),
        ("blake3", "abc", 'field blake3 is a string ("abc"), expected 64 lowercase hex'),
    ],
)
def test_wrong_value_type_is_a_store_error(store: Path, key: str, value: Any, message: str) -> None:
    data = load(store, APPROVED)
    data[key] = value
    p = save(store, APPROVED, data)
    for args in readers(store):
        r = run(*args)
        assert r.exit_code == 2, r.output
        assert f"{p}: manifest {message}" in r.stderr
        assert "`flowaudit store check` explains it" in r.stderr
        assert "internal error" not in r.stderr
    with pytest.raises(StoreError, match="manifest field"):
        FlowStore(store).captures()


def test_missing_key_and_bad_json(store: Path) -> None:
    data = load(store, APPROVED)
    del data["flows"]
    p = save(store, APPROVED, data)
    r = run("audit", "--store", str(store), *ADMIN_OPT)
    assert r.exit_code == 2 and f"{p}: manifest lacks flows" in r.stderr
    p.write_text("[1, 2]")
    r = run("audit", "--store", str(store), *ADMIN_OPT)
    assert r.exit_code == 2 and f"{p}: manifest is a list ([1, 2]), not an object" in r.stderr
    data["flows"] = 85
    data["blake3"] = "0" * 64
    p.write_text(json.dumps(data))
    r = run("audit", "--store", str(store), *ADMIN_OPT)
    assert r.exit_code == 2 and f"{p}: manifest of blake3 {'0' * 64}, named for another" in r.stderr
    p.write_text('{"blake3": ')
    r = run("audit", "--store", str(store), *ADMIN_OPT)
    assert r.exit_code == 2 and f"{p}: manifest is not valid JSON" in r.stderr


def test_unknown_key_from_a_newer_version_is_named(store: Path) -> None:
    data = load(store, APPROVED)
    data |= {"provenance": {"sensor": "tap-3"}, "flowaudit_version": "0.3.0"}
    p = save(store, APPROVED, data)
    want = f"{p}: written by flowaudit 0.3.0 (manifest key provenance unknown to 0.1.0)"
    for args in (["audit", "--store", str(store)], ["ingest", "--store", str(store), str(MIXED)]):
        r = run(*args)
        assert r.exit_code == 2, r.output
        assert want in r.stderr and "internal error" not in r.stderr


def _warned(stderr: str, p: Path, what: str) -> bool:
    return any(
        line.startswith(f"flowaudit: warning: {p}: ")
        and what in line
        and line.endswith("`flowaudit store check` explains it")
        for line in stderr.splitlines()
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind", ["twice", "directory", "other capture's file", "outside", "unresolvable"]
)
def test_a_flow_file_is_never_counted_twice(store: Path, kind: str) -> None:
    mine = load(store, APPROVED)
    (own,) = mine["files"]
    (other,) = load(store, MIXED)["files"]
    extra, what = {
        "twice": (own, f"lists {own} twice (read once)"),
        "directory": (str(Path(own).parent), f"names {Path(own).parent}, not a flow file"),
        "other capture's file": (other, f"names {other}, a file of {manifest(store, MIXED).name}"),
        "outside": ("../x.parquet", "names ../x.parquet, outside the store's flows/"),
        # (on stderr the NUL shows as \x00: control characters of names are made visible)
        "unresolvable": ("flows/a\0b", "names flows/a\\x00b, outside the store's flows/"),
    }[kind]  # fmt: skip
    if kind == "outside":
        (store.parent / "x.parquet").write_bytes((store / own).read_bytes())
    mine["files"].append(extra)
    p = save(store, APPROVED, mine)
    r = run("query", COUNT, "--store", str(store), "--format", "csv")
    assert r.exit_code == 0 and r.stdout == "n\n210\n", r.output  # not 295
    assert _warned(r.stderr, p, what), r.stderr
    r = run("audit", "--store", str(store), *ADMIN_OPT, "--format", "json")
    assert r.exit_code == 1 and json.loads(r.stdout)["window"]["flows"] == 210
    assert _warned(r.stderr, p, what), r.stderr
    result = api.audit(store=store, groups=ADMIN)
    assert result.flows == 210 and len(result.stats["warnings"]) == 1
    st = FlowStore(store)
    files = {r.blake3: r.files for r in st.captures()}
    assert files[mine["blake3"]] == [own] and len(st.flow_files()) == 2
    assert st.warnings == [result.stats["warnings"][0]]


def _rewrite(path: Path, table: pa.Table) -> None:
    os.chmod(path, 0o644)
    pq.write_table(table, path)


@pytest.mark.parametrize(
    "change, message",
    [
        ("extra column", "columns differ from flow schema v1 (missing [], extra ['note'])"),
        ("other table", "columns differ from flow schema v1 (missing ['flow_id', "),
        ("other type", "column dst_port is int32, schema v1 has uint16"),
    ],
)
def test_a_parquet_file_of_another_schema_is_a_store_error(
    store: Path, change: str, message: str
) -> None:
    (own,) = load(store, APPROVED)["files"]
    path = store / own
    t = pq.read_table(path)
    if change == "extra column":
        t = t.append_column("note", pa.array(["x"] * t.num_rows))
    elif change == "other table":
        t = pa.table({"ts": pa.array(range(t.num_rows)), "note": pa.array(["x"] * t.num_rows)})
    else:
        i = t.schema.get_field_index("dst_port")
        t = t.set_column(i, pa.field("dst_port", pa.int32()), t.column(i).cast(pa.int32()))
    _rewrite(path, t)
    for args in readers(store):
        r = run(*args)
        assert r.exit_code == 2, r.output
        assert f"{path}: {message}" in r.stderr, r.stderr
        assert f"(named by manifest/{manifest(store, APPROVED).name})" in r.stderr
        assert "internal error" not in r.stderr


def test_an_empty_store_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (
        ["ingest", "--store", "", str(MIXED)],
        ["audit", "--store", "", str(MIXED)],
        ["audit", "--store", ""],
        ["query", COUNT, "--store", ""],
        ["store", "check", "--store", ""],
    ):
        r = run(*args)
        assert r.exit_code == 2, (args, r.output)
        assert "the flow store path is empty" in r.stderr
    with pytest.raises(StoreError, match="the flow store path is empty"):
        api.ingest(MIXED, "")
    with pytest.raises(StoreError, match="the flow store path is empty"):
        FlowStore("")
    assert list(tmp_path.iterdir()) == []


def _as_sha256_store(store: Path) -> None:
    """Rewrite every manifest as flowaudit 0.1.0 wrote it: keyed by the capture's SHA-256."""
    import hashlib

    for p in sorted((store / "manifest").glob("*.json")):
        data = json.loads(p.read_text())
        del data["blake3"]
        sha = hashlib.sha256(Path(data["path"]).read_bytes()).hexdigest()
        data["sha256"] = sha
        p.unlink()
        (store / "manifest" / f"{sha}.json").write_text(json.dumps(data, indent=2))


def test_a_store_of_sha256_ids_is_refused_with_the_command_that_rebuilds_it(
    store: Path, tmp_path: Path
) -> None:
    _as_sha256_store(store)
    before = sorted(p.name for p in (store / "manifest").iterdir())
    for args in [*readers(store), ["ingest", "--store", str(store), str(MIXED)]]:
        r = run(*args)
        assert r.exit_code == 2, r.output
        assert "with SHA-256 capture ids" in r.stderr and "never mixes" in r.stderr
        assert f"mv {store} {store}.sha256 && flowaudit ingest --store {store} " in r.stderr
        assert "internal error" not in r.stderr
    # nothing was added beside the old manifests (never mixed silently)
    assert sorted(p.name for p in (store / "manifest").iterdir()) == before
    with pytest.raises(StoreError, match="SHA-256 capture ids"):
        FlowStore(store).captures()
    r = run("store", "check", "--store", str(store))
    assert r.exit_code == 1 and "SHA-256 capture ids" in r.stdout + r.stderr
    assert "orphan" not in r.stdout  # the old manifests still own their files
    # the command given rebuilds it
    hint = next(line for line in r.stdout.splitlines() if "rebuild it from its captures" in line)
    command = hint.split("rebuild it from its captures: ", 1)[1]
    assert command.startswith(f"mv {store} {store}.sha256 && flowaudit ingest --store {store} ")
    paths = command.split(" && ", 1)[1].split()[4:]
    assert sorted(paths) == sorted(str(c.resolve()) for c in (MIXED, APPROVED))
    os.rename(store, f"{store}.sha256")
    r = run("ingest", "--store", str(store), *paths)
    assert r.exit_code == 0, r.output
    r = run("query", COUNT, "--store", str(store), "--format", "csv")
    assert (r.exit_code, r.stdout) == (0, "n\n210\n"), r.output
