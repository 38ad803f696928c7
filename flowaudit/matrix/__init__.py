"""The approved port matrix: load, validate, compile to Arrow, and lint.

``load_matrix(path=None, groups=None)`` returns a frozen ``Matrix`` (the shipped matrix
when ``path`` is None); ``lint_matrix(m)`` returns its static ``LintFinding`` list.
Importing this package does not import pyarrow; the ``*_table()`` methods do.
"""

from __future__ import annotations

from flowaudit.matrix.lint import KINDS, LintFinding, lint_matrix
from flowaudit.matrix.loader import load_matrix, shipped_rules_dir
from flowaudit.matrix.model import (
    HostGroup,
    Matrix,
    Provenance,
    Rule,
    Scope,
)

__all__ = [
    "KINDS",
    "HostGroup",
    "LintFinding",
    "Matrix",
    "Provenance",
    "Rule",
    "Scope",
    "lint_matrix",
    "load_matrix",
    "shipped_rules_dir",
]
