"""The query sandbox: user SQL reads the store's flows and the matrix, and nothing else.

Each escape that worked before the sandbox (issue 12) is tried against a real store, through
the API and through the CLI: it must fail with exit 2 and a message, and the secret must not
appear anywhere in the output.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from testpaths import MIXED

from flowaudit import api
from flowaudit.cli import cli
from flowaudit.errors import UsageError

SECRET = "s3cr3t-line-that-must-not-leak"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sandbox")
    st = root / "store"
    api.ingest([MIXED], st)
    (root / "secret.txt").write_text(f"{SECRET}\n")
    (root / "secret.csv").write_text(f"a,b\n{SECRET},1\n")
    pq.write_table(pa.table({"secret": [SECRET]}), root / "outside.parquet")
    return st


def escapes(root: Path) -> dict[str, str]:
    return {
        "read_blob": f"SELECT content FROM read_blob('{root}/secret.txt')",
        "read_text": f"SELECT content FROM read_text('{root}/secret.txt')",
        "read_csv": f"SELECT * FROM read_csv('{root}/secret.csv')",
        "read_csv_auto": f"SELECT * FROM read_csv_auto('{root}/secret.csv')",
        "sniff_csv": f"SELECT * FROM sniff_csv('{root}/secret.csv')",
        "read_json": f"SELECT * FROM read_json('{root}/secret.txt')",
        "glob": f"SELECT file FROM glob('{root}/*')",
        "glob_root": "SELECT file FROM glob('/etc/*')",
        "parquet_outside": f"SELECT * FROM read_parquet('{root}/outside.parquet')",
        "parquet_glob_of_store": f"SELECT * FROM read_parquet('{root}/store/**/*.parquet')",
        "replacement_scan": f"SELECT * FROM '{root}/secret.csv'",
        "url": "SELECT * FROM read_parquet('https://127.0.0.1:9/x.parquet')",
        "query_fn_attach": "SELECT * FROM query('ATTACH ''/tmp/x.db'' AS x')",
    }


@pytest.mark.slow
def test_every_escape_is_refused_through_the_api(store: Path) -> None:
    for name, sql in escapes(store.parent).items():
        with pytest.raises(UsageError) as e:
            api.query(sql, store=store)
        assert SECRET not in str(e.value), name


@pytest.mark.slow
def test_every_escape_is_refused_through_the_cli(store: Path) -> None:
    for name, sql in escapes(store.parent).items():
        r = CliRunner().invoke(cli, ["query", sql, "--store", str(store), "--format", "csv"])
        assert r.exit_code == 2, (name, r.output)
        assert SECRET not in r.output, name
        assert "internal error" not in r.output, name
        assert "Traceback" not in r.output, name


def test_statements_other_than_one_select_are_refused(store: Path) -> None:
    for sql in (
        "SET enable_external_access = true",
        "INSTALL httpfs",
        "LOAD httpfs",
        f"COPY (SELECT 1) TO '{store.parent}/out.csv'",
        f"ATTACH '{store.parent}/x.db' AS x",
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; SELECT 2",
        "PRAGMA enable_profiling",
    ):
        with pytest.raises(UsageError, match="only one read-only SELECT"):
            api.query(sql, store=store)
    assert not (store.parent / "out.csv").exists()
    assert not (store.parent / "x.db").exists()


def test_settings_are_locked_offline_and_limited_to_the_store(store: Path) -> None:
    t = api.query(
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
        "'lock_configuration', 'autoinstall_known_extensions', 'autoload_known_extensions', "
        "'allowed_paths') ORDER BY name",
        store=store,
    )
    got = dict(zip(t.column("name").to_pylist(), t.column("value").to_pylist(), strict=True))
    assert got["enable_external_access"] == "false"
    assert got["lock_configuration"] == "true"
    assert got["autoinstall_known_extensions"] == "false"
    assert got["autoload_known_extensions"] == "false"
    manifest_files = sorted(str(p) for p in api.open_store(store).flow_files())
    assert got["allowed_paths"] == "[" + ", ".join(f"'{f}'" for f in manifest_files) + "]"


def test_the_views_still_answer(store: Path) -> None:
    t = api.query(
        "SELECT (SELECT count(*) FROM flows) AS flows, (SELECT count(*) FROM rules) > 0 AS r, "
        "(SELECT count(*) FROM hosts) > 0 AS h, (SELECT count(*) FROM scope) AS s",
        store=store,
    )
    assert t.to_pylist() == [{"flows": 125, "r": True, "h": True, "s": 3}]


SPILL = (
    "SELECT count(*) AS n FROM "
    "(SELECT range % 2000003 AS k, count(*) AS c FROM range(6000000) GROUP BY 1)"
)


def test_memory_is_bounded_and_spills_into_the_store_inside_the_sandbox(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB's memory limit and temp directory are set before the sandbox locks: a
    query bigger than the limit spills (into the store's .tmp) and still answers."""
    got = api.query(
        "SELECT current_setting('memory_limit') AS m, current_setting('temp_directory') AS t",
        store=store,
    ).to_pylist()
    assert got[0]["m"] == "488.2 MiB"  # 512MB, the default
    assert got[0]["t"].startswith(str(store / ".tmp" / "audit-"))
    monkeypatch.setenv("FLOWAUDIT_MEMORY_LIMIT", "32MB")
    assert api.query(SPILL, store=store).to_pylist() == [{"n": 2000003}]
    r = CliRunner().invoke(cli, ["query", SPILL, "--store", str(store), "--format", "csv"])
    assert (r.exit_code, r.stdout) == (0, "n\n2000003\n"), r.output
    # the spill directory goes with the engine; the user cannot move it
    assert not list((store / ".tmp").glob("audit-*"))
    with pytest.raises(UsageError):
        api.query("SELECT * FROM (SET temp_directory = '/tmp')", store=store)


def test_a_bad_memory_limit_is_exit_2(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWAUDIT_MEMORY_LIMIT", "lots")
    r = CliRunner().invoke(cli, ["query", "SELECT 1 AS one", "--store", str(store)])
    assert r.exit_code == 2 and "FLOWAUDIT_MEMORY_LIMIT='lots'" in r.stderr
    assert "Traceback" not in r.output
