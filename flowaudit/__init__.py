"""flowaudit: passive flow audit of captured traffic against an approved port matrix.

The public API (also what the notebooks use) is re-exported lazily from
``flowaudit.api`` so that ``import flowaudit`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["audit", "evidence", "ingest", "load_matrix", "open_store", "query", "__version__"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from flowaudit import api

        return getattr(api, name)
    raise AttributeError(name)
