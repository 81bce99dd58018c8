"""The chat page in a real headless Chromium, against a real `citeqa serve` on loopback.

Screenshots of the main states go to test-artifacts/screenshots/ (`make test` reports them).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from qa.followup import garbled
from tests.conftest import DESKTOP, LAB_DOC, serving

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
# Records every state an answer passes through, so a test can see that it streamed.
RECORD_STATES = """
window.__answerStates = [];
new MutationObserver(records => {
  for (const r of records) {
    if (r.type === 'attributes' && r.attributeName === 'data-state') {
      window.__answerStates.push(r.target.getAttribute('data-state'));
    }
    for (const node of r.addedNodes || []) {
      if (node.nodeType === 1) {
        for (const el of [node, ...node.querySelectorAll('[data-state]')]) {
          if (el.getAttribute && el.getAttribute('data-state')) {
            window.__answerStates.push(el.getAttribute('data-state'));
          }
        }
      }
    }
  }
}).observe(document, {subtree: true, childList: true, attributes: true,
                      attributeFilter: ['data-state']});
"""


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh page (empty localStorage) at the chat page, desktop size."""
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(RECORD_STATES)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(live_server)
    yield page
    context.close()


def _ask(page: Any, question: str) -> Any:
    """Type a question, press Enter, and wait for its answer to finish."""
    before = page.locator('[data-testid="answer"]').count()
    box = page.get_by_test_id("question-input")
    box.fill(question)
    box.press("Enter")
    answer = page.locator('[data-testid="answer"]').nth(before)
    answer.and_(page.locator('[data-state="done"], [data-state="abstained"], '
                             '[data-state="error"]')).wait_for(timeout=60_000)
    return answer


def _api_answer(base: str, question: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{base}/v1/ask", json={"question": question, **body}, timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Finish CSS transitions first: a panel caught mid-fade would look see-through.
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")


def test_answer_streams_and_a_citation_opens_its_exact_span(page: Any, live_server: str) -> None:
    answer = _ask(page, "Who co-leads the lab?")
    assert answer.get_attribute("data-state") == "done"
    assert "streaming" in page.evaluate("window.__answerStates")
    text = answer.get_by_test_id("answer-text").inner_text()
    assert "Miriam Okafor" in text and "Tomas Verhoeven" in text
    expected = _api_answer(live_server, "Who co-leads the lab?")["citations"][0]

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
        _api_answer(live_server, "Who co-leads the lab?")["citations"])
    _shot(page, "desktop-light-citation")


def test_follow_up_is_rewritten_and_answered_from_the_right_article(page: Any) -> None:
    _ask(page, "Who co-leads the lab?")
    follow_up = _ask(page, "What else does the second one do?")
    assert "Tomas Verhoeven" in follow_up.get_by_test_id("rewritten-question").inner_text()
    assert "standards committee" in follow_up.get_by_test_id("answer-text").inner_text()
    follow_up.get_by_test_id("citation-chip").first.click()
    page.get_by_test_id("source-highlight").wait_for(state="visible")
    assert "Joint AI Lab" in page.get_by_test_id("source-title").inner_text()


def test_follow_up_about_the_other_one_shows_a_well_formed_searched_as(page: Any) -> None:
    _ask(page, "Where does Lucía Ferrer work?")
    other = _ask(page, "And which author is from the other institute?")
    searched = other.get_by_test_id("rewritten-question").inner_text()
    assert searched == "Searched as: Which author is from the Hardanger Marine Institute?"
    assert "Saltvik" in other.get_by_test_id("answer-text").inner_text()
    _ask(page, "When will the lab open?")
    own = _ask(page, "And who will lead it?")
    searched = own.get_by_test_id("rewritten-question").inner_text()
    assert searched == "Searched as: Who will lead the lab?"
    assert garbled(searched.removeprefix("Searched as: ")) == set()


def test_conversation_survives_a_reload_and_can_be_cleared(page: Any) -> None:
    _ask(page, "How much did the tram line cost?")
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
    answer = _ask(page, "What is the boiling point of mercury?")
    assert answer.get_attribute("data-state") == "abstained"
    assert answer.get_by_test_id("citation-chip").count() == 0
    _shot(page, "desktop-light-abstained")


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
    _shot(page, "desktop-light-library")
    page.get_by_test_id("library-close").click()

    answer = _ask(page, "Who directs the Quillon Observatory?")
    assert "Halima Sorensen" in answer.get_by_test_id("answer-text").inner_text()
    answer.get_by_test_id("citation-chip").first.click()
    page.get_by_test_id("source-highlight").wait_for(state="visible")
    assert "Quillon" in page.get_by_test_id("source-title").inner_text()
    page.get_by_test_id("source-panel-close").click()

    page.get_by_test_id("library-button").click()
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_test_id("doc-delete").click()
    row.wait_for(state="detached")
    page.get_by_test_id("library-close").click()
    again = _ask(page, "Who directs the Quillon Observatory?")
    assert "Halima Sorensen" not in again.get_by_test_id("answer-text").inner_text()
    cited = [c["doc_id"] for c in _api_answer(live_server, "Who directs the Quillon Observatory?"
                                              )["citations"]]
    assert "quillon-observatory.md" not in cited


def test_errors_are_shown_and_nothing_is_lost(page: Any) -> None:
    _ask(page, "When will the lab open?")
    page.get_by_test_id("question-input").fill("   ")
    page.get_by_test_id("send-button").click()
    page.get_by_test_id("error-message").wait_for(state="visible")
    assert page.locator('[data-testid="answer"]').count() == 1

    # The server goes away: the request fails, the page says so, the conversation stays.
    page.route("**/v1/ask/stream", lambda route: route.abort("connectionrefused"))
    failed = _ask(page, "How many researchers will work there?")
    assert failed.get_attribute("data-state") == "error"
    page.locator('[data-testid="answer"] [data-testid="error-message"], '
                 '[data-testid="error-message"]').first.wait_for(state="visible")
    assert page.locator('[data-testid="user-message"]').count() == 2
    assert "September 2026" in page.locator(
        '[data-testid="answer"]').first.get_by_test_id("answer-text").inner_text()
    _shot(page, "desktop-light-error")
    page.unroute("**/v1/ask/stream")

    too_long = _ask(page, "Why? " * 500)
    assert too_long.get_attribute("data-state") == "error"
    assert "limit" in page.locator('[data-testid="error-message"]').last.inner_text()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_screenshots_of_the_main_states(browser: Any, live_server: str, size: str, scheme: str
                                        ) -> None:
    context = browser.new_context(viewport=DESKTOP if size == "desktop" else PHONE,
                                  color_scheme=scheme)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(live_server)
        page.get_by_test_id("question-input").wait_for()
        _shot(page, f"{size}-{scheme}-empty")
        answer = _ask(page, "Who co-leads the lab?")
        _ask(page, "What is the boiling point of mercury?")
        _shot(page, f"{size}-{scheme}-conversation")
        answer.get_by_test_id("citation-chip").first.click()
        page.get_by_test_id("source-highlight").wait_for(state="visible")
        _shot(page, f"{size}-{scheme}-source")
        page.keyboard.press("Escape")
        page.get_by_test_id("library-button").click()
        page.get_by_test_id("library-panel").wait_for(state="visible")
        page.locator('[data-testid="doc-row"]').first.wait_for()
        _shot(page, f"{size}-{scheme}-library")
        rows = page.locator('[data-testid="doc-row"]').count()
        listed = json.loads(httpx.get(f"{live_server}/v1/documents").text)["documents"]
        assert rows == len(listed)
        assert page.locator(f'[data-doc-id="{LAB_DOC}"]').count() == 1
    finally:
        context.close()


def test_the_page_asks_for_the_api_key_when_the_server_needs_one(
        browser: Any, tmp_path: Path, _sample_data_template: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(_sample_data_template, data_dir)
    with serving(data_dir, env={"CITEQA_API_KEYS": "page-key-7"}) as base:
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.set_default_timeout(20_000)
        prompts: list[str] = []

        def answer_prompt(dialog: Any) -> None:
            prompts.append(dialog.message)
            dialog.accept("page-key-7")

        page.on("dialog", answer_prompt)
        try:
            page.goto(base)
            answer = _ask(page, "Who co-leads the lab?")
            assert answer.get_attribute("data-state") == "done"
            assert "Tomas Verhoeven" in answer.get_by_test_id("answer-text").inner_text()
            assert prompts and "API key" in prompts[0]
            assert page.evaluate("localStorage.getItem('citeqa:api-key')") == "page-key-7"
        finally:
            context.close()
