"""`flowaudit evidence`: one finding's packets as a pcap slice plus a JSON manifest."""

from __future__ import annotations

import datetime as dt

import click

from flowaudit.cli.common import engine_option, handle_errors, parse_time, rules_option


@click.command()
@click.argument("finding_id")
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
@click.option(
    "--no-enrich",
    is_flag=True,
    help="Do not dissect the slice with tshark (TLS SNI, certificate names, HTTP host, "
    "SSH banner, DNS names).",
)
def evidence(
    finding_id: str,
    captures: tuple[str, ...],
    out_dir: str,
    rules_path: str | None,
    groups: dict[str, list[str]],
    since: dt.datetime | None,
    until: dt.datetime | None,
    engine: str,
    no_enrich: bool,
) -> None:
    """Write the packets of finding FINDING_ID (an id from `flowaudit audit`, or a unique
    prefix of at least 6 hex digits) to DIR/<id>.pcap, with DIR/<id>.json saying what they
    are: the finding, the captures and the slice with sha256, the flows, first/last packet
    time, the matrix digest and, where tshark is installed, what the traffic is.

    Audit the same captures with the same --rules/--group/--since/--until as the report
    the id came from. Exit 0 on success, 2 on bad input (unknown id, not a capture ...).
    """
    from flowaudit.evidence import write_evidence

    with handle_errors():
        res = write_evidence(
            finding_id,
            captures,
            out_dir,
            rules=rules_path,
            groups=groups,
            since=since,
            until=until,
            engine=engine,
            enrich=False if no_enrich else None,
        )
        click.echo(f"slice:    {res.pcap_path} ({res.packets} packets, {res.flows} flows)")
        click.echo(f"manifest: {res.manifest_path}")
        if res.enrichment:
            for key, values in res.enrichment.items():
                click.echo(f"{key}: {', '.join(values)}")
        elif res.enrichment_note:
            click.echo(f"enrichment: {'none found' if res.enrichment == {} else 'skipped'}")
            click.echo(f"  ({res.enrichment_note})")


def register(group: click.Group) -> None:
    group.add_command(evidence)
