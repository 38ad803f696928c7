"""Fixtures of the records tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flowaudit.records.netflow import templates


@pytest.fixture(autouse=True)
def _fresh_template_cache() -> Iterator[None]:
    """Each test builds its NetFlow templates itself.

    ``parse_templates`` memoises built templates per process; without this a test whose
    templates an earlier test already built never runs ``Template.build``, so a bug there
    would pass or fail depending on test order (and on which tests a mutation run picks).
    """
    templates._CACHE.clear()
    yield
