"""``flowaudit rules check|show|lint``: validate, display and lint the approved matrix.

(``propose``, ``diff`` and ``merge`` live in ``rules_change_cmd`` and join this group.)

Thin commands: parse arguments, call ``flowaudit.matrix``, render with
``flowaudit.matrix.render``, map the outcome to an exit code (check 0/2; lint 0 clean,
1 findings, 2 invalid). The library is imported inside each command so that
``flowaudit --help`` imports neither pyarrow nor the YAML machinery.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from flowaudit.cli.common import group_option, handle_errors

F = TypeVar("F", bound=Callable[..., Any])

FINDINGS = 1

PATH_ARG = click.argument(
    "path",
    required=False,
    type=click.Path(exists=True, dir_okay=True, file_okay=True),
)


def _load(path: str | None, groups: dict[str, list[str]]) -> Any:
    from flowaudit import api

    return api.load_matrix(path, groups or None)


@click.group("rules")
def rules_group() -> None:
    """Validate, show, lint and change the approved port matrix (rules/*.yaml).

    PATH is a matrix file, a site overlay file (applied to the shipped matrix), or a
    directory holding one matrix plus overlays. Default: the shipped matrix.
    """


@rules_group.command("check")
@PATH_ARG
@group_option
def check_cmd(path: str | None, groups: dict[str, list[str]]) -> None:
    """Validate a matrix: exit 0 when valid, 2 when not (errors name file:line and rule)."""
    from flowaudit.matrix.render import check_text

    with handle_errors():
        m = _load(path, groups)
        click.echo(check_text(m), nl=False)


@rules_group.command("show")
@PATH_ARG
@group_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def show_cmd(path: str | None, groups: dict[str, list[str]], fmt: str) -> None:
    """Print the compiled rules: one row per rule, protocol, address range and port range."""
    from flowaudit.matrix.render import show_json, show_table

    with handle_errors():
        m = _load(path, groups)
        click.echo(show_json(m) if fmt == "json" else show_table(m), nl=False)


@rules_group.command("lint")
@PATH_ARG
@group_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
def lint_cmd(path: str | None, groups: dict[str, list[str]], fmt: str) -> None:
    """Report static findings in the matrix: exit 0 clean, 1 findings, 2 invalid matrix."""
    from flowaudit.matrix import lint_matrix
    from flowaudit.matrix.render import lint_json, lint_text

    with handle_errors():
        m = _load(path, groups)
        findings = lint_matrix(m)
        click.echo(lint_json(m, findings) if fmt == "json" else lint_text(m, findings), nl=False)
    if findings:
        sys.exit(FINDINGS)


def register(group: click.Group) -> None:
    """Add the ``rules`` command group to the top-level CLI."""
    from flowaudit.cli.rules_change_cmd import add_commands

    add_commands(rules_group)
    group.add_command(rules_group)
