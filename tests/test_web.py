"""The chat page in a real headless Chromium, against a real `citeqa serve` on loopback.

Screenshots of the main states go to test-artifacts/screenshots/ (`make test` reports them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from qa.followup import garbled
from tests.conftest import copy_data_folder, serving
from tests.webpage import api_answer, ask, open_page, shot

pytestmark = pytest.mark.browser



@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh page (empty localStorage) at the chat page, desktop size."""
    page = open_page(browser, live_server)
    yield page
    page.context.close()


def test_answer_streams_and_a_citation_opens_its_exact_span(page: Any, live_server: str) -> None:
    answer = ask(page, "Who co-leads the lab?")
    assert answer.get_attribute("data-state") == "done"
    assert "streaming" in page.evaluate("window.__answerStates")
    text = answer.get_by_test_id("answer-text").inner_text()
    assert "Miriam Okafor" in text and "Tomas Verhoeven" in text
    expected = api_answer(live_server, "Who co-leads the lab?")["citations"][0]

    chip = answer.get_by_test_id("citation-chip").first
    chip.hover()
    popover = page.get_by_test_id("citation-popover")
    popover.wait_for(state="visible")
    assert expected["quote"][:40] in popover.inner_text()

    chip.click()
    panel = page.get_by_test_id("source-panel")
    panel.wait_for(state="visible")
    highlight = page.get_by_test_id("source-highlight")
    highlight.wait_for(state="visible")
    assert highlight.inner_text() == expected["quote"]
    assert "Joint AI Lab" in page.get_by_test_id("source-title").inner_text()
    # The highlight sits at the cited offsets of the document text, not merely somewhere.
    offset = page.evaluate("""() => {
        const mark = document.querySelector('[data-testid="source-highlight"]');
        const range = document.createRange();
        range.setStart(document.querySelector('[data-testid="source-text"]'), 0);
        range.setEndBefore(mark);
        return range.toString().length;
    }""")
    assert offset == expected["start"]
    assert answer.get_by_test_id("source-item").count() == len(
        api_answer(live_server, "Who co-leads the lab?")["citations"])
    shot(page, "desktop-light-citation")


def test_follow_up_is_rewritten_and_answered_from_the_right_article(page: Any) -> None:
    ask(page, "Who co-leads the lab?")
    follow_up = ask(page, "What else does the second one do?")
    assert "Tomas Verhoeven" in follow_up.get_by_test_id("rewritten-question").inner_text()
    assert "standards committee" in follow_up.get_by_test_id("answer-text").inner_text()
    follow_up.get_by_test_id("citation-chip").first.click()
    page.get_by_test_id("source-highlight").wait_for(state="visible")
    assert "Joint AI Lab" in page.get_by_test_id("source-title").inner_text()


def test_follow_up_about_the_other_one_shows_a_well_formed_searched_as(page: Any) -> None:
    ask(page, "Where does Lucía Ferrer work?")
    other = ask(page, "And which author is from the other institute?")
    searched = other.get_by_test_id("rewritten-question").inner_text()
    assert searched == "Searched as: Which author is from the Hardanger Marine Institute?"
    assert "Saltvik" in other.get_by_test_id("answer-text").inner_text()
    ask(page, "When will the lab open?")
    own = ask(page, "And who will lead it?")
    searched = own.get_by_test_id("rewritten-question").inner_text()
    assert searched == "Searched as: Who will lead the lab?"
    assert garbled(searched.removeprefix("Searched as: ")) == set()


def test_conversation_survives_a_reload_and_can_be_cleared(page: Any) -> None:
    ask(page, "How much did the tram line cost?")
    page.reload()
    answers = page.locator('[data-testid="answer"]')
    answers.first.wait_for()
    assert "612 million" in answers.first.get_by_test_id("answer-text").inner_text()
    page.get_by_test_id("clear-button").click()
    # A locator wait, not wait_for_function: the page's CSP forbids evaluating strings.
    expect(answers).to_have_count(0)
    page.reload()
    page.get_by_test_id("question-input").wait_for()
    assert page.locator('[data-testid="answer"]').count() == 0


def test_unanswerable_question_looks_different_and_cites_nothing(page: Any) -> None:
    answer = ask(page, "What is the boiling point of mercury?")
    assert answer.get_attribute("data-state") == "abstained"
    assert answer.get_by_test_id("citation-chip").count() == 0
    shot(page, "desktop-light-abstained")


def test_uploaded_article_is_answered_then_gone_after_delete(page: Any, live_server: str,
                                                             tmp_path: Path) -> None:
    article = tmp_path / "quillon-observatory.md"
    article.write_text(
        "# Quillon Observatory Gets a New Telescope\n\n"
        "The Quillon Observatory on Mount Tessary unveiled a 2.4-metre telescope on Friday.\n\n"
        "The observatory is directed by Halima Sorensen, an astronomer who studies comets.\n",
        encoding="utf-8")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7 this is not really a pdf")
    page.get_by_test_id("library-button").click()
    page.get_by_test_id("library-panel").wait_for(state="visible")
    page.get_by_test_id("file-input").set_input_files([str(article), str(broken)])
    result = page.get_by_test_id("upload-result")
    expect(result).to_contain_text("quillon-observatory.md", timeout=60_000)
    message = result.inner_text()
    assert "quillon-observatory.md" in message
    assert "broken.pdf" in message and "PDF" in message
    row = page.locator('[data-testid="doc-row"][data-doc-id="quillon-observatory.md"]')
    row.wait_for()
    shot(page, "desktop-light-library")
    page.get_by_test_id("library-close").click()

    answer = ask(page, "Who directs the Quillon Observatory?")
    assert "Halima Sorensen" in answer.get_by_test_id("answer-text").inner_text()
    answer.get_by_test_id("citation-chip").first.click()
    page.get_by_test_id("source-highlight").wait_for(state="visible")
    assert "Quillon" in page.get_by_test_id("source-title").inner_text()
    page.get_by_test_id("source-panel-close").click()

    page.get_by_test_id("library-button").click()
    row.get_by_test_id("doc-delete").click()
    row.wait_for(state="detached")
    expect(page.get_by_test_id("toast")).to_contain_text("will be deleted")
    # No browser dialog: the delete is sent once the undo time is over.
    expect(page.locator("#library-status")).to_have_text(
        "Deleted “Quillon Observatory Gets a New Telescope”.", timeout=30_000)
    page.get_by_test_id("library-close").click()
    again = ask(page, "Who directs the Quillon Observatory?")
    assert "Halima Sorensen" not in again.get_by_test_id("answer-text").inner_text()
    cited = [c["doc_id"] for c in api_answer(live_server, "Who directs the Quillon Observatory?"
                                              )["citations"]]
    assert "quillon-observatory.md" not in cited


def test_errors_are_shown_and_nothing_is_lost(page: Any) -> None:
    ask(page, "When will the lab open?")
    page.get_by_test_id("question-input").fill("   ")
    page.get_by_test_id("send-button").click()
    page.get_by_test_id("error-message").wait_for(state="visible")
    assert page.locator('[data-testid="answer"]').count() == 1

    # The server goes away: the request fails, the page says so, the conversation stays.
    page.route("**/v1/ask/stream", lambda route: route.abort("connectionrefused"))
    failed = ask(page, "How many researchers will work there?")
    assert failed.get_attribute("data-state") == "error"
    page.locator('[data-testid="answer"] [data-testid="error-message"], '
                 '[data-testid="error-message"]').first.wait_for(state="visible")
    assert page.locator('[data-testid="user-message"]').count() == 2
    assert "September 2026" in page.locator(
        '[data-testid="answer"]').first.get_by_test_id("answer-text").inner_text()
    shot(page, "desktop-light-error")
    # The network failed: trying again can help, and does once the server is back.
    page.unroute("**/v1/ask/stream")
    failed.get_by_test_id("retry-button").click()
    retried = page.locator('[data-testid="answer"]').last
    retried.and_(page.locator('[data-state="done"]')).wait_for(timeout=60_000)
    assert page.locator('[data-testid="user-message"]').count() == 2


def test_the_page_asks_for_the_api_key_in_a_password_field(
        browser: Any, tmp_path: Path, _sample_data_template: Path) -> None:
    data_dir = tmp_path / "data"
    copy_data_folder(_sample_data_template, data_dir)
    with serving(data_dir, env={"CITEQA_API_KEYS": "page-key-7"}) as base:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(20_000)
        browser_dialogs: list[str] = []
        page.on("dialog", lambda dialog: (browser_dialogs.append(dialog.type), dialog.dismiss()))
        try:
            page.goto(base)
            dialog = page.get_by_test_id("key-dialog")
            expect(dialog).to_be_visible()
            assert "needs an API key" in dialog.inner_text()
            key_input = page.get_by_test_id("key-input")
            # Typed characters are hidden, as in any password field.
            assert key_input.get_attribute("type") == "password"
            expect(key_input).to_be_focused()
            key_input.fill("wrong-key")
            page.get_by_test_id("key-submit").click()
            # The next request is refused too: the page asks again, saying so.
            expect(dialog).to_be_visible()
            expect(dialog).to_contain_text("was refused")
            key_input.fill("page-key-7")
            key_input.press("Enter")
            expect(dialog).to_be_hidden()
            answer = ask(page, "Who co-leads the lab?")
            assert answer.get_attribute("data-state") == "done"
            assert "Tomas Verhoeven" in answer.get_by_test_id("answer-text").inner_text()
            assert page.evaluate("localStorage.getItem('citeqa:api-key')") == "page-key-7"
            assert browser_dialogs == []
        finally:
            context.close()
