// Asking: the composer (length counter, send, stop), and streaming an answer into the page.

import { ApiError, OFFLINE_MESSAGE, apiFetch, detailText, errorFromResponse, readEvents, worthRetrying } from "./api.js";
import { refreshCollectionsQuietly } from "./collections.js";
import {
  allowEdit, appendTurn, buildHistory, isNearBottom, renderAnswerError, renderFinalAnswer,
  renderRewritten, saveConversation, scrollToBottom,
} from "./conversation.js";
import { announce, h, icon, plural } from "./dom.js";
import { started, state, ui } from "./state.js";

function setBusy(busy) {
  state.busy = busy;
  // While an answer streams, the send button gives way to Stop.
  ui.sendButton.hidden = busy;
  ui.stopButton.hidden = !busy;
  ui.composer.setAttribute("aria-busy", busy ? "true" : "false");
  const focused = document.activeElement;
  if (busy && focused === ui.sendButton) ui.stopButton.focus();
  if (!busy && focused === ui.stopButton) ui.question.focus();
}

export function abortCurrentAnswer() {
  state.requestId += 1;
  state.stopping = false;
  if (state.controller) state.controller.abort();
  state.controller = null;
  setBusy(false);
}

/** Stop the streaming answer: the request is aborted (the server stops when the client leaves)
 * and what had arrived stays on screen, marked as stopped. */
export function stopAnswer() {
  if (!state.busy || !state.controller) return;
  state.stopping = true;
  state.controller.abort();
}

export function showComposerNotice(message, { error = false } = {}) {
  clearComposerNotice();
  ui.composerNoticeSlot.append(h("p", {
    id: "composer-notice", class: `composer-notice${error ? " is-error" : ""}`,
    role: error ? "alert" : "status", "data-testid": error ? "error-message" : null,
  }, [error ? icon("alert", "icon notice-icon") : null, message]));
  describeQuestion();
}

export function clearComposerNotice() {
  ui.composerNoticeSlot.replaceChildren();
  describeQuestion();
}

function describeQuestion() {
  const ids = [];
  if (ui.composerNoticeSlot.children.length) ids.push("composer-notice");
  if (!ui.charCount.hidden) ids.push("char-count");
  ids.push("composer-hint");
  ui.question.setAttribute("aria-describedby", ids.join(" "));
}

export function autosizeQuestion() {
  const q = ui.question;
  q.style.height = "auto";
  q.style.height = `${Math.min(q.scrollHeight, 220)}px`;
}

// ---------------------------------------------------------------------------
// Question length: counted as the server counts it (runs of whitespace are one space; code
// points, not UTF-16 units), shown near the limit, and a question over it is not sent.

const COUNTER_FROM = 0.8;   // of the limit: the counter appears from here on

function questionLength(text) {
  return [...text.split(/\s+/).filter(Boolean).join(" ")].length;
}

/** Why this question cannot be sent, or "" when it can. */
export function checkQuestion(question) {
  if (!question.trim()) return "Type a question first.";
  const over = questionLength(question) - state.maxQuestionChars;
  if (over > 0) {
    return `The question is ${plural(over, "character")} over the limit of `
      + `${state.maxQuestionChars.toLocaleString()}. Shorten it to send it.`;
  }
  return "";
}

export function updateCounter() {
  const length = questionLength(ui.question.value);
  const limit = state.maxQuestionChars;
  const near = length >= Math.floor(limit * COUNTER_FROM);
  const over = length > limit;
  const wasOver = ui.charCount.classList.contains("is-over");
  ui.charCount.hidden = !near;
  ui.charCount.classList.toggle("is-over", over);
  ui.charCount.textContent = over
    ? `${length.toLocaleString()} / ${limit.toLocaleString()}: ${plural(length - limit, "character")} too many`
    : `${length.toLocaleString()} / ${limit.toLocaleString()}`;
  if (over) ui.question.setAttribute("aria-invalid", "true");
  else ui.question.removeAttribute("aria-invalid");
  ui.sendButton.setAttribute("aria-disabled", over ? "true" : "false");
  if (over !== wasOver) {
    announce(over ? `The question is over the limit of ${limit.toLocaleString()} characters.`
      : "The question is within the limit again.");
  }
  describeQuestion();
}

// ---------------------------------------------------------------------------
// Sending

export function send() {
  submitQuestion(ui.question.value, { fromComposer: true });
}

/** Ask a question typed in the composer or picked from the starters, if it may be sent. */
export function submitQuestion(text, { fromComposer = false } = {}) {
  const question = String(text || "").trim();
  const problem = checkQuestion(question);
  if (problem) {
    showComposerNotice(problem, { error: true });
    ui.question.focus();
    return;
  }
  if (state.busy) {
    showComposerNotice("Wait for the current answer to finish, or stop it.");
    return;
  }
  clearComposerNotice();
  if (fromComposer) {
    ui.question.value = "";
    autosizeQuestion();
    updateCounter();
  }
  ask(question);
}

export function retryQuestion(turn, question) {
  if (state.busy) {
    showComposerNotice("Wait for the current answer to finish, or stop it.");
    return;
  }
  turn.remove();
  if (ui.question.value.trim() === question) {
    ui.question.value = "";
    autosizeQuestion();
    updateCounter();
  }
  clearComposerNotice();
  ask(question);
}

export async function ask(question) {
  if (!state.started) {
    // The composer works at once, but start-up then loads the collection's stored
    // conversation and renders it afresh, which would wipe (and abort) an answer begun
    // before: on a slow server the question vanished and its answer never ended. So a
    // question sent that early waits for start-up.
    setBusy(true);
    showComposerNotice("Connecting to the citeqa server…");
    await started;
    clearComposerNotice();
  }
  const collection = state.collection;
  const history = buildHistory();
  const { turn, answer: root } = appendTurn(question);
  scrollToBottom(true);

  state.requestId += 1;
  const requestId = state.requestId;
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  const stale = () => requestId !== state.requestId;

  const textEl = root.querySelector(".answer-text");
  let partial = "";
  let streamNode = null;
  let finalAnswer = null;

  try {
    let response;
    try {
      response = await apiFetch("/v1/ask/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({
          question,
          collection: state.collectionsKnown ? collection : null,
          history,
        }),
        signal: controller.signal,
      });
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw new ApiError(OFFLINE_MESSAGE);
    }
    if (!response.ok) throw await errorFromResponse(response);

    await readEvents(response, (name, data) => {
      if (stale()) return;
      if (name === "question") {
        renderRewritten(root, data && data.rewritten_question);
      } else if (name === "delta") {
        const piece = data && typeof data.text === "string" ? data.text : "";
        if (!piece) return;
        const follow = isNearBottom();
        if (!streamNode) {
          streamNode = h("p", { class: "streaming-text" });
          textEl.replaceChildren(streamNode);
        }
        partial += piece;
        streamNode.append(piece);
        if (follow) scrollToBottom(true);
      } else if (name === "answer") {
        if (!data || typeof data.answer !== "string") {
          throw new ApiError("The server sent an answer that could not be read.");
        }
        finalAnswer = data;
      } else if (name === "error") {
        throw new ApiError(detailText(data && (data.detail || data.message)) || "The answer failed on the server.");
      }
    }, controller.signal);

    if (stale()) return;
    if (!finalAnswer) {
      throw new ApiError("The answer stopped before it was complete. Try again.");
    }
    state.controller = null;
    setBusy(false);
    if (!state.collectionsKnown) refreshCollectionsQuietly();
    state.turns.push({ question, answer: finalAnswer, at: new Date().toISOString() });
    saveConversation();
    const follow = isNearBottom();
    renderFinalAnswer(root, finalAnswer);
    allowEdit(turn, state.turns.length - 1);
    if (follow) scrollToBottom(true);
    announce(finalAnswer.abstained
      ? "The articles do not answer that question."
      : `Answer ready, with ${plural((finalAnswer.citations || []).length, "source")}.`);
  } catch (error) {
    if (stale()) return;
    const stopped = state.stopping;
    if (!stopped && error && error.name === "AbortError") return;
    state.stopping = false;
    state.controller = null;
    setBusy(false);
    // The question stays: in the conversation above, and back in the composer.
    if (!ui.question.value.trim()) {
      ui.question.value = question;
      autosizeQuestion();
      updateCounter();
    }
    if (stopped) {
      renderAnswerError(root, partial ? "You stopped this answer; it is incomplete."
        : "You stopped this answer before it began.", { question, turn, partial, stopped: true });
      announce("Answer stopped.");
      return;
    }
    const message = error instanceof ApiError ? error.message
      : `Something went wrong while reading the answer (${error && error.message ? error.message : error}).`;
    renderAnswerError(root, message, { question, turn, partial, retry: worthRetrying(error) });
    scrollToBottom(true);
    announce(`No answer: ${message}`);
  }
}

