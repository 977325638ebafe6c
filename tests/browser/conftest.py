"""Headless Chromium for the browser tests: installed with apt-get when missing and possible,
otherwise the tests skip with the reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.cdp import Page, chromium_page, install_chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    binary, how = install_chromium()
    if binary is None:
        pytest.skip(f"headless Chromium is not available and could not be installed: {how}")
    return binary


@pytest.fixture
def browser(chromium: str) -> Iterator[Page]:
    with chromium_page(chromium) as page:
        yield page
