"""flowaudit: passive flow audit of captured traffic against an approved port matrix.

The public API (also what the notebooks use) is re-exported lazily from
``flowaudit.api`` so that ``import flowaudit`` stays cheap. Three of its names are also
names of subpackages (``flowaudit.audit``, ``flowaudit.evidence``, ``flowaudit.ingest``):
importing a subpackage sets an attribute of the same name on this package, so the
package's module class answers the public names from ``api`` first, before and after
any such import (``flowaudit.audit(...)`` is always the function).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from flowaudit._util.version import __version__

__all__ = [
    "audit",
    "describe",
    "diff_rules",
    "evidence",
    "ingest",
    "load_matrix",
    "merge_rules",
    "open_store",
    "propose_rules",
    "query",
    "__version__",
]

_API = frozenset(__all__) - {"__version__"}


class _Package(types.ModuleType):
    def __getattribute__(self, name: str) -> Any:
        if name in _API:
            from flowaudit import api

            return getattr(api, name)
        return super().__getattribute__(name)


sys.modules[__name__].__class__ = _Package
