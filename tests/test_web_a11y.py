"""Accessibility (axe-core, from npm) and screenshots of the chat page's main states and of its
"Check a text" mode, and the API docs pages working with no network."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import DESKTOP, LAB_DOC
from tests.webpage import (
    CHECK_TEXT,
    PHONE,
    ask,
    axe_violations,
    check_text,
    open_check_mode,
    open_page,
    shot,
)

pytestmark = pytest.mark.browser


def _no_violations(page: Any, state: str) -> None:
    violations = axe_violations(page)
    assert violations == [], f"axe on {state}: {json.dumps(violations, indent=1)}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_main_states_pass_axe_and_are_screenshotted(browser: Any, live_server: str, size: str,
                                                    scheme: str) -> None:
    page = open_page(browser, live_server, viewport=DESKTOP if size == "desktop" else PHONE,
                     color_scheme=scheme)
    try:
        page.get_by_test_id("starter-question").first.wait_for()
        shot(page, f"{size}-{scheme}-empty")
        _no_violations(page, "the empty page")
        answer = ask(page, "Who co-leads the lab?")
        ask(page, "What is the boiling point of mercury?")
        shot(page, f"{size}-{scheme}-conversation")
        _no_violations(page, "an answered conversation")
        answer.get_by_test_id("citation-chip").first.click()
        page.get_by_test_id("source-highlight").wait_for(state="visible")
        shot(page, f"{size}-{scheme}-source")
        _no_violations(page, "the source viewer")
        page.keyboard.press("Escape")
        page.get_by_test_id("library-button").click()
        page.get_by_test_id("library-panel").wait_for(state="visible")
        page.locator('[data-testid="doc-row"]').first.wait_for()
        shot(page, f"{size}-{scheme}-library")
        _no_violations(page, "the library")
        rows = page.locator('[data-testid="doc-row"]').count()
        listed = httpx.get(f"{live_server}/v1/documents").json()["documents"]
        assert rows == len(listed)
        assert page.locator(f'[data-doc-id="{LAB_DOC}"]').count() == 1
    finally:
        page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_check_mode_passes_axe_and_is_screenshotted(browser: Any, live_server: str, size: str,
                                                        scheme: str) -> None:
    page = open_page(browser, live_server, viewport=DESKTOP if size == "desktop" else PHONE,
                     color_scheme=scheme)
    try:
        open_check_mode(page)
        shot(page, f"{size}-{scheme}-check-empty")
        _no_violations(page, "Check a text, empty")
        assert check_text(page, CHECK_TEXT).get_attribute("data-state") == "done"
        shot(page, f"{size}-{scheme}-check-checked")
        _no_violations(page, "a checked text")
        page.locator('[data-testid="verify-sentence"][data-verdict="contradicted"]').click()
        page.get_by_test_id("verify-detail").scroll_into_view_if_needed()
        shot(page, f"{size}-{scheme}-check-detail")
        _no_violations(page, "a sentence's reason and evidence")
        page.get_by_test_id("verify-evidence").first.click()
        page.get_by_test_id("source-highlight").wait_for(state="visible")
        shot(page, f"{size}-{scheme}-check-evidence")
        _no_violations(page, "a sentence's evidence in the article")
    finally:
        page.context.close()


def test_the_key_dialog_and_an_edited_question_pass_axe(browser: Any, live_server: str) -> None:
    page = open_page(browser, live_server)
    try:
        ask(page, "When will the lab open?")
        page.get_by_test_id("edit-question").click()
        _no_violations(page, "a question being edited")
        page.get_by_test_id("edit-input").press("Escape")
        page.evaluate("document.getElementById('key-dialog').showModal()")
        _no_violations(page, "the API key dialog")
    finally:
        page.context.close()


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_name_no_outside_host(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text
    assert "cdn" not in page.headers["content-security-policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        if asset in page.text:
            assert client.get(f"/docs-assets/{asset}").status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_render_the_operations_without_the_network(browser: Any, live_server: str,
                                                               path: str) -> None:
    context = browser.new_context(viewport=DESKTOP)
    outside: list[str] = []

    def local_only(route: Any) -> None:
        # Anything not on the loopback server would need the internet: refuse and record it.
        if urlsplit(route.request.url).netloc != urlsplit(live_server).netloc:
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", local_only)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(live_server + path)
        if path == "/docs":
            operation = page.locator(".opblock-summary-path", has_text="/v1/ask/stream")
        else:
            operation = page.get_by_text("/v1/ask/stream").first
        operation.wait_for(state="visible")
        assert outside == [] and errors == []
    finally:
        context.close()
