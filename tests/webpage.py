"""Helpers for the browser tests: open the chat page, ask, check a text, take screenshots, run
axe-core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DESKTOP

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# Installed by `make test` (npm, into node_modules/, ignored by git).
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
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
FINISHED = ('[data-state="done"], [data-state="abstained"], [data-state="error"], '
            '[data-state="stopped"]')


def open_page(browser: Any, url: str, *, viewport: dict[str, int] | None = None,
              **context_options: Any) -> Any:
    """A fresh context (empty localStorage) and page at `url`, ready for questions."""
    context = browser.new_context(viewport=viewport or DESKTOP, **context_options)
    context.add_init_script(RECORD_STATES)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(url)
    page.locator('html[data-ready="true"]').wait_for(state="attached")
    return page


def ask(page: Any, question: str) -> Any:
    """Type a question, press Enter, and wait for its answer to finish."""
    before = page.locator('[data-testid="answer"]').count()
    box = page.get_by_test_id("question-input")
    box.fill(question)
    box.press("Enter")
    answer = page.locator('[data-testid="answer"]').nth(before)
    answer.and_(page.locator(FINISHED)).wait_for(timeout=60_000)
    return answer


# A chatbot-style reply about the sample tram article: a greeting (with an emoji, two UTF-16
# units but one character to the server), a supported figure, a changed length (the article
# says 14.2 km) and a plan no article mentions, on two lines.
CHECK_TEXT = ("Hi there \N{WAVING HAND SIGN}, happy to help!\n"
              "Brackenford's tram line cost \N{POUND SIGN}612 million to build. "
              "The line runs for 19.5 kilometres between Fenwick Park and the Riverside Hospital. "
              "A second tram line to the airport will open in 2029.")
CHECK_FINISHED = ("done", "stopped", "error")


def open_check_mode(page: Any) -> None:
    """Switch the page to "Check a text" from its header."""
    page.get_by_test_id("mode-button").click()
    page.get_by_test_id("verify-input").wait_for(state="visible")


def check_text(page: Any, text: str) -> Any:
    """Paste `text` into "Check a text", press Check, and wait for this check (not an earlier
    one still on screen) to finish."""
    result = page.get_by_test_id("verify-result")
    number = int(result.get_attribute("data-check") or 0) + 1
    page.get_by_test_id("verify-input").fill(text)
    page.get_by_test_id("verify-button").click()
    page.locator(", ".join(f'[data-testid="verify-result"][data-check="{number}"]'
                           f'[data-state="{state}"]' for state in CHECK_FINISHED)
                 ).wait_for(timeout=60_000)
    return result


def api_answer(base: str, question: str, **body: Any) -> dict[str, Any]:
    """The answer the API gives, to compare the page with."""
    response = httpx.post(f"{base}/v1/ask", json={"question": question, **body}, timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def shot(page: Any, name: str) -> None:
    """Save a screenshot to test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Finish CSS transitions first: a panel caught mid-fade would look see-through.
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now: rule, impact and where."""
    if not AXE.exists():
        pytest.fail(f"no axe-core at {AXE}: `make test` installs it "
                    "(npm install axe-core into node_modules/)")
    # Evaluated through the DevTools protocol: the page's CSP forbids inline scripts.
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => ({
            id: v.id, impact: v.impact,
            nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
    }""")
    return violations


def uncovered(page: Any, test_id: str) -> bool:
    """Whether `test_id` is on top across its width: at its left edge, middle and right edge
    (halfway down), the element hit belongs to it."""
    # Panels slide in: wait for every running animation to end before looking.
    page.evaluate("""Promise.all(document.getAnimations()
        .filter((a) => a.effect && a.effect.getTiming().iterations !== Infinity)
        .map((a) => a.finished))""")
    on_top: bool = page.evaluate("""(id) => {
        const el = document.querySelector(`[data-testid="${id}"]`);
        const box = el.getBoundingClientRect();
        if (!box.width || !box.height) return false;
        const y = box.top + box.height / 2;
        return [box.left + 4, box.left + box.width / 2, box.right - 4].every((x) => {
            const hit = document.elementFromPoint(x, y);
            return Boolean(hit && el.contains(hit));
        });
    }""", test_id)
    return on_top
