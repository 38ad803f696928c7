"""`flowaudit ingest`: captures → flows in the Parquet store."""

from __future__ import annotations

import sys
from typing import Any

import click

from flowaudit.choices import INPUT_FORMATS
from flowaudit.cli.common import (
    backend_options,
    engine_option,
    handle_errors,
    rules_path_option,
    say,
    store_option,
    vxlan_option,
)

PROGRESS_MIN_BYTES = 32 << 20


@click.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(exists=True))
@store_option
@engine_option
@vxlan_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(INPUT_FORMATS),
    default="auto",
    show_default=True,
    help="Input format. auto: pcap/pcapng by magic bytes, nfcapd/Zeek/Hubble by content; "
    "NetFlow/IPFIX exports (in a pcap or raw datagrams) need --format netflow.",
)
@rules_path_option
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Inputs ingested at once, each in a worker process [default: half the cores, as "
    "each ingest keeps two busy: parser and hash]. Each capture still becomes visible only "
    "when complete.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary lines.")
@backend_options
def ingest(
    captures: tuple[str, ...],
    store_dir: str,
    engine: str,
    vxlan_ports: tuple[int, ...],
    fmt: str,
    rules_path: str | None,
    jobs: int | None,
    quiet: bool,
    backend: str,
    spark_master: str | None,
) -> None:
    """Read CAPTURES (pcap/pcapng, .gz too, or flow records) and add their flows to the store.

    A capture already in the store (same BLAKE3 digest of its content) adds nothing. Warnings about
    truncated or undecodable data go to stderr; what could be read is kept. The
    matrix (--rules) names the service ports that orient flows seen without a SYN.
    """
    import os

    from flowaudit import api

    if jobs is None:  # each ingest keeps two cores busy: its parser and the hash beside it
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        jobs = max(1, cores // 2)
    with handle_errors():
        store = api.open_store(store_dir)
        if backend == "spark" or spark_master is not None:  # one Spark task per input
            results = api.ingest(
                list(captures),
                store,
                engine=engine,
                format=fmt,
                rules=rules_path,
                backend=backend,
                spark_master=spark_master,
            )
            _report(results, quiet)
            return
        if jobs > 1 and len(captures) > 1:  # worker processes; summaries in input order
            results = api.ingest(
                list(captures), store, engine=engine, format=fmt, rules=rules_path, jobs=jobs,
                vxlan_ports=vxlan_ports,
            )  # fmt: skip
            _report(results, quiet)
            return
        for path in captures:
            with _progress(path, quiet) as cb:
                results = api.ingest(
                    path, store, engine=engine, format=fmt, progress=cb, rules=rules_path,
                    vxlan_ports=vxlan_ports,
                )  # fmt: skip
            _report(results, quiet)


def _report(results: Any, quiet: bool) -> None:
    for res in results:
        for w in res.warnings:
            say("warning", w)
        if not quiet:
            click.echo(res.summary(), err=True)


class _progress:
    """A rich progress bar on stderr for big captures when stderr is a terminal."""

    def __init__(self, path: str, quiet: bool) -> None:
        import os

        self.enabled = (
            not quiet and sys.stderr.isatty() and os.path.getsize(path) >= PROGRESS_MIN_BYTES
        )
        self.path = path
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        self.bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        task = self.bar.add_task(click.format_filename(self.path), total=None)

        def cb(done: int, total: int) -> None:
            self.bar.update(task, completed=done, total=total)

        return cb

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def register(group: click.Group) -> None:
    group.add_command(ingest)
