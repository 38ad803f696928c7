"""`flowaudit query SQL`: one read-only SELECT over the store's flows and the matrix."""

from __future__ import annotations

import click

from flowaudit.cli.common import handle_errors, rules_option, store_option


@click.command()
@click.argument("sql")
@store_option
@rules_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
def query(
    sql: str, store_dir: str, rules_path: str | None, groups: dict[str, list[str]], fmt: str
) -> None:
    """Run one read-only SELECT over the views `flows`, `rules`, `hosts` and `scope`.

    Example: flowaudit query "SELECT dst_port, count(*) FROM flows GROUP BY 1 ORDER BY 2 DESC"
    """
    from flowaudit import api
    from flowaudit.report.tables import format_table

    with handle_errors():
        store = api.open_store(store_dir)
        table = api.query(sql, store=store, rules=rules_path, groups=groups)
        for w in store.warnings:
            click.echo(f"flowaudit: warning: {w}", err=True)
        click.echo(format_table(table, fmt), nl=False)


def register(group: click.Group) -> None:
    group.add_command(query)
