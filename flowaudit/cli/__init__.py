"""The command line: thin click commands over ``flowaudit.api``.

Each command parses arguments, calls one api function, picks a renderer, and maps
errors to an exit code. Subcommands live in sibling modules (``rules_cmd``,
``ingest_cmd``, ``audit_cmd``); none imports numpy, pyarrow, duckdb or pyshark at
module level, so ``flowaudit --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from enum import IntEnum

import click

from flowaudit.cli.common import handle_errors


class ExitCode(IntEnum):
    """Exit codes are an API (DESIGN.md)."""

    OK = 0  # no findings
    FINDINGS = 1  # findings reported
    USAGE = 2  # bad flags, bad rules, bad input
    RUNTIME = 3  # capture or query failure at run time


EPILOG = "Exit codes: 0 no findings, 1 findings, 2 bad usage or bad input, 3 runtime failure."


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flowaudit")
def cli() -> None:
    """flowaudit: check captured traffic against an approved port matrix."""
    from flowaudit.kernels.build import on_build

    # a fresh install's first ingest compiles the kernels for 15-30 s: say so, on stderr
    on_build(lambda message: click.echo(f"flowaudit: {message}", err=True))


def _register() -> None:
    # each sibling module exposes register(group)
    for name in (
        "rules_cmd",
        "ingest_cmd",
        "audit_cmd",
        "query_cmd",
        "evidence_cmd",
        "store_cmd",
        "selftest_cmd",
    ):
        mod = __import__(f"flowaudit.cli.{name}", fromlist=["register"])
        mod.register(cli)


_register()


def main() -> None:
    """Console-script entry point."""
    # numpy's OpenBLAS starts a thread per core that spins for a while (~0.1 s of CPU on a
    # 2-core machine, taken from the packet reader); flowaudit does no linear algebra
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with handle_errors():
        cli.main(standalone_mode=True)
    sys.exit(0)


__all__ = ["EPILOG", "ExitCode", "cli", "main"]
