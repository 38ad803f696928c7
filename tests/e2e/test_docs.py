"""Docs are tested: every command has help text and appears in the README."""

from __future__ import annotations

import click
from click.testing import CliRunner
from testpaths import REPO

from flowaudit.cli import cli

README = (REPO / "README.md").read_text()


def _commands(group: click.Group, prefix: str = "flowaudit") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix} {name}"
        out.append((full, cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, full))
    return out


def test_every_command_has_help_and_is_in_the_readme() -> None:
    cmds = _commands(cli)
    assert {c for c, _ in cmds} >= {
        "flowaudit ingest",
        "flowaudit audit",
        "flowaudit query",
        "flowaudit rules",
        "flowaudit rules check",
        "flowaudit rules show",
        "flowaudit rules lint",
    }
    for full, cmd in cmds:
        assert cmd.help, f"{full} has no help text"
        if not isinstance(cmd, click.Group):
            assert f"`{full}" in README, f"{full} is not documented in README.md"
        r = CliRunner().invoke(cli, [*full.split()[1:], "--help"])
        assert r.exit_code == 0 and "Usage:" in r.output


def test_readme_states_the_exit_codes() -> None:
    assert "0 no findings, 1 findings, 2 bad usage or bad input" in README
    r = CliRunner().invoke(cli, ["--help"])
    assert r.exit_code == 0
    assert "Exit codes: 0 no findings, 1 findings" in r.output
