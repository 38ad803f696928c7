"""`flowaudit query SQL`: one read-only SELECT over the store's flows and the matrix."""

from __future__ import annotations

import click

from flowaudit.choices import QUERY_FORMATS
from flowaudit.cli.common import (
    backend_options,
    handle_errors,
    rules_option,
    say,
    store_option,
)


@click.command()
@click.argument("sql", required=False)
@store_option
@rules_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(QUERY_FORMATS),
    default="table",
    show_default=True,
    help="table, csv, json (one array), ndjson (one object per line), or parquet "
    "(DuckDB's types exactly; needs -o).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the result to FILE (atomically) instead of stdout.",
)
@click.option(
    "--describe",
    is_flag=True,
    help="List the views (flows, rules, hosts, scope): each column, its type and meaning.",
)
@backend_options
def query(
    sql: str | None,
    store_dir: str,
    rules_path: str | None,
    groups: dict[str, list[str]],
    fmt: str,
    output: str | None,
    describe: bool,
    backend: str,
    spark_master: str | None,
) -> None:
    """Run one read-only SELECT over the views `flows`, `rules`, `hosts` and `scope`.

    Values are written as strict JSON/CSV text: HUGEINT and DECIMAL (e.g. sum(src_bytes))
    as integers, or decimal strings when not integral; NaN/Infinity as null; BLOBs as hex;
    times as ISO-8601 UTC; intervals as ISO-8601 durations. --describe lists the columns
    (src_ip is an address as text, src_addr its 16-byte sortable form).

    Example: flowaudit query "SELECT dst_port, count(*) FROM flows GROUP BY 1 ORDER BY 2 DESC"
    """
    if not sql and not describe:
        raise click.UsageError("give a SELECT statement, or --describe to list the views")
    if sql and describe:
        raise click.UsageError("give either a SELECT statement or --describe, not both")
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet writes a binary file: give -o FILE")
    from flowaudit import api
    from flowaudit.report.tables import format_table, write_query_result

    with handle_errors():
        if describe:
            table = api.describe(rules=rules_path, groups=groups)
        else:
            assert sql is not None
            store = api.open_store(store_dir)
            table = api.query(
                sql,
                store=store,
                rules=rules_path,
                groups=groups,
                backend=backend,
                spark_master=spark_master,
            )
            for w in store.warnings:
                say("warning", w)
        if output is None:
            click.echo(format_table(table, fmt), nl=False)
        else:
            write_query_result(table, fmt, output)


def register(group: click.Group) -> None:
    group.add_command(query)
