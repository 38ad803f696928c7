"""Start-up stays light: `flowaudit --help` imports no numpy/pyarrow/duckdb/pyshark."""

from __future__ import annotations

import subprocess
import sys

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
