"""The chat page's everyday controls, in a real Chromium against a real `citeqa serve`: focus,
starter questions, stop, copy, edit and resend, the length counter, when Try again is offered,
and the library drawer giving way to the article it opens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import copy_data_folder, serving
from tests.webpage import FINISHED, PHONE, api_answer, ask, open_page, uncovered

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh page (empty localStorage) at the chat page, desktop size."""
    page = open_page(browser, live_server)
    yield page
    page.context.close()


def test_the_empty_page_focuses_the_box_and_offers_questions_from_the_collection(
        page: Any, live_server: str) -> None:
    expect(page.get_by_test_id("question-input")).to_be_focused()
    starters = page.get_by_test_id("starter-question")
    expect(starters).to_have_count(3)
    documents = httpx.get(f"{live_server}/v1/documents").json()["documents"]
    newest = sorted(documents, key=lambda doc: doc["date"] or "", reverse=True)[:3]
    for starter, doc in zip(starters.all(), newest, strict=True):
        assert doc["title"] in starter.inner_text()
    question = starters.first.inner_text()
    starters.first.click()
    answer = page.locator('[data-testid="answer"]').first
    answer.and_(page.locator(FINISHED)).wait_for(timeout=60_000)
    assert answer.get_attribute("data-state") == "done"
    assert page.get_by_test_id("user-message").inner_text().startswith(question)
    expect(page.get_by_test_id("starter-question").first).to_be_hidden()
    cited = {c["doc_id"] for c in api_answer(live_server, question)["citations"]}
    assert newest[0]["id"] in cited


def test_stop_aborts_the_answer_and_keeps_the_question(page: Any) -> None:
    held: list[Any] = []
    failed: list[str] = []
    # The request is held unanswered, so the answer is still coming when Stop is pressed.
    page.route("**/v1/ask/stream", lambda route: held.append(route))
    page.on("requestfailed", lambda request: failed.append(request.url))
    box = page.get_by_test_id("question-input")
    box.fill("When will the lab open?")
    box.press("Enter")
    stop = page.get_by_test_id("stop-button")
    expect(stop).to_be_visible()
    expect(page.get_by_test_id("send-button")).to_be_hidden()
    stop.click()
    answer = page.locator('[data-testid="answer"]').first
    expect(answer).to_have_attribute("data-state", "stopped")
    expect(answer.get_by_test_id("stopped-message")).to_contain_text("stopped")
    expect(page.get_by_test_id("send-button")).to_be_visible()
    expect(stop).to_be_hidden()
    assert held and any(url.endswith("/v1/ask/stream") for url in failed)
    assert box.input_value() == "When will the lab open?"
    page.unroute_all(behavior="ignoreErrors")
    # Asked again, it is answered; a stopped answer is not kept as a turn.
    answer.get_by_test_id("retry-button").click()
    again = page.locator('[data-testid="answer"]').first
    expect(again).to_have_attribute("data-state", "done", timeout=60_000)
    assert "September 2026" in again.get_by_test_id("answer-text").inner_text()
    page.reload()
    expect(page.locator('[data-testid="answer"]')).to_have_count(1)


def test_copy_puts_the_answer_text_on_the_clipboard(browser: Any, live_server: str) -> None:
    page = open_page(browser, live_server, permissions=["clipboard-read", "clipboard-write"])
    try:
        answer = ask(page, "How much did the tram line cost?")
        button = answer.get_by_test_id("copy-answer")
        button.click()
        expect(button).to_contain_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == api_answer(live_server, "How much did the tram line cost?")["answer"]
        assert "612 million" in copied
    finally:
        page.context.close()


def test_edit_and_resend_replaces_that_question_and_the_turns_after_it(page: Any) -> None:
    ask(page, "Who co-leads the lab?")
    ask(page, "What else does the second one do?")
    first = page.get_by_test_id("user-message").first
    first.get_by_test_id("edit-question").click()
    field = first.get_by_test_id("edit-input")
    expect(field).to_have_value("Who co-leads the lab?")
    expect(field).to_be_focused()
    field.fill("How much did the tram line cost?")
    first.get_by_test_id("edit-send").click()
    answers = page.locator('[data-testid="answer"]')
    expect(answers).to_have_count(1)
    answers.first.and_(page.locator(FINISHED)).wait_for(timeout=60_000)
    assert "612 million" in answers.first.get_by_test_id("answer-text").inner_text()
    expect(page.locator('[data-testid="user-message"] .user-text')).to_have_text(
        ["How much did the tram line cost?"])
    # What is kept is the edited conversation.
    page.reload()
    expect(page.locator('[data-testid="answer"]')).to_have_count(1)
    assert "612 million" in page.locator('[data-testid="answer"]').first.inner_text()


def test_the_counter_shows_the_servers_limit_and_an_over_long_question_is_not_sent(
        browser: Any, tmp_path: Path, _sample_data_template: Path) -> None:
    data_dir = tmp_path / "data"
    copy_data_folder(_sample_data_template, data_dir)
    with serving(data_dir, env={"CITEQA_MAX_QUESTION_CHARS": "120"}) as base:
        assert httpx.get(f"{base}/v1/limits").json()["max_question_chars"] == 120
        page = open_page(browser, base)
        sent: list[str] = []
        page.on("request", lambda request: sent.append(request.url)
                if request.url.endswith("/v1/ask/stream") else None)
        try:
            box = page.get_by_test_id("question-input")
            counter = page.get_by_test_id("char-count")
            box.fill("Who co-leads the lab?")
            expect(counter).to_be_hidden()
            near = "Who co-leads the lab " + "and " * 20 + "when?"
            box.fill(near)
            expect(counter).to_have_text(f"{len(near)} / 120")
            too_long = near + " " + "really " * 5
            box.fill(too_long)
            over = len(" ".join(too_long.split())) - 120
            expect(counter).to_have_text(f"{over + 120} / 120: {over} characters too many")
            box.press("Enter")
            notice = page.get_by_test_id("error-message")
            expect(notice).to_contain_text(f"{over} characters over the limit of 120")
            assert page.locator('[data-testid="answer"]').count() == 0 and not sent
            assert box.input_value() == too_long
            box.fill("Who co-leads the lab?")
            expect(counter).to_be_hidden()
            answer = ask(page, "Who co-leads the lab?")
            assert answer.get_attribute("data-state") == "done"
        finally:
            page.context.close()


def test_try_again_is_not_offered_when_the_server_refuses_the_question(
        page: Any, live_server: str) -> None:
    httpx.post(f"{live_server}/v1/collections", json={"name": "short-lived"}).raise_for_status()
    try:
        page.reload()
        page.get_by_test_id("collection-select").select_option("short-lived")
    finally:
        httpx.delete(f"{live_server}/v1/collections/short-lived").raise_for_status()
    # The collection is gone: the server answers 404, and asking again cannot change that.
    failed = ask(page, "When will the lab open?")
    assert failed.get_attribute("data-state") == "error"
    expect(failed.get_by_test_id("error-message")).to_contain_text("short-lived")
    expect(failed.get_by_test_id("retry-button")).to_have_count(0)


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_an_article_opened_from_the_library_is_not_under_the_drawer(
        browser: Any, live_server: str, viewport: str) -> None:
    page = open_page(browser, live_server, viewport=PHONE if viewport == "phone" else None)
    try:
        page.get_by_test_id("library-button").click()
        row = page.locator('[data-testid="doc-row"]').nth(1)
        doc_id = row.get_attribute("data-doc-id")
        row.locator(".doc-open").click()
        expect(page.get_by_test_id("source-panel")).to_be_visible()
        expect(page.get_by_test_id("source-text")).not_to_be_empty()
        expect(page.get_by_test_id("library-panel")).to_be_hidden()
        assert uncovered(page, "source-panel")
        # Closing the article goes back to the library, at the row it was opened from.
        page.get_by_test_id("source-panel-close").click()
        expect(page.get_by_test_id("library-panel")).to_be_visible()
        expect(page.locator(f'[data-doc-id="{doc_id}"] .doc-open')).to_be_focused()
    finally:
        page.context.close()


def _listed(base: str) -> set[str]:
    return {doc["id"] for doc in httpx.get(f"{base}/v1/documents").json()["documents"]}


def test_undo_keeps_a_deleted_article_and_leaving_the_page_sends_the_delete(
        page: Any, live_server: str) -> None:
    note = {"id": "harbour-note.md", "title": "Harbour Ferry Timetable Changes",
            "text": "The harbour ferry will leave every twenty minutes from the first of May."}
    httpx.post(f"{live_server}/v1/documents", json={"documents": [note]},
               timeout=60).raise_for_status()
    page.get_by_test_id("library-button").click()
    row = page.locator('[data-testid="doc-row"][data-doc-id="harbour-note.md"]')
    row.get_by_test_id("doc-delete").click()
    expect(row).to_have_count(0)
    page.get_by_test_id("toast-action").click()
    expect(row).to_have_count(1)
    # Undone: nothing is waiting, so leaving the page deletes nothing.
    page.reload()
    page.locator('html[data-ready="true"]').wait_for(state="attached")
    assert "harbour-note.md" in _listed(live_server)

    page.get_by_test_id("library-button").click()
    row.get_by_test_id("doc-delete").click()
    expect(row).to_have_count(0)
    assert "harbour-note.md" in _listed(live_server)
    # Leaving within the undo time still deletes it.
    page.goto(f"{live_server}/healthz")
    for _ in range(50):
        if "harbour-note.md" not in _listed(live_server):
            break
        page.wait_for_timeout(200)
    assert "harbour-note.md" not in _listed(live_server)


def test_the_samples_are_labelled_and_an_empty_collection_says_so(
        page: Any, live_server: str) -> None:
    httpx.post(f"{live_server}/v1/collections", json={"name": "samples"}).raise_for_status()
    try:
        page.reload()
        page.locator('html[data-ready="true"]').wait_for(state="attached")
        note = page.get_by_test_id("samples-note")
        expect(note).to_be_hidden()
        page.get_by_test_id("collection-select").select_option("samples")
        expect(note).to_be_visible()
        expect(note).to_contain_text("citeqa collections delete samples")

        answer = ask(page, "When will the lab open?")
        assert answer.get_attribute("data-state") == "abstained"
        expect(answer).to_contain_text("Nothing to search")
        expect(answer).to_contain_text("has no articles yet")
        page.get_by_test_id("collection-select").select_option("articles")
        expect(note).to_be_hidden()
    finally:
        httpx.delete(f"{live_server}/v1/collections/samples").raise_for_status()
