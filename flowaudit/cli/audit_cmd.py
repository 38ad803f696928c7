"""`flowaudit audit`: traffic vs the approved matrix → findings; exit 0 clean, 1 findings."""

from __future__ import annotations

import datetime as dt
import shutil
import sys

import click

from flowaudit.choices import REPORT_FORMATS
from flowaudit.cli.common import (
    backend_options,
    engine_option,
    handle_errors,
    parse_time,
    rules_option,
    say,
    vxlan_option,
)


@click.command()
@click.argument("captures", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--store",
    "store_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Flow store. Without CAPTURES: the store to audit (default ./flowaudit-data). "
    "With CAPTURES: also add them to this store.",
)
@rules_option
@click.option("--since", callback=parse_time, help="Only flows active at or after this time.")
@click.option("--until", callback=parse_time, help="Only flows that started before this time.")
@click.option(
    "--format", "fmt", type=click.Choice(REPORT_FORMATS), default="text", show_default=True
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the report here (atomically) instead of stdout.",
)
@engine_option
@vxlan_option
@click.option(
    "--baseline",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A previous JSON report: add a `changes` section (new, persisting, resolved "
    "finding ids) and list new findings first.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["any", "new"]),
    default="any",
    show_default=True,
    help="Exit 1 on any finding, or only on findings new since --baseline (for cron jobs).",
)
@click.option(
    "--only-new",
    is_flag=True,
    help="Report only the findings new since --baseline (the changes section and the "
    "coverage picture stay whole): what a periodic job mails or files.",
)
@click.option(
    "--enrich",
    is_flag=True,
    help="Name what each violation's traffic is (TLS SNI, certificate names, HTTP host, "
    "SSH banner, DNS names) by dissecting only its packets with tshark.",
)
@click.option(
    "--detail",
    is_flag=True,
    help="Text and Markdown: list every finding of every group (default: the groups and "
    "the first 5 findings of each).",
)
@click.option(
    "--control-plane",
    "control_plane",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A LAN control-plane list (YAML) instead of the shipped one "
    "(flowaudit/audit/control_plane.yaml): link-scoped protocols listed apart.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Report LAN control-plane traffic (ND, MLD, IGMP, VRRP, DHCP, mDNS, LLMNR, SSDP "
    "to multicast/broadcast/link-local) as violations (reason control-plane).",
)
@backend_options
def audit(
    captures: tuple[str, ...],
    store_dir: str | None,
    rules_path: str | None,
    groups: dict[str, list[str]],
    since: dt.datetime | None,
    until: dt.datetime | None,
    fmt: str,
    output: str | None,
    engine: str,
    vxlan_ports: tuple[int, ...],
    baseline: str | None,
    fail_on: str,
    only_new: bool,
    enrich: bool,
    detail: bool,
    control_plane: str | None,
    strict: bool,
    backend: str,
    spark_master: str | None,
) -> None:
    """Report traffic outside the approved matrix and approved rules without traffic.

    With CAPTURES the audit covers exactly those captures; without, the whole
    store. Exit 0 when there are no findings, 1 when there are (with --fail-on new:
    only when a finding is new since --baseline).
    """
    from flowaudit import api
    from flowaudit.report import render

    if fail_on == "new" and baseline is None:
        raise click.UsageError("--fail-on new needs --baseline PREVIOUS.json")
    if only_new and baseline is None:
        raise click.UsageError("--only-new needs --baseline PREVIOUS.json")
    with handle_errors():
        result = api.audit(
            captures,
            store=store_dir,
            rules=rules_path,
            groups=groups,
            since=since,
            until=until,
            engine=engine,
            baseline=baseline,
            enrich=enrich,
            control_plane=control_plane,
            strict=strict,
            vxlan_ports=vxlan_ports,
            backend=backend,
            spark_master=spark_master,
        )
        for w in result.stats.get("warnings", []):
            say("warning", w)
        if only_new:
            from flowaudit.audit.baseline import only_new as keep_new

            result = keep_new(result)
        tty = output is None and sys.stdout.isatty()
        # a file or pipe gets the tables' natural width: folded, never cropped
        width = shutil.get_terminal_size((200, 40)).columns if tty else 1000
        if fmt == "json":  # streamed: a million findings are never one string
            from flowaudit.report.json_ import write_json
            from flowaudit.report.output import write_stream_atomic

            if output:
                write_stream_atomic(output, lambda f: write_json(result, f))
            else:
                sys.stdout.flush()
                write_json(result, sys.stdout.buffer)
                sys.stdout.buffer.flush()
        else:
            text = render(result, fmt, color=tty and fmt == "text", width=width, detail=detail)
            if output:
                from flowaudit.report.output import write_atomic

                write_atomic(output, text)
            else:
                click.echo(text, nl=False)
    if fail_on == "new":
        assert result.changes is not None
        sys.exit(1 if result.changes.new else 0)
    sys.exit(1 if result.has_findings else 0)


def register(group: click.Group) -> None:
    group.add_command(audit)
