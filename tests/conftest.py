"""Fixtures shared by every test folder: a real headless browser for radsynth's HTML reports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from browser import MISSING, Browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Chromium under chromedriver, one per test process; skipped, with the reason, without it."""
    if MISSING:
        pytest.skip(MISSING)
    chromium = Browser()
    try:
        yield chromium
    finally:
        chromium.close()
