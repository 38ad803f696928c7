"""`flowaudit evidence`: one finding's packets as a pcap slice plus a JSON manifest."""

from __future__ import annotations

import datetime as dt

import click

from flowaudit.cli.common import (
    engine_option,
    handle_errors,
    parse_time,
    rules_option,
)


@click.command()
@click.argument("finding_ids", nargs=-1, metavar="[FINDING_ID]...")
@click.option(
    "--capture",
    "captures",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A capture the finding came from (pcap/pcapng, .gz ok); repeatable.",
)
@click.option(
    "-o",
    "--output-dir",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for <id>.pcap and <id>.json (created if missing).",
)
@rules_option
@click.option("--since", callback=parse_time, help="Audit window start (as for `audit`).")
@click.option("--until", callback=parse_time, help="Audit window end (as for `audit`).")
@engine_option
@click.option("--all", "all_", is_flag=True, help="Evidence for every violation of the audit.")
@click.option(
    "--no-enrich",
    is_flag=True,
    help="Do not dissect the slice with tshark (TLS SNI, certificate names, HTTP host, "
    "SSH banner, DNS names).",
)
def evidence(
    finding_ids: tuple[str, ...],
    captures: tuple[str, ...],
    out_dir: str,
    rules_path: str | None,
    groups: dict[str, list[str]],
    since: dt.datetime | None,
    until: dt.datetime | None,
    engine: str,
    all_: bool,
    no_enrich: bool,
) -> None:
    """Write the packets of each FINDING_ID (an id from `flowaudit audit`, or a unique
    prefix of at least 6 hex digits; or --all violations) to DIR/<id>.pcap, with
    DIR/<id>.json saying what they are: the finding, the captures (BLAKE3 and SHA-256) and
    the slice (SHA-256), the flows, first/last packet time, the matrix digest and, where
    tshark is installed, what the traffic is.

    Audit the same captures with the same --rules/--group/--since/--until as the report
    the ids came from. Exit 0 on success, 2 on bad input (unknown id, not a capture ...).
    """
    if bool(finding_ids) == all_:
        raise click.UsageError("give FINDING_ID(s) or --all (not both)")
    from flowaudit.evidence.write import EvidenceSource

    with handle_errors():
        with EvidenceSource(
            captures, rules=rules_path, groups=groups, since=since, until=until, engine=engine
        ) as src:
            ids = finding_ids or tuple(src.result.violations.column("finding_id").to_pylist())
            if not ids:
                click.echo("no violations: no evidence to write")
                return
            results = src.write_many(ids, out_dir, enrich=False if no_enrich else None)
        for res in results:
            click.echo(f"{res.pcap_path} ({res.packets} packets, {res.flows} flows)", nl=False)
            found = "; ".join(f"{k}: {', '.join(v)}" for k, v in (res.enrichment or {}).items())
            click.echo(f"  {found}" if found else "")
        click.echo(f"manifests: {out_dir}/<id>.json")
        if results and results[0].enrichment_note:
            click.echo(f"enrichment: {results[0].enrichment_note}")


def register(group: click.Group) -> None:
    group.add_command(evidence)
