"""Start-up stays light: `flowaudit --help` imports no numpy/pyarrow/duckdb/pyshark."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("numpy", "pyarrow", "duckdb", "pyshark", "pandas", "numba")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    # the last line is the probe's; --help text printed before it is not module names
    return set(out.splitlines()[-1].split()) if out.strip() else set()


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nsys.argv=['flowaudit','--help']\n"
        "from flowaudit.cli import cli\n"
        "try:\n    cli.main(standalone_mode=True)\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "else:\n    raise AssertionError('--help: no exit')"
    )
    assert _loaded_after(code) == set()


def test_subcommand_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom flowaudit.cli import cli\n"
        "for args in (['rules','--help'],['ingest','--help'],['audit','--help']):\n"
        "    try:\n        cli.main(args, standalone_mode=True)\n"
        "    except SystemExit as e:\n        assert e.code == 0, (args, e.code)\n"
        "    else:\n        raise AssertionError(f'{args}: no exit')"
    )
    assert _loaded_after(code) == set()


def test_library_import_loads_neither_click_nor_pyshark() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import flowaudit, flowaudit.api, sys; "
            "print(' '.join(m for m in ('click','pyshark') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == []


def test_public_api_names_stay_functions_after_their_subpackages_load() -> None:
    """flowaudit.audit / .ingest / .evidence are API functions even once the subpackages of
    the same names are imported (importing a subpackage sets the package attribute)."""
    import importlib

    import flowaudit

    for name in ("audit", "ingest", "evidence"):
        importlib.import_module(f"flowaudit.{name}")
        assert callable(getattr(flowaudit, name)), name
    assert flowaudit.audit is __import__("flowaudit.api").api.audit


def test_audit_returns_a_result_that_shows_itself() -> None:
    from testpaths import ADMIN, APPROVED

    import flowaudit
    from flowaudit.audit.result import AuditResult

    r = flowaudit.audit([APPROVED], groups=ADMIN)
    again = flowaudit.audit([APPROVED], groups=ADMIN)  # the second call still the function
    assert isinstance(r, AuditResult) and r.rules_digest == again.rules_digest
    assert r.to_dict()["schema_version"] == 1
    assert r.coverage_svg().startswith("<svg")
    assert 'class="fa-report' in r._repr_html_()


def test_messages_show_control_characters_of_names_as_escapes(tmp_path: Path) -> None:
    """A file name with an escape sequence must not drive the terminal of an error."""
    from click.testing import CliRunner

    from flowaudit.cli import cli

    name = tmp_path / "evil\x1b[2Jname.pcap"
    name.write_bytes(b"not a capture\n")
    r = CliRunner().invoke(cli, ["ingest", str(name), "--store", str(tmp_path / "s")])
    assert r.exit_code == 2
    assert "\x1b" not in r.output and "evil\\x1b[2Jname.pcap" in r.output
