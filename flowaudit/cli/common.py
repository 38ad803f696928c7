"""Shared CLI pieces: error-to-exit-code mapping and option decorators."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from flowaudit._util.text import visible
from flowaudit.choices import BACKENDS, ENGINES
from flowaudit.errors import FlowAuditError

F = TypeVar("F", bound=Callable[..., Any])

USAGE = 2
RUNTIME = 3


def say(kind: str, text: str) -> None:
    """``flowaudit: KIND: TEXT`` on stderr, control characters of names made visible."""
    click.echo(f"flowaudit: {kind}: {visible(text, keep_newlines=True)}", err=True)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Map library errors to exit codes; user mistakes never show a traceback."""
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise  # click reports these itself (usage errors exit 2)
    except FlowAuditError as e:
        say("error", str(e))
        sys.exit(USAGE if e.usage else RUNTIME)
    except KeyboardInterrupt:
        click.echo("flowaudit: interrupted", err=True)
        sys.exit(130)
    except MemoryError:
        click.echo("flowaudit: error: out of memory", err=True)
        sys.exit(RUNTIME)
    except OSError as e:
        # disk full, permission denied, ... at run time: name the file, no traceback
        where = f"{e.filename}: " if e.filename else ""
        say("error", f"{where}{e.strerror or e}")
        sys.exit(RUNTIME)
    except Exception as e:  # a bug: say so, keep the traceback for the report
        if os.environ.get("FLOWAUDIT_DEBUG"):
            raise
        click.echo(
            f"flowaudit: internal error: {type(e).__name__}: {e}\n"
            "  (set FLOWAUDIT_DEBUG=1 for the traceback and please report it)",
            err=True,
        )
        sys.exit(RUNTIME)


def parse_group_overrides(values: tuple[str, ...]) -> dict[str, list[str]]:
    """``--group NAME=CIDR[,CIDR]`` (repeatable) → {name: [cidr, ...]}."""
    out: dict[str, list[str]] = {}
    for v in values:
        name, sep, cidrs = v.partition("=")
        if not sep or not name.strip() or not cidrs.strip():
            raise click.BadParameter(f"expected NAME=CIDR[,CIDR], got {v!r}", param_hint="--group")
        out.setdefault(name.strip(), []).extend(c.strip() for c in cidrs.split(",") if c.strip())
    return out


def _parse_groups(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> dict[str, list[str]]:
    return parse_group_overrides(value)


def group_option(f: F) -> F:
    """``--group NAME=CIDR[,CIDR]`` (repeatable): addresses for needs_configuration groups."""
    return click.option(
        "--group",
        "groups",
        multiple=True,
        callback=_parse_groups,
        metavar="NAME=CIDR[,CIDR]",
        help="Supply addresses for a group the matrix leaves unconfigured "
        "(e.g. admin_workstations); repeatable.",
    )(f)


def rules_path_option(f: F) -> F:
    """``--rules PATH``: a matrix file or directory (default: the shipped matrix)."""
    return click.option(
        "--rules",
        "rules_path",
        type=click.Path(exists=True, dir_okay=True, file_okay=True),
        default=None,
        help="Matrix file or directory (default: the shipped matrix).",
    )(f)


def rules_option(f: F) -> F:
    """``--rules PATH`` and ``--group``."""
    return rules_path_option(group_option(f))


def vxlan_option(f: F) -> F:
    """``--vxlan-port N`` (repeatable): VXLAN on more UDP ports than 4789 and 8472."""
    return click.option(
        "--vxlan-port",
        "vxlan_ports",
        type=click.IntRange(1, 65535),
        multiple=True,
        help="Open VXLAN on this UDP destination port too (4789 and Cilium's 8472 always "
        "are, Geneve 6081 and GRE as well): inner flows go to the store marked by tunnel.",
    )(f)


def engine_option(f: F) -> F:
    """``--engine auto|fast|tshark``: the packet engine for captures."""
    return click.option(
        "--engine",
        type=click.Choice(ENGINES),
        default="auto",
        show_default=True,
        help="Packet engine: the fast reader, or tshark (via pyshark) for odd link types; "
        "auto falls back to tshark for link types the fast reader does not decode.",
    )(f)


def backend_options(f: F) -> F:
    """``--backend duckdb|spark`` and ``--spark-master URL``."""
    f = click.option(
        "--spark-master",
        default=None,
        metavar="URL",
        help="With --backend spark: the master (local[N], spark://HOST:PORT, yarn, k8s://...) "
        "[default: $SPARK_MASTER, else spark.master in $SPARK_CONF_DIR/spark-defaults.conf, "
        "else local[2]]; other settings from $SPARK_CONF_DIR.",
    )(f)
    return click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default="duckdb",
        show_default=True,
        help="Where the work runs: here (DuckDB; ingest: worker processes), or on Spark "
        "over the same store (ingest: one task per input; pip install 'flowaudit[spark]' "
        "and a Java 17 runtime).",
    )(f)


def _store_dir(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.strip():  # "" would be the current directory
        raise click.BadParameter("the flow store path is empty", param_hint="--store")
    return value


def store_option(f: F) -> F:
    """``--store DIR``: the flow store (default ./flowaudit-data); never empty."""
    return click.option(
        "--store",
        "store_dir",
        default="flowaudit-data",
        show_default=True,
        type=click.Path(file_okay=False),
        callback=_store_dir,
        help="Flow store directory (Hive-partitioned Parquet + manifest).",
    )(f)


def parse_time(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.datetime | None:
    """``--since``/``--until``: ISO-8601 → aware datetime (naive means UTC)."""
    if value is None:
        return None
    from flowaudit._util.time import as_utc

    try:
        t = as_utc(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO-8601 time (e.g. 2026-11-20T08:00Z)"
        ) from None
    except FlowAuditError as e:
        raise click.BadParameter(f"{value!r}: {e.message}") from None
    assert t is not None
    return t
