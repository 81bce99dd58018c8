// "Check a text": the page's second mode. Any text (a chatbot's reply, a draft) is sent to
// POST /v1/verify/stream and its sentences are marked by verdict as they arrive; the view is
// in verify-view.js.

import { ApiError, OFFLINE_MESSAGE, apiFetch, detailText, errorFromResponse, readEvents } from "./api.js";
import { announce, h, icon, plural } from "./dom.js";
import { closeSourcePanel } from "./source.js";
import { state, ui } from "./state.js";
import {
  closeDetail, codePoints, createMarkedText, emptyCounts, moveFocus, renderSummary, toggleDetail,
} from "./verify-view.js";

const CHECK_HASH = "#check";

const run = {
  id: 0,               // bumps to make a running check stale
  controller: null,
  stopping: false,
  marked: null,        // the current rendering (createMarkedText)
  counts: emptyCounts(),
  shown: 0,            // results shown so far: numbers each one (data-check), for tests and tools
};

// ---------------------------------------------------------------------------
// Switching modes

export function inCheckMode() {
  return state.mode === "check";
}

/** Show the chat or the checker; the header button leads to the other one. */
export function setMode(mode, { focus = true } = {}) {
  state.mode = mode === "check" ? "check" : "chat";
  const check = inCheckMode();
  ui.chat.hidden = check;
  ui.checker.hidden = !check;
  ui.clearButton.hidden = check;
  ui.modeLabel.textContent = check ? "Back to chat" : "Check a text";
  ui.modeButton.title = check ? "Back to the chat" : "Check a text against the articles";
  ui.modeButton.replaceChildren(icon(check ? "answer" : "checklist"), ui.modeLabel);
  ui.skipLink.setAttribute("href", check ? "#verify-input" : "#question");
  ui.skipLink.textContent = check ? "Skip to the text to check" : "Skip to the question box";
  closeSourcePanel({ restoreFocus: false });
  const url = `${window.location.pathname}${window.location.search}${check ? CHECK_HASH : ""}`;
  if (!window.location.hash.startsWith("#source=")) history.replaceState(null, "", url);
  if (focus) (check ? ui.verifyInput : ui.question).focus();
  if (check) updateVerifyCounter();
}

export function toggleMode() {
  setMode(inCheckMode() ? "chat" : "check");
}

export function modeFromUrl() {
  return window.location.hash === CHECK_HASH ? "check" : "chat";
}

export function updateCheckerCollection() {
  ui.checkerCollection.textContent = `“${state.collection}”`;
}

/** The collection changed: a running check is stopped and its result, about another
 * collection, goes; the text stays. */
export function resetCheck() {
  abortCheck();
  closeDetail();
  ui.verifyResult.hidden = true;
  ui.verifyMarked.replaceChildren();
  clearVerifyNotice();
  updateCheckerCollection();
}

// ---------------------------------------------------------------------------
// The text box: counter and notices

export function updateVerifyCounter() {
  const length = codePoints(ui.verifyInput.value);
  const limit = state.maxVerifyChars;
  const over = limit ? length > limit : false;
  ui.verifyCount.classList.toggle("is-over", over);
  ui.verifyCount.textContent = limit
    ? `${length.toLocaleString()} / ${limit.toLocaleString()} characters${over ? `: ${plural(length - limit, "character")} too many` : ""}`
    : plural(length, "character");
  if (over) ui.verifyInput.setAttribute("aria-invalid", "true");
  else ui.verifyInput.removeAttribute("aria-invalid");
}

function showVerifyNotice(message, { error = false } = {}) {
  ui.verifyNotice.replaceChildren(h("p", {
    class: `composer-notice${error ? " is-error" : ""}`, role: error ? "alert" : "status",
    "data-testid": error ? "verify-error" : "verify-notice",
  }, [error ? icon("alert", "icon notice-icon") : null, message]));
}

export function clearVerifyNotice() {
  ui.verifyNotice.replaceChildren();
}

/** Why this text cannot be checked, or "" when it can (the server checks again). */
function textProblem(text) {
  if (!text.trim()) return "Paste or type a text to check first.";
  const limit = state.maxVerifyChars;
  const length = codePoints(text);
  if (limit && length > limit) {
    return `The text is ${plural(length - limit, "character")} over this server’s limit of `
      + `${limit.toLocaleString()} (CITEQA_MAX_VERIFY_CHARS). Shorten it to check it.`;
  }
  return "";
}

// ---------------------------------------------------------------------------
// Checking

function setChecking(busy) {
  ui.verifyButton.hidden = busy;
  ui.verifyStop.hidden = !busy;
  ui.verifyResult.setAttribute("aria-busy", busy ? "true" : "false");
  const focused = document.activeElement;
  if (busy && focused === ui.verifyButton) ui.verifyStop.focus();
  if (!busy && focused === ui.verifyStop) ui.verifyButton.focus();
}

function abortCheck() {
  run.id += 1;
  run.stopping = false;
  if (run.controller) run.controller.abort();
  run.controller = null;
  setChecking(false);
}

/** Stop the check: the request is aborted (the server stops when the client leaves) and the
 * sentences already checked stay. */
export function stopCheck() {
  if (!run.controller) return;
  run.stopping = true;
  run.controller.abort();
}

function finish(status, { asOf = "", collection = state.collection, problem = "" } = {}) {
  run.controller = null;
  run.stopping = false;
  setChecking(false);
  ui.verifyResult.dataset.state = status;
  const total = run.marked ? run.marked.sentences.length : 0;
  renderSummary({ counts: run.counts, total, status, collection, asOf, problem });
  if (status !== "done" && run.marked) run.marked.markRest();
}

export async function runCheck() {
  const text = ui.verifyInput.value;
  const problem = textProblem(text);
  if (problem) {
    showVerifyNotice(problem, { error: true });
    ui.verifyInput.focus();
    return;
  }
  abortCheck();
  clearVerifyNotice();
  closeDetail();
  const id = run.id;
  const stale = () => id !== run.id;
  const controller = new AbortController();
  run.controller = controller;
  run.counts = emptyCounts();
  run.marked = null;
  const collection = state.collection;
  setChecking(true);

  let response;
  try {
    try {
      response = await apiFetch("/v1/verify/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ text, collection: state.collectionsKnown ? collection : null }),
        signal: controller.signal,
      });
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw new ApiError(OFFLINE_MESSAGE);
    }
    if (!response.ok) throw await errorFromResponse(response);
  } catch (error) {
    // Refused before anything was checked: the last result (if any) stays as it was.
    if (stale()) return;
    const stopped = run.stopping;
    run.controller = null;
    run.stopping = false;
    setChecking(false);
    if (stopped) {
      showVerifyNotice("You stopped the check before it began.");
    } else if (!(error && error.name === "AbortError")) {
      reportFailure(error);
    }
    return;
  }

  if (stale()) return;
  run.marked = createMarkedText(text);
  ui.verifyResult.hidden = false;
  run.shown += 1;
  ui.verifyResult.dataset.check = String(run.shown);
  ui.verifyResult.dataset.state = "checking";
  renderSummary({ counts: run.counts, total: 0, status: "checking", collection });
  ui.verifyResult.scrollIntoView({ block: "start" });
  announce("Checking the text…");

  // Sentences can come faster than the screen repaints: they are marked once per frame.
  let queue = [];
  let frame = 0;
  const flush = () => {
    frame = 0;
    if (stale() || !queue.length) return;
    for (const sentence of queue) {
      run.marked.add(sentence);
      if (sentence.verdict in run.counts) run.counts[sentence.verdict] += 1;
    }
    queue = [];
    renderSummary({ counts: run.counts, total: run.marked.sentences.length, status: "checking", collection });
  };

  let done = null;
  try {
    await readEvents(response, (name, data) => {
      if (stale()) return;
      if (name === "sentence" && data && typeof data.text === "string") {
        queue.push(data);
        if (!frame) frame = requestAnimationFrame(flush);
      } else if (name === "done") {
        done = data || {};
      } else if (name === "error") {
        throw new ApiError(detailText(data && data.detail) || "The check failed on the server.");
      }
    }, controller.signal);
    if (stale()) return;
    if (!done) throw new ApiError("The check stopped before it was complete. Try again.");
  } catch (error) {
    if (stale()) return;
    if (frame) cancelAnimationFrame(frame);
    flush();
    const stopped = run.stopping;
    if (!stopped && error && error.name === "AbortError") return;
    if (stopped) {
      finish("stopped", { collection });
      announce(`Check stopped after ${plural(run.marked.sentences.length, "sentence")}.`);
      return;
    }
    finish("error", { collection, problem: failureMessage(error) });
    reportFailure(error);
    return;
  }
  if (frame) cancelAnimationFrame(frame);
  flush();
  if (done.counts && typeof done.counts === "object") run.counts = { ...emptyCounts(), ...done.counts };
  finish("done", { asOf: done.as_of || "", collection: done.collection || collection });
  const c = run.counts;
  announce(`Checked ${plural(run.marked.sentences.length, "sentence")}: ${c.supported} supported, `
    + `${c.contradicted} contradicted, ${c.unsupported} unsupported, ${c.not_checkable} not checkable.`);
}

function failureMessage(error) {
  return error instanceof ApiError ? error.message
    : `Something went wrong while checking (${error && error.message ? error.message : error}).`;
}

function reportFailure(error) {
  const message = failureMessage(error);
  showVerifyNotice(`Could not check the text: ${message}`, { error: true });
  announce(`Could not check the text: ${message}`);
}

// ---------------------------------------------------------------------------
// Events

function sentenceData(node) {
  return run.marked ? run.marked.sentences[Number(node.dataset.index)] : null;
}

function openSentence(node) {
  const sentence = sentenceData(node);
  if (!sentence) return;
  for (const other of ui.verifyMarked.querySelectorAll('.sentence[tabindex="0"]')) other.setAttribute("tabindex", "-1");
  node.setAttribute("tabindex", "0");
  toggleDetail(node, sentence);
}

export function bindVerifyEvents() {
  ui.modeButton.addEventListener("click", toggleMode);
  ui.verifyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    runCheck();
  });
  ui.verifyInput.addEventListener("keydown", (event) => {
    // Enter makes new lines in a pasted text; Ctrl+Enter (or Cmd+Enter) checks it.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.isComposing) {
      event.preventDefault();
      runCheck();
    }
  });
  ui.verifyInput.addEventListener("input", () => {
    updateVerifyCounter();
    if (ui.verifyInput.value.trim() && ui.verifyNotice.querySelector('[data-testid="verify-error"]')) clearVerifyNotice();
  });
  ui.verifyStop.addEventListener("click", stopCheck);
  ui.verifyMarked.addEventListener("click", (event) => {
    const node = event.target.closest(".sentence");
    if (node && ui.verifyMarked.contains(node)) openSentence(node);
  });
  ui.verifyMarked.addEventListener("keydown", (event) => {
    const node = event.target.closest(".sentence");
    if (!node || event.target !== node) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      openSentence(node);
    } else if (moveFocus(node, event.key)) {
      event.preventDefault();
    }
  });
}

/** Escape closes an open sentence detail; true when it did. */
export function closeCheckDetail() {
  return inCheckMode() && closeDetail({ restoreFocus: true });
}
