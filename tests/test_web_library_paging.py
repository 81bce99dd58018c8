"""The library drawer lists a large collection a page at a time, in a real Chromium against a
real `citeqa serve`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.webpage import open_page

pytestmark = pytest.mark.browser

COLLECTION = "logbook"
# One page and a bit: the drawer shows 100 articles first.
NOTES = 130


@pytest.fixture
def logbook(live_server: str) -> Iterator[str]:
    """A collection of 130 short notes on the live server; its name."""
    httpx.post(f"{live_server}/v1/collections", json={"name": COLLECTION}).raise_for_status()
    notes = [{"id": f"entry-{n:03d}", "title": f"Logbook entry {n}",
              "text": f"Entry {n}: wind from the west, the pilot boat went out {n % 7} times "
                      f"and the lighthouse lamp was trimmed before dark."}
             for n in range(NOTES)]
    httpx.post(f"{live_server}/v1/documents", params={"collection": COLLECTION},
               json={"documents": notes}, timeout=300).raise_for_status()
    try:
        yield COLLECTION
    finally:
        httpx.delete(f"{live_server}/v1/collections/{COLLECTION}").raise_for_status()


def test_the_library_shows_a_page_then_more_on_request(browser: Any, live_server: str,
                                                       logbook: str) -> None:
    page = open_page(browser, live_server)
    try:
        page.get_by_test_id("collection-select").select_option(logbook)
        page.get_by_test_id("library-button").click()
        rows = page.locator('[data-testid="doc-row"]')
        more = page.get_by_test_id("doc-more")
        expect(rows).to_have_count(100)
        expect(page.locator("#doc-count")).to_have_text(f"({NOTES})")
        expect(more).to_be_visible()

        more.click()

        expect(rows).to_have_count(NOTES)
        expect(more).to_be_hidden()
        listed = [rows.nth(i).get_attribute("data-doc-id") for i in range(NOTES)]
        assert listed == [f"entry-{n:03d}" for n in range(NOTES)]
        # The first article of the new page has the focus, so a keyboard reader carries on there.
        expect(rows.nth(100).locator(".doc-open")).to_be_focused()
    finally:
        page.context.close()
