"""The error hierarchy: every user-facing failure is a FlowAuditError with a hint.

Errors are translated where they enter (YAML, tshark, DuckDB, file I/O) and chained
with ``raise ... from e``; the CLI maps them to exit codes (``cli.ExitCode``).
"""

from __future__ import annotations


class FlowAuditError(Exception):
    """Base class. ``usage`` errors (bad input, bad flags) exit 2; others exit 3."""

    usage: bool = True

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"

    def __reduce__(self) -> tuple[type[FlowAuditError], tuple[str, str | None]]:
        # message and hint survive pickling (an error raised in an ingest worker process)
        return (type(self), (self.message, self.hint))


class UsageError(FlowAuditError):
    """Inconsistent arguments (e.g. --since after --until)."""


class RulesError(FlowAuditError):
    """The matrix does not load or validate (names file:line and rule id)."""


class CaptureError(FlowAuditError):
    """A capture cannot be read (names file and byte offset)."""


class StoreError(FlowAuditError):
    """The flow store is unreadable or inconsistent."""


class OutputError(FlowAuditError):
    """An output file cannot be written."""


class WriteError(FlowAuditError):
    """A file cannot be written at run time (disk full, file too large, permissions):
    a runtime failure (exit 3) that names the file."""

    usage = False


class QueryError(FlowAuditError):
    """A DuckDB query failed. A bug or resource problem, not a user mistake."""

    usage = False
