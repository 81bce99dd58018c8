"""The page's "Check a text" mode, in a real Chromium against a real `citeqa serve` over the
sample articles: sentences marked by verdict as they stream in, evidence opened in the article
viewer at its exact span, errors that keep the text, and Stop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import copy_data_folder, serving
from tests.webpage import CHECK_TEXT, check_text, open_check_mode, open_page

pytestmark = pytest.mark.browser

EXPECTED = ["not_checkable", "supported", "contradicted", "unsupported"]


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh page (empty localStorage) in "Check a text" mode, desktop size."""
    page = open_page(browser, live_server)
    open_check_mode(page)
    yield page
    page.context.close()


def _api_verdicts(base: str, text: str) -> dict[str, Any]:
    response = httpx.post(f"{base}/v1/verify", json={"text": text}, timeout=60)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def _shown_text(page: Any) -> str:
    """The checked text as the page shows it, without the verdict marks and their words."""
    shown: str = page.evaluate("""() => {
        const copy = document.querySelector('[data-testid="verify-marked"]').cloneNode(true);
        copy.querySelectorAll('.verdict-mark, .sr-only, .verify-detail').forEach((n) => n.remove());
        return copy.textContent;
    }""")
    return shown


def test_each_sentence_is_marked_by_its_verdict_and_evidence_opens_at_its_span(
        page: Any, live_server: str) -> None:
    result = check_text(page, CHECK_TEXT)
    assert result.get_attribute("data-state") == "done"
    expected = _api_verdicts(live_server, CHECK_TEXT)
    assert [s["verdict"] for s in expected["sentences"]] == EXPECTED

    sentences = page.get_by_test_id("verify-sentence")
    expect(sentences).to_have_count(len(EXPECTED))
    assert [s.get_attribute("data-verdict") for s in sentences.all()] == EXPECTED
    # Not colour alone: each sentence carries its verdict in words, and an icon.
    words = ["Not checkable:", "Supported:", "Contradicted:", "Unsupported:"]
    for sentence, word, wanted in zip(sentences.all(), words, expected["sentences"], strict=True):
        assert sentence.locator(".sr-only").inner_text() == word
        assert sentence.locator(".verdict-mark svg").count() == 1
        assert sentence.inner_text().endswith(wanted["text"])
    # The text is shown as it was pasted (line break and emoji kept), each sentence in place.
    assert _shown_text(page) == CHECK_TEXT
    for verdict in EXPECTED:
        expect(page.get_by_test_id(f"verify-count-{verdict}")).to_contain_text("1")
    expect(page.get_by_test_id("verify-progress")).to_contain_text("4 sentences checked")

    # The contradicted sentence: its reason, and the passage that says otherwise.
    contradicted = expected["sentences"][2]
    sentences.nth(2).click()
    detail = page.get_by_test_id("verify-detail")
    expect(detail).to_be_visible()
    expect(sentences.nth(2)).to_have_attribute("aria-expanded", "true")
    expect(detail.get_by_test_id("verify-detail-verdict")).to_have_text("Contradicted")
    expect(detail.get_by_test_id("verify-reason")).to_have_text(contradicted["reason"])
    assert "14.2 kilometres" in contradicted["reason"]
    evidence = detail.get_by_test_id("verify-evidence")
    expect(evidence).to_have_count(len(contradicted["evidence"]))
    citation = contradicted["evidence"][0]
    expect(evidence.first).to_contain_text(citation["title"])
    evidence.first.click()
    expect(page.get_by_test_id("source-panel")).to_be_visible()
    highlight = page.get_by_test_id("source-highlight")
    expect(highlight).to_have_text(citation["quote"])
    assert "14.2 kilometres" in citation["quote"]
    expect(page.get_by_test_id("source-title")).to_contain_text("Brackenford")
    expect(page.locator("#source-cited")).to_contain_text("What the article says, for sentence 3")
    # The highlight sits at the evidence's offsets in the article, not merely somewhere.
    offset = page.evaluate("""() => {
        const range = document.createRange();
        range.setStart(document.querySelector('[data-testid="source-text"]'), 0);
        range.setEndBefore(document.querySelector('[data-testid="source-highlight"]'));
        return range.toString().length;
    }""")
    assert offset == citation["start"]
    # Escape closes the article and goes back to the evidence; again, closes the detail.
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("source-panel")).to_be_hidden()
    expect(evidence.first).to_be_focused()
    page.keyboard.press("Escape")
    expect(detail).to_have_count(0)
    expect(sentences.nth(2)).to_be_focused()


def test_sentences_are_reached_and_opened_with_the_keyboard(page: Any) -> None:
    check_text(page, CHECK_TEXT)
    sentences = page.get_by_test_id("verify-sentence")
    # One tab stop into the text; the arrow keys move between its sentences.
    page.get_by_test_id("verify-button").focus()
    page.keyboard.press("Tab")
    expect(sentences.first).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(sentences.nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    detail = page.get_by_test_id("verify-detail")
    expect(detail.get_by_test_id("verify-detail-verdict")).to_have_text("Supported")
    cost = detail.get_by_test_id("verify-evidence").filter(has_text="£612 million")
    expect(cost).to_have_count(1)
    page.keyboard.press("Enter")
    expect(detail).to_have_count(0)
    page.keyboard.press("End")
    page.keyboard.press(" ")
    expect(page.get_by_test_id("verify-detail-verdict")).to_have_text("Unsupported")
    # Back to the chat and to the check again: the text and the result are still there.
    page.get_by_test_id("mode-button").click()
    expect(page.get_by_test_id("question-input")).to_be_focused()
    expect(page.get_by_test_id("checker")).to_be_hidden()
    page.get_by_test_id("mode-button").click()
    expect(page.get_by_test_id("verify-input")).to_have_value(CHECK_TEXT)
    expect(sentences).to_have_count(len(EXPECTED))


def test_refused_texts_say_why_and_keep_the_text(page: Any, live_server: str) -> None:
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url)
            if "/v1/verify" in request.url else None)
    box = page.get_by_test_id("verify-input")
    limit = httpx.get(f"{live_server}/v1/limits").json()["max_verify_chars"]
    expect(page.get_by_test_id("verify-count")).to_have_text(f"0 / {limit:,} characters")

    # Empty: said at once, nothing sent.
    box.fill("   \n ")
    page.get_by_test_id("verify-button").click()
    expect(page.get_by_test_id("verify-error")).to_contain_text("Paste or type a text")
    expect(box).to_be_focused()
    assert not sent

    # More sentences than the server checks: its refusal names the limit and the setting.
    many = "The tram was late again. " * 5001
    box.fill(many)
    expect(page.get_by_test_id("verify-count")).to_have_text(
        f"{len(many):,} / {limit:,} characters")
    page.get_by_test_id("verify-button").click()
    error = page.get_by_test_id("verify-error")
    expect(error).to_contain_text("5,001 sentences")
    expect(error).to_contain_text("CITEQA_MAX_VERIFY_SENTENCES")
    assert box.input_value() == many
    expect(page.get_by_test_id("verify-result")).to_be_hidden()

    # A collection gone since the page listed it: the server's 404, the text kept.
    httpx.post(f"{live_server}/v1/collections", json={"name": "short-lived"}).raise_for_status()
    try:
        page.reload()
        page.locator('html[data-ready="true"]').wait_for(state="attached")
        expect(page.get_by_test_id("checker")).to_be_visible()
        page.get_by_test_id("collection-select").select_option("short-lived")
    finally:
        httpx.delete(f"{live_server}/v1/collections/short-lived").raise_for_status()
    box.fill(CHECK_TEXT)
    page.get_by_test_id("verify-button").click()
    expect(error).to_contain_text("short-lived")
    assert box.input_value() == CHECK_TEXT

    # The server gone (the request cannot be sent): said so, the text kept.
    page.route("**/v1/verify/stream", lambda route: route.abort())
    page.get_by_test_id("collection-select").select_option("articles")
    page.get_by_test_id("verify-button").click()
    expect(error).to_contain_text("Could not reach the citeqa server")
    assert box.input_value() == CHECK_TEXT


def test_a_text_over_the_servers_limit_is_counted_and_not_sent(
        browser: Any, tmp_path: Path, _sample_data_template: Path) -> None:
    data_dir = tmp_path / "data"
    copy_data_folder(_sample_data_template, data_dir)
    with serving(data_dir, env={"CITEQA_MAX_VERIFY_CHARS": "250"}) as base:
        page = open_page(browser, base)
        sent: list[str] = []
        page.on("request", lambda request: sent.append(request.url)
                if "/v1/verify" in request.url else None)
        try:
            open_check_mode(page)
            counter = page.get_by_test_id("verify-count")
            box = page.get_by_test_id("verify-input")
            too_long = CHECK_TEXT + " The trams were built in Darnley by Kestrel Rail."
            # Counted as the server counts (len here): the emoji is one character, though two
            # UTF-16 units in the browser.
            over = len(too_long) - 250
            box.fill(too_long)
            expect(counter).to_have_text(f"{over + 250} / 250 characters: {over} characters "
                                         "too many")
            expect(box).to_have_attribute("aria-invalid", "true")
            page.get_by_test_id("verify-button").click()
            expect(page.get_by_test_id("verify-error")).to_contain_text(
                f"{over} characters over this server’s limit of 250 (CITEQA_MAX_VERIFY_CHARS)")
            assert not sent and box.input_value() == too_long
            # Within the limit, it is checked.
            assert check_text(page, CHECK_TEXT).get_attribute("data-state") == "done"
            expect(counter).to_have_text(f"{len(CHECK_TEXT)} / 250 characters")
        finally:
            page.context.close()


def test_stop_ends_a_long_check_and_keeps_what_was_checked(page: Any) -> None:
    facts = ["Brackenford's tram line cost £612 million to build.",
             "The line runs for 19.5 kilometres between Fenwick Park and the Riverside Hospital.",
             "A second tram line to the airport will open in 2029.",
             "Is the tram free for children?"]
    # Long enough (tens of seconds to check) that Stop always comes before the end.
    sentences = 3_000
    long_text = " ".join(facts[i % len(facts)] for i in range(sentences))
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    box = page.get_by_test_id("verify-input")
    box.fill(long_text)
    page.get_by_test_id("verify-button").click()
    stop = page.get_by_test_id("verify-stop")
    expect(stop).to_be_visible()
    # Verdicts show while the rest is still being checked.
    expect(page.get_by_test_id("verify-sentence").first).to_be_visible()
    expect(page.get_by_test_id("verify-result")).to_have_attribute("data-state", "checking")
    stop.click()
    result = page.get_by_test_id("verify-result")
    expect(result).to_have_attribute("data-state", "stopped")
    expect(page.get_by_test_id("verify-progress")).to_contain_text("You stopped the check")
    expect(stop).to_be_hidden()
    expect(page.get_by_test_id("verify-button")).to_be_visible()
    assert any(url.endswith("/v1/verify/stream") for url in failed)
    shown = page.get_by_test_id("verify-sentence").count()
    assert 0 < shown < sentences
    assert box.input_value() == long_text
    # The rest is shown, labelled unchecked, and the counts add up to what was shown.
    expect(page.get_by_test_id("verify-pending")).to_be_visible()
    expect(page.locator(".unchecked-mark")).to_contain_text("Not checked from here on")
    counted = sum(int(page.get_by_test_id(f"verify-count-{v}").locator(".count-value")
                      .inner_text()) for v in EXPECTED)
    assert counted == shown
    # And a new check runs to the end.
    assert check_text(page, CHECK_TEXT).get_attribute("data-state") == "done"
    expect(page.get_by_test_id("verify-sentence")).to_have_count(len(EXPECTED))
