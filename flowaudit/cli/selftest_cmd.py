"""`flowaudit selftest`: build the kernels and ingest + audit the shipped sample."""

from __future__ import annotations

import sys

import click

from flowaudit.cli.common import handle_errors


@click.command()
def selftest() -> None:
    """Build the compiled packet kernels (once per install, ~30 s) and ingest and audit
    the shipped sample capture in a temporary store, comparing with its ground truth.

    Exit 0 when all is well, 3 when a result differs. Run it after installing (CI does)
    so the first real ingest does not pay the build.
    """
    from flowaudit import api

    with handle_errors():
        result = api.selftest()
        for line in result.lines:
            click.echo(line)
        for problem in result.problems:
            click.echo(f"flowaudit: selftest: {problem}", err=True)
        if result.problems:
            sys.exit(3)
        click.echo("selftest: all well")


def register(group: click.Group) -> None:
    group.add_command(selftest)
