"""External tools' output is bounded (``flowaudit/_util/tools.py``): a tool that prints
without end is stopped, its first message kept; one that ends is read whole."""

from __future__ import annotations

import sys

from flowaudit._util import tools


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_endless_messages_stop_the_tool_and_keep_its_first_line() -> None:
    code = "import sys\nsys.stderr.write('first\\n')\nwhile True: sys.stderr.write('again\\n')"
    proc, messages = tools.start(_python(code), "looper")
    assert proc.stdout is not None
    assert proc.stdout.read() == b""  # ends: the tool is killed
    assert proc.wait() < 0
    assert messages.lines() == ["looper printed more than 1 MiB of messages and was stopped: first"]
    assert tools.LIMIT < messages.total <= tools.LIMIT + (1 << 20)


def test_endless_output_is_stopped_at_its_limit() -> None:
    run = tools.run(_python("import sys\nwhile True: sys.stdout.write('x' * 999 + '\\n')"),
                    "looper", out_limit=1 << 20)  # fmt: skip
    assert run.stopped and run.returncode < 0
    assert (1 << 20) < len(run.stdout) <= (2 << 20)
    assert run.messages == ["looper printed more than 1 MiB and was stopped"]


def test_a_tool_that_ends_is_read_whole() -> None:
    code = (
        "import sys\nprint('a' * 100000)\nsys.stderr.write('warn\\n\\n  second  \\n')\nsys.exit(3)"
    )
    run = tools.run(_python(code), "t")
    assert run == tools.Run(3, b"a" * 100000 + b"\n", ["warn", "second"], False)
