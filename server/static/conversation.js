// The conversation: kept in localStorage per collection, rendered as turns of a question and
// its answer (citation chips, sources, copy), with edit-and-resend and starter questions.

import { requestJSON, apiUrl } from "./api.js";
import { announce, h, icon, shorten } from "./dom.js";
import { ask, checkQuestion, retryQuestion, showComposerNotice, submitQuestion } from "./ask.js";
import { hidePopover } from "./source.js";
import {
  HISTORY_MESSAGES, MAX_STORED_TURNS, NEAR_BOTTOM_PX, STORAGE_PREFIX, answerData, state, ui,
} from "./state.js";

// ---------------------------------------------------------------------------
// Storage (localStorage, one key per collection)

export function storageKey(collection) {
  return `${STORAGE_PREFIX}${collection}`;
}

function isTurn(value) {
  return value && typeof value.question === "string" && value.answer
    && typeof value.answer === "object" && typeof value.answer.answer === "string";
}

export function loadConversation(collection) {
  try {
    const raw = window.localStorage.getItem(storageKey(collection));
    if (!raw) return [];
    const parsed = JSON.parse(raw);
    const turns = Array.isArray(parsed) ? parsed : (parsed && parsed.turns) || [];
    return turns.filter(isTurn);
  } catch {
    return [];
  }
}

export function saveConversation() {
  const key = storageKey(state.collection);
  let turns = state.turns.slice(-MAX_STORED_TURNS);
  try {
    if (!turns.length) {
      window.localStorage.removeItem(key);
      return;
    }
  } catch {
    return;
  }
  // Full answer objects first; when the quota is hit, drop the retrieved passages (the
  // citations keep their quotes), then the oldest turns.
  let slim = false;
  for (;;) {
    const payload = slim
      ? turns.map((t) => ({ ...t, answer: { ...t.answer, passages: [] } }))
      : turns;
    try {
      window.localStorage.setItem(key, JSON.stringify(payload));
      return;
    } catch {
      if (!slim) slim = true;
      else if (turns.length > 1) turns = turns.slice(Math.ceil(turns.length / 2));
      else return;
    }
  }
}

export function buildHistory() {
  const messages = [];
  for (const turn of state.turns) {
    messages.push({ role: "user", content: turn.question });
    messages.push({ role: "assistant", content: turn.answer.answer });
  }
  return messages.slice(-HISTORY_MESSAGES);
}


// ---------------------------------------------------------------------------
// Rendering

export function isNearBottom() {
  const c = ui.conversation;
  return c.scrollHeight - c.scrollTop - c.clientHeight < NEAR_BOTTOM_PX;
}

export function scrollToBottom(force = false) {
  if (force || isNearBottom()) ui.conversation.scrollTop = ui.conversation.scrollHeight;
}

function updateEmptyState() {
  ui.emptyState.hidden = ui.turns.children.length > 0;
}

export function renderConversation() {
  hidePopover();
  ui.turns.replaceChildren();
  state.turns.forEach((turn, index) => {
    const { turn: element, answer } = appendTurn(turn.question);
    renderFinalAnswer(answer, turn.answer);
    allowEdit(element, index);
  });
  updateEmptyState();
  scrollToBottom(true);
}

export function appendTurn(question) {
  const user = h("div", { class: "user-message", "data-testid": "user-message" }, [
    h("p", { class: "user-text", text: question }),
  ]);
  const answer = createAnswerShell();
  const turn = h("div", { class: "turn" }, [user, answer]);
  ui.turns.append(turn);
  updateEmptyState();
  return { turn, user, answer };
}

function createAnswerShell() {
  return h("article", {
    class: "answer", "data-testid": "answer", "data-state": "streaming", "aria-busy": "true",
    "aria-label": "Answer",
  }, [
    h("div", { class: "answer-head" }, [
      icon("answer", "icon answer-icon"),
      h("span", { class: "answer-label", text: "Answer" }),
    ]),
    h("div", { class: "answer-text", "data-testid": "answer-text" }, [
      h("p", { class: "thinking" }, [
        h("span", { class: "dots", "aria-hidden": "true" }, [h("span"), h("span"), h("span")]),
        " Searching the articles…",
      ]),
    ]),
    h("div", { class: "answer-actions" }),
  ]);
}

// What an abstained answer's head says, by its reason (Answer.abstain_reason).
const ABSTAIN_LABELS = {
  empty_collection: "Nothing to search",
  no_matching_documents: "No article matches",
};

function setAnswerHead(root, abstained, reason) {
  const head = root.querySelector(".answer-head");
  if (abstained) {
    head.replaceChildren(
      icon("abstain", "icon answer-icon"),
      h("span", { class: "answer-label abstain-label", text: ABSTAIN_LABELS[reason] || "Not in the articles" }),
    );
  } else {
    head.replaceChildren(icon("answer", "icon answer-icon"), h("span", { class: "answer-label", text: "Answer" }));
  }
}

/** What the reader should know about what was searched (Answer.notes). */
function renderNotes(root, notes) {
  root.querySelector(".answer-notes")?.remove();
  if (!notes.length) return;
  root.querySelector(".answer-text").after(h("ul", { class: "answer-notes", "data-testid": "answer-notes" },
    notes.map((note) => h("li", { text: note }))));
}

export function renderRewritten(root, rewritten) {
  let line = root.querySelector(".rewritten");
  if (!rewritten) {
    if (line) line.remove();
    return;
  }
  if (!line) {
    line = h("p", { class: "rewritten", "data-testid": "rewritten-question" });
    root.querySelector(".answer-text").after(line);
  }
  line.replaceChildren(h("span", { class: "rewritten-label", text: "Searched as: " }), h("q", { text: rewritten }));
}

/** The answer text as paragraphs, each [n] marker a citation chip (when n is cited). */
function answerTextNodes(text, citations) {
  const byN = new Map(citations.map((c) => [Number(c.n), c]));
  const paragraphs = String(text).split(/\n\s*\n/).filter((p) => p.trim());
  if (!paragraphs.length) return [h("p", { class: "muted", text: "(The answer is empty.)" })];
  return paragraphs.map((paragraph) => {
    const p = h("p");
    appendWithChips(p, paragraph.trim(), byN);
    return p;
  });
}

function appendWithChips(parent, text, byN) {
  const marker = /\[(\d+(?:\s*[,;]\s*\d+)*)\]/g;
  let last = 0;
  for (const match of text.matchAll(marker)) {
    const numbers = match[1].split(/[,;]/).map((s) => Number(s.trim()));
    if (!numbers.some((n) => byN.has(n))) continue;
    parent.append(text.slice(last, match.index));
    for (const n of numbers) parent.append(byN.has(n) ? makeChip(byN.get(n)) : `[${n}]`);
    last = match.index + match[0].length;
  }
  parent.append(text.slice(last));
}

function makeChip(citation) {
  return h("button", {
    type: "button", class: "chip", "data-testid": "citation-chip", "data-n": citation.n,
    "aria-label": `Source ${citation.n}: ${citation.title || citation.doc_id}`,
  }, [
    // The brackets stay in the text (copying the answer keeps its [n] markers) but are not shown.
    h("span", { class: "chip-bracket", text: "[" }),
    String(citation.n),
    h("span", { class: "chip-bracket", text: "]" }),
  ]);
}

function renderSources(root, citations) {
  const old = root.querySelector(".sources-block");
  if (old) old.remove();
  if (!citations.length) return;
  const items = citations.map((c) => h("li", {}, h("button", {
    // No aria-label: the visible number, title and quote are the button's name.
    type: "button", class: "source-item", "data-testid": "source-item", "data-n": c.n,
  }, [
    h("span", { class: "source-n", text: String(c.n) }),
    h("span", { class: "source-body" }, [
      h("span", { class: "source-name", text: c.title || c.doc_id }),
      h("span", { class: "source-quote", text: `“${shorten(c.quote, 160)}”` }),
    ]),
  ])));
  // A plain block under a heading: a labelled section per answer would make many landmarks
  // with one name.
  root.querySelector(".answer-actions").before(h("div", { class: "sources-block" }, [
    h("h3", { class: "sources-title", text: "Sources" }),
    h("ol", { class: "sources", "data-testid": "sources" }, items),
  ]));
}

export function renderFinalAnswer(root, answer) {
  answerData.set(root, answer);
  const abstained = Boolean(answer.abstained);
  const citations = abstained ? [] : (Array.isArray(answer.citations) ? answer.citations : []);
  root.querySelector(".answer-error")?.remove();
  setAnswerHead(root, abstained, answer.abstain_reason);
  root.querySelector(".answer-text").replaceChildren(...answerTextNodes(answer.answer || "", citations));
  renderRewritten(root, answer.rewritten_question);
  renderNotes(root, Array.isArray(answer.notes) ? answer.notes : []);
  renderActions(root, answer);
  renderSources(root, citations);
  root.classList.toggle("is-abstained", abstained);
  root.removeAttribute("aria-busy");
  root.setAttribute("data-state", abstained ? "abstained" : "done");
}

export function renderAnswerError(root, message, { question, turn, partial, retry = true, stopped = false }) {
  root.removeAttribute("aria-busy");
  const textEl = root.querySelector(".answer-text");
  if (partial) {
    textEl.replaceChildren(h("p", { class: "partial", text: partial }));
  } else {
    textEl.replaceChildren();
  }
  root.querySelector(".answer-head").replaceChildren(
    icon(stopped ? "abstain" : "alert", "icon answer-icon"),
    h("span", { class: "answer-label error-label", text: stopped ? "Stopped" : "No answer" }),
  );
  root.querySelector(".answer-error")?.remove();
  root.querySelector(".answer-actions")?.remove();
  // Trying again is offered only where it can help: the network or the server failed, or
  // the answer was stopped. A refused question (4xx) would be refused again.
  root.append(h("div", { class: `answer-error${stopped ? " is-stopped" : ""}` }, [
    h("p", {
      class: "error-message", "data-testid": stopped ? "stopped-message" : "error-message",
      role: stopped ? null : "alert", text: message,
    }),
    retry ? h("button", {
      type: "button", class: "button button-small retry-button", "data-testid": "retry-button",
      onclick: () => retryQuestion(turn, question),
    }, stopped ? "Ask again" : "Try again") : null,
  ]));
  root.setAttribute("data-state", stopped ? "stopped" : "error");
}


// ---------------------------------------------------------------------------
// Answer actions: copy

function renderActions(root, answer) {
  let bar = root.querySelector(".answer-actions");
  if (!bar) {
    bar = h("div", { class: "answer-actions" });
    root.append(bar);
  }
  bar.replaceChildren(h("button", {
    type: "button", class: "button button-quiet button-small copy-button", "data-testid": "copy-answer",
    onclick: (event) => copyAnswer(answer, event.currentTarget),
  }, [icon("copy", "icon icon-inline"), h("span", { class: "copy-label", text: "Copy" })]));
}

async function copyAnswer(answer, button) {
  const text = answer.answer || "";
  let copied = false;
  try {
    await navigator.clipboard.writeText(text);
    copied = true;
  } catch {
    copied = copyWithSelection(text);
  }
  const label = button.querySelector(".copy-label");
  button.replaceChildren(icon(copied ? "check" : "copy", "icon icon-inline"), label);
  label.textContent = copied ? "Copied" : "Copy failed";
  announce(copied ? "Answer copied." : "Could not copy the answer.");
  setTimeout(() => {
    if (!button.isConnected) return;
    button.replaceChildren(icon("copy", "icon icon-inline"), label);
    label.textContent = "Copy";
  }, 2000);
}

// The clipboard API needs a secure context; a page served on a LAN address over http is not.
function copyWithSelection(text) {
  const area = h("textarea", { class: "copy-buffer", readonly: true, "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

// ---------------------------------------------------------------------------
// Edit and resend

/** A kept turn's question can be edited; sending it replaces that turn and those after it. */
export function allowEdit(turnElement, index) {
  turnElement.dataset.turnIndex = String(index);
  const user = turnElement.querySelector(".user-message");
  if (user.querySelector(".edit-button")) return;
  user.append(h("button", {
    type: "button", class: "edit-button", "data-testid": "edit-question",
    title: "Edit this question and ask it again",
    onclick: () => startEdit(turnElement),
  }, [icon("edit", "icon icon-inline"), h("span", { text: "Edit" })]));
}

function startEdit(turnElement) {
  if (state.busy) {
    showComposerNotice("Wait for the current answer to finish, or stop it.");
    return;
  }
  const index = Number(turnElement.dataset.turnIndex);
  const turn = state.turns[index];
  if (!turn) return;
  const user = turnElement.querySelector(".user-message");
  const shown = Array.from(user.children);
  const fieldId = `edit-${index}`;
  const field = h("textarea", {
    id: fieldId, class: "edit-input", "data-testid": "edit-input", rows: "3",
  });
  field.value = turn.question;
  const error = h("p", { class: "edit-error", role: "alert", "data-testid": "edit-error" });
  const cancel = () => {
    form.remove();
    for (const child of shown) child.hidden = false;
    user.classList.remove("is-editing");
    user.querySelector(".edit-button")?.focus();
  };
  const form = h("form", {
    class: "edit-form", novalidate: true,
    onsubmit: (event) => {
      event.preventDefault();
      const question = field.value.trim();
      const problem = checkQuestion(question);
      if (problem) {
        error.textContent = problem;
        field.focus();
        return;
      }
      if (state.busy) {
        error.textContent = "Wait for the current answer to finish, or stop it.";
        return;
      }
      resendFrom(index, question);
    },
  }, [
    h("label", { for: fieldId, class: "sr-only", text: "Edit your question" }),
    field,
    error,
    h("div", { class: "edit-buttons" }, [
      h("button", { type: "button", class: "button button-quiet button-small", onclick: cancel }, "Cancel"),
      h("button", { type: "submit", class: "button button-small", "data-testid": "edit-send" }, "Send"),
    ]),
  ]);
  field.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      cancel();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  for (const child of shown) child.hidden = true;
  user.classList.add("is-editing");
  user.append(form);
  field.focus();
  field.setSelectionRange(field.value.length, field.value.length);
}

function resendFrom(index, question) {
  state.turns = state.turns.slice(0, index);
  saveConversation();
  renderConversation();
  ask(question);
}

// ---------------------------------------------------------------------------
// Starter questions, from the collection's most recent articles

const STARTERS = 3;

/** Questions about the newest articles of the collection, shown on the empty page. */
export async function loadStarters() {
  const collection = state.collection;
  let documents = [];
  try {
    const data = await requestJSON(apiUrl("/v1/documents", { collection: state.collectionsKnown ? collection : null }));
    documents = Array.isArray(data.documents) ? data.documents : [];
  } catch {
    documents = [];
  }
  if (collection !== state.collection) return;
  const newest = documents.filter((doc) => doc.title)
    .sort((a, b) => String(b.date || "").localeCompare(String(a.date || "")))
    .slice(0, STARTERS);
  ui.starters.replaceChildren(...newest.map((doc) => h("li", {}, h("button", {
    type: "button", class: "starter", "data-testid": "starter-question",
    onclick: (event) => submitQuestion(event.currentTarget.textContent),
  }, `What does the article “${shorten(doc.title, 90)}” report?`))));
  ui.startersBlock.hidden = !newest.length;
}
