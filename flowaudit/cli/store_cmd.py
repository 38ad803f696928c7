"""`flowaudit store check`: is the flow store what its readers rely on? (--repair)"""

from __future__ import annotations

import sys

import click

from flowaudit.cli.common import handle_errors, store_option


@click.group()
def store() -> None:
    """Look after the flow store."""


@store.command()
@store_option
@click.option(
    "--repair",
    is_flag=True,
    help="Remove orphan flow files, unfinished ingests of dead processes and stale locks "
    "(never a file a manifest names); says what it removed.",
)
@click.option(
    "--verify-digests",
    is_flag=True,
    help="Re-hash the captures still at their recorded paths and compare with the manifest.",
)
def check(store_dir: str, repair: bool, verify_digests: bool) -> None:
    """Check the manifests (schema, keys, types), the flow files they name (present,
    inside the store's flows/, listed once, Parquet schema of the flow record), orphan
    flow files, unfinished ingests (.tmp/) and stale locks.

    Exit 0: clean (after --repair: nothing left to fix); 1: problems found (with
    --repair: problems it cannot fix); 2: bad usage or no store.
    """
    from flowaudit import api

    with handle_errors():
        res = api.check_store(store_dir, repair=repair, verify_digests=verify_digests)
        for p in res.repaired:
            click.echo(f"removed: {p.text}")
        for p in res.remaining:
            fix = "  [--repair removes it]" if p.fix is not None else ""
            click.echo(f"problem: {p.text}{fix}")
        for note in res.notes:
            click.echo(f"note: {note}")
        left = res.remaining
        summary = (
            f"{res.root}: {res.captures} capture(s), {res.files} flow file(s), "
            f"{res.flows:,} flows; "
        )
        if not left:
            done = f"{len(res.repaired)} problem(s) repaired, " if res.repaired else ""
            click.echo(summary + done + "store OK")
            sys.exit(0)
        fixable = sum(p.fix is not None for p in left)
        hint = f" ({fixable} removable with --repair)" if fixable else ""
        click.echo(summary + f"{len(left)} problem(s){hint}")
        if any(p.fix is None for p in left):
            click.echo(
                "hint: --repair never edits a manifest nor removes a file one names; move a bad "
                "manifest/<blake3>.json away and ingest its capture again to rebuild it",
                err=True,
            )
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(store)
