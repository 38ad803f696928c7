"""``flowaudit rules propose|diff|merge``: from findings to a reviewed matrix change.

Thin commands over ``flowaudit.api`` (``propose_rules``, ``diff_rules``, ``merge_rules``):
parse arguments, call one function, write its output, map errors to exit codes
(propose 0; diff 0 no change, 1 changes; merge 0; bad input 2).
"""

from __future__ import annotations

import sys

import click

from flowaudit.cli.common import engine_option, group_option, handle_errors, say

CHANGES = 1


def _ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    return [x.strip() for v in value for x in v.split(",") if x.strip()]


def _prefix(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    text = value.lstrip("/")
    if not text.isdigit():
        raise click.BadParameter(f"expected /N (an IPv4 prefix length), got {value!r}")
    return int(text)


@click.command("propose")
@click.argument("captures", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--store",
    "store_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Flow store. Without CAPTURES: the store whose findings to approve "
    "(default ./flowaudit-data). With CAPTURES: also add them to this store.",
)
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(exists=True, dir_okay=True, file_okay=True),
    default=None,
    help="The matrix the proposal extends (default: the shipped matrix).",
)
@click.option(
    "--no-rules",
    is_flag=True,
    help="No matrix: propose a whole matrix approving all observed traffic (bootstrap).",
)
@click.option(
    "--name",
    default="observed",
    show_default=True,
    help="With --no-rules: the name of the bootstrapped matrix.",
)
@click.option(
    "--findings",
    "finding_ids",
    multiple=True,
    callback=_ids,
    metavar="ID[,ID]",
    help="Finding ids to approve (repeatable, or comma-separated).",
)
@click.option(
    "--group-id",
    "group_ids",
    multiple=True,
    callback=_ids,
    metavar="ID[,ID]",
    help="Finding groups whose findings to approve (repeatable, or comma-separated).",
)
@click.option("--all", "all_findings", is_flag=True, help="Approve every finding a rule can.")
@group_option
@click.option(
    "--aggregate",
    callback=_prefix,
    metavar="/N",
    default=None,
    help="Widen IPv4 addresses to their /N network (default: exact addresses only).",
)
@click.option(
    "--port-gap",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Join ports into one range when at most N unobserved ports lie between them.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the YAML here.")
@engine_option
def propose_cmd(
    captures: tuple[str, ...],
    store_dir: str | None,
    rules_path: str | None,
    no_rules: bool,
    name: str,
    finding_ids: list[str],
    group_ids: list[str],
    all_findings: bool,
    groups: dict[str, list[str]],
    aggregate: int | None,
    port_gap: int,
    output: str | None,
    engine: str,
) -> None:
    """Propose matrix rules (YAML) that would approve the selected findings.

    Initiators and responders resolve to the matrix's groups where whole groups fit,
    else to new groups of exactly the observed addresses; ports join into ranges only
    where every port between was observed. --group NAME=CIDR configures a group the
    matrix leaves unconfigured, or names a new group for the addresses inside CIDR.
    Merge the result with `flowaudit rules merge`. Exit 0, or 2 on bad input.
    """
    from flowaudit import api

    if (finding_ids or group_ids) and all_findings:
        raise click.UsageError("--findings/--group-id and --all exclude each other")
    if not finding_ids and not group_ids and not all_findings and not no_rules:
        raise click.UsageError(
            "choose the findings: --findings ID[,ID], --group-id ID[,ID] or --all"
        )
    with handle_errors():
        proposal = api.propose_rules(
            captures,
            store=store_dir,
            rules=rules_path,
            groups=groups,
            no_rules=no_rules,
            findings=finding_ids or None,
            group_ids=group_ids or None,
            aggregate=aggregate,
            port_gap=port_gap,
            name=name,
            engine=engine,
        )
        for fid, why in proposal.skipped:
            say("warning", f"finding {fid} not proposed: {why}")
        text = proposal.to_yaml()
        if output:
            from flowaudit.report.output import write_atomic

            write_atomic(output, text)
            click.echo(
                f"{output}: {len(proposal.rules)} rules, {len(proposal.groups)} new groups "
                f"for {len(proposal.findings)} findings",
                err=True,
            )
        else:
            click.echo(text, nl=False)


@click.command("diff")
@click.argument("old", type=click.Path(exists=True))
@click.argument("new", type=click.Path(exists=True))
@click.option(
    "--store",
    "store_dir",
    default=None,
    type=click.Path(file_okay=False, exists=True),
    help="Also audit this store with both matrices: which findings change verdict.",
)
@group_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Output format (markdown: for a change-request ticket).",
)
def diff_cmd(
    old: str, new: str, store_dir: str | None, groups: dict[str, list[str]], fmt: str
) -> None:
    """What a matrix change allows and revokes: per (source, destination, protocol,
    ports), groups whose addresses change, rules added/removed/changed (provenance
    included), and with --store the observed findings that change verdict.
    Exit 0 no change, 1 changes, 2 invalid matrix."""
    from flowaudit import api
    from flowaudit.matrix.diff_render import render_diff

    with handle_errors():
        d = api.diff_rules(old, new, store=store_dir, groups=groups)
        click.echo(render_diff(d, fmt), nl=False)
    sys.exit(0 if d.empty else CHANGES)


@click.command("merge")
@click.argument("base", type=click.Path(exists=True, dir_okay=False))
@click.argument("proposal", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the merged matrix (atomically; may be BASE itself).",
)
def merge_cmd(base: str, proposal: str, output: str) -> None:
    """Merge a proposal (from `rules propose`) into BASE, keeping BASE's comments and
    order; the result must pass `rules check`. Exit 0, or 2 (another matrix's proposal,
    conflicting group names, a rule id BASE already has, an invalid result)."""
    from flowaudit import api

    with handle_errors():
        r = api.merge_rules(base, proposal, output)
        click.echo(
            f"{output}: {r.matrix.name}: +{len(r.added_rules)} rules, "
            f"+{len(r.added_groups)} groups, sha256 {r.matrix.sha256}",
            err=True,
        )


def add_commands(group: click.Group) -> None:
    """Add propose, diff and merge to the ``rules`` group."""
    for cmd in (propose_cmd, diff_cmd, merge_cmd):
        group.add_command(cmd)
