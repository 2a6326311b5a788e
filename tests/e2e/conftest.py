"""Fixtures of the browser tests: one Chromium per module, a new browser context (its
own cookies: one person) per `person()` call, closed after the test."""

from __future__ import annotations

import pytest

from tests.support.app_server import chromium, new_page


@pytest.fixture(scope="module")
def chromium_browser():
    with chromium() as instance:
        yield instance


@pytest.fixture
def person(chromium_browser):
    pages = []

    def open_browser():
        page = new_page(chromium_browser, width=1280, height=1000)
        pages.append(page)
        return page

    yield open_browser
    for page in pages:
        page.context.close()
