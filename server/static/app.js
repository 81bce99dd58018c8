// citeqa: the chat page. One dependency-free ES module, no build step.
//
// Sections: constants and state, small DOM helpers, API helpers, conversation storage,
// collections, the conversation (rendering, asking, streaming), citation popover, source
// panel, library (list, delete, upload, add by URL), and start-up wiring.

const STORAGE_PREFIX = "citeqa:conversation:";
const KEY_STORAGE = "citeqa:api-key";
const HISTORY_MESSAGES = 6;        // previous messages sent with a follow-up
const MAX_STORED_TURNS = 60;       // older turns are dropped from localStorage
const FALLBACK_COLLECTION = "articles";
const NEAR_BOTTOM_PX = 140;

const state = {
  collection: null,          // name of the selected collection
  defaultCollection: FALLBACK_COLLECTION,
  collections: [],           // [{name, documents, chunks, model}]
  collectionsKnown: false,   // false when GET /v1/collections failed
  turns: [],                 // persisted turns: [{question, answer, at}]
  started: false,            // start-up has loaded the collection's conversation
  busy: false,               // an answer is streaming
  controller: null,          // AbortController of the streaming request
  requestId: 0,              // bumps to make an in-flight answer stale
  panelToken: 0,             // bumps to cancel a document load
  panelDocId: null,
  panelOpener: null,
  libraryOpen: false,
  libraryToken: 0,
  uploading: false,          // an XHR upload is running
  uploadQueue: [],           // files dropped or chosen meanwhile, uploaded next
  fetchingUrl: false,
  docCache: new Map(),       // "collection\u0000docId" -> document
};

const ui = {};
// Resolves once start-up has chosen the collection and shown its stored conversation.
let markStarted = () => {};
const started = new Promise((resolve) => { markStarted = resolve; });
const answerData = new WeakMap();   // answer <article> -> answer object

// ---------------------------------------------------------------------------
// DOM helpers

function h(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of [].concat(children)) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

const ICONS = {
  answer: ["M4 5h16v11H9l-5 4z", "M8 9.5h8M8 12.5h5"],
  abstain: ["M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z", "M5.6 5.6l12.8 12.8"],
  alert: ["M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z", "M12 7.5v6", "M12 16.5v.01"],
  external: ["M14 4h6v6", "M20 4l-9 9", "M18 14v6H4V6h6"],
  trash: ["M4 7h16", "M10 11v6M14 11v6", "M6 7l1 13h10l1-13", "M9 7V4h6v3"],
  doc: ["M6 3h8l4 4v14H6z", "M14 3v4h4", "M9 12h6M9 16h6"],
  target: ["M12 4a8 8 0 1 0 0 16a8 8 0 1 0 0-16z", "M12 9a3 3 0 1 0 0 6a3 3 0 1 0 0-6z"],
};

function icon(name, className = "icon") {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", className);
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

function shorten(text, max) {
  const clean = String(text ?? "").replace(/\s+/g, " ").trim();
  if (clean.length <= max) return clean;
  const cut = clean.slice(0, max - 1);
  const space = cut.lastIndexOf(" ");
  return `${(space > max * 0.6 ? cut.slice(0, space) : cut).replace(/[\s,.;:]+$/, "")}…`;
}

function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

function formatDate(value) {
  if (!value) return "";
  const text = String(value);
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const parsed = new Date(dateOnly ? `${text}T00:00:00Z` : text);
  if (Number.isNaN(parsed.getTime())) return text;
  return parsed.toLocaleDateString(undefined, {
    year: "numeric", month: "short", day: "numeric", ...(dateOnly ? { timeZone: "UTC" } : {}),
  });
}

/** Only http(s) links are shown; anything else (javascript:, data:...) is dropped. */
function safeUrl(value) {
  if (!value) return null;
  try {
    const url = new URL(String(value), window.location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function announce(message) {
  ui.announcer.textContent = "";
  // A fresh text node in a later frame makes screen readers repeat identical messages.
  requestAnimationFrame(() => { ui.announcer.textContent = message; });
}

// ---------------------------------------------------------------------------
// API helpers

class ApiError extends Error {
  constructor(message, status = 0, code = "") {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

const OFFLINE_MESSAGE =
  "Could not reach the citeqa server. Check that it is running, then try again.";

function apiUrl(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, value);
  }
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}

function documentPath(docId) {
  // One path segment, even when the id holds "/" or spaces: the route accepts a path.
  return `/v1/documents/${encodeURIComponent(docId)}`;
}

function detailText(detail) {
  if (typeof detail === "string") return detail;
  if (detail === null || detail === undefined) return "";
  try {
    return JSON.stringify(detail);
  } catch {
    return String(detail);
  }
}

function statusMessage(status, statusText) {
  if (status === 413) return "That is too large for the server.";
  if (status >= 500) return `The server had a problem (${status}${statusText ? ` ${statusText}` : ""}).`;
  return `The server refused the request (${status}${statusText ? ` ${statusText}` : ""}).`;
}

async function errorFromResponse(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const detail = detailText(body && body.detail);
  return new ApiError(detail || statusMessage(response.status, response.statusText),
    response.status, (body && body.error) || "");
}

// ---------------------------------------------------------------------------
// API keys: a server started with CITEQA_API_KEYS answers 401 until the page sends one.

function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

function withAuth(headers = {}) {
  const key = apiKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : { ...headers };
}

function askForKey() {
  const message = apiKey()
    ? "The API key was refused. Enter a valid key for this citeqa server:"
    : "This citeqa server needs an API key. Enter it to continue:";
  const key = window.prompt(message);
  if (!key || !key.trim()) return false;
  try {
    localStorage.setItem(KEY_STORAGE, key.trim());
  } catch {
    return false;
  }
  return true;
}

// fetch with the API key; on 401, ask for a key once and try again.
async function apiFetch(url, options = {}) {
  const send = () => fetch(url, { ...options, headers: withAuth(options.headers) });
  const response = await send();
  if (response.status === 401 && askForKey()) return send();
  return response;
}

async function requestJSON(url, options = {}) {
  let response;
  try {
    response = await apiFetch(url, {
      ...options, headers: { Accept: "application/json", ...(options.headers || {}) },
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(OFFLINE_MESSAGE);
  }
  if (!response.ok) throw await errorFromResponse(response);
  try {
    return await response.json();
  } catch {
    throw new ApiError("The server sent an answer that could not be read.", response.status);
  }
}

// ---------------------------------------------------------------------------
// Conversation storage (localStorage, one key per collection)

function storageKey(collection) {
  return `${STORAGE_PREFIX}${collection}`;
}

function isTurn(value) {
  return value && typeof value.question === "string" && value.answer
    && typeof value.answer === "object" && typeof value.answer.answer === "string";
}

function loadConversation(collection) {
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

function saveConversation() {
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

function buildHistory() {
  const messages = [];
  for (const turn of state.turns) {
    messages.push({ role: "user", content: turn.question });
    messages.push({ role: "assistant", content: turn.answer.answer });
  }
  return messages.slice(-HISTORY_MESSAGES);
}

// ---------------------------------------------------------------------------
// Collections

async function loadCollections() {
  try {
    const data = await requestJSON("/v1/collections");
    state.collections = Array.isArray(data.collections) ? data.collections : [];
    state.defaultCollection = data.default || (state.collections[0] && state.collections[0].name)
      || FALLBACK_COLLECTION;
    state.collectionsKnown = true;
    showBanner("");
  } catch (error) {
    state.collectionsKnown = false;
    if (!state.collections.length) state.defaultCollection = FALLBACK_COLLECTION;
    showBanner(error instanceof ApiError && error.status
      ? `Could not list the collections: ${error.message}`
      : "Could not reach the citeqa server to list the collections. You can still ask; if it fails, check that the server is running.");
  }
  const names = state.collections.map((c) => c.name);
  if (!state.collection || (state.collectionsKnown && !names.includes(state.collection))) {
    state.collection = state.defaultCollection;
  }
  fillCollectionSelect();
}

function fillCollectionSelect() {
  const names = state.collections.map((c) => c.name);
  if (state.collection && !names.includes(state.collection)) names.unshift(state.collection);
  ui.collectionSelect.replaceChildren(...names.map((name) => h("option", { value: name, text: name })));
  ui.collectionSelect.value = state.collection;
}

function switchCollection(name) {
  abortCurrentAnswer();
  hidePopover();
  state.collection = name;
  if (ui.collectionSelect.value !== name) ui.collectionSelect.value = name;
  state.turns = loadConversation(name);
  closeSourcePanel({ restoreFocus: false });
  renderConversation();
  updateCollectionLabels();
  if (state.libraryOpen) loadLibrary();
}

function updateCollectionLabels() {
  ui.emptyCollection.textContent = `“${state.collection}”`;
  ui.libraryTitle.textContent = state.collection;
}

function showBanner(message) {
  ui.banner.textContent = message;
  ui.banner.hidden = !message;
}

// ---------------------------------------------------------------------------
// Conversation rendering

function isNearBottom() {
  const c = ui.conversation;
  return c.scrollHeight - c.scrollTop - c.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom(force = false) {
  if (force || isNearBottom()) ui.conversation.scrollTop = ui.conversation.scrollHeight;
}

function updateEmptyState() {
  ui.emptyState.hidden = ui.turns.children.length > 0;
}

function renderConversation() {
  hidePopover();
  ui.turns.replaceChildren();
  for (const turn of state.turns) {
    const { answer } = appendTurn(turn.question);
    renderFinalAnswer(answer, turn.answer);
  }
  updateEmptyState();
  scrollToBottom(true);
}

function appendTurn(question) {
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
  ]);
}

function setAnswerHead(root, abstained) {
  const head = root.querySelector(".answer-head");
  if (abstained) {
    head.replaceChildren(
      icon("abstain", "icon answer-icon"),
      h("span", { class: "answer-label abstain-label", text: "Not in the articles" }),
    );
  } else {
    head.replaceChildren(icon("answer", "icon answer-icon"), h("span", { class: "answer-label", text: "Answer" }));
  }
}

function renderRewritten(root, rewritten) {
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
    type: "button", class: "source-item", "data-testid": "source-item", "data-n": c.n,
    "aria-label": `Open source ${c.n}: ${c.title || c.doc_id}`,
  }, [
    h("span", { class: "source-n", text: String(c.n) }),
    h("span", { class: "source-body" }, [
      h("span", { class: "source-name", text: c.title || c.doc_id }),
      h("span", { class: "source-quote", text: `“${shorten(c.quote, 160)}”` }),
    ]),
  ])));
  root.append(h("section", { class: "sources-block", "aria-label": "Sources" }, [
    h("h3", { class: "sources-title", text: "Sources" }),
    h("ol", { class: "sources", "data-testid": "sources" }, items),
  ]));
}

function renderFinalAnswer(root, answer) {
  answerData.set(root, answer);
  const abstained = Boolean(answer.abstained);
  const citations = abstained ? [] : (Array.isArray(answer.citations) ? answer.citations : []);
  root.querySelector(".answer-error")?.remove();
  setAnswerHead(root, abstained);
  root.querySelector(".answer-text").replaceChildren(...answerTextNodes(answer.answer || "", citations));
  renderRewritten(root, answer.rewritten_question);
  renderSources(root, citations);
  root.classList.toggle("is-abstained", abstained);
  root.removeAttribute("aria-busy");
  root.setAttribute("data-state", abstained ? "abstained" : "done");
}

function renderAnswerError(root, message, { question, turn, partial }) {
  root.removeAttribute("aria-busy");
  const textEl = root.querySelector(".answer-text");
  if (partial) {
    textEl.replaceChildren(h("p", { class: "partial", text: partial }));
  } else {
    textEl.replaceChildren();
  }
  root.querySelector(".answer-head").replaceChildren(
    icon("alert", "icon answer-icon"),
    h("span", { class: "answer-label error-label", text: "No answer" }),
  );
  root.querySelector(".answer-error")?.remove();
  root.append(h("div", { class: "answer-error" }, [
    h("p", { class: "error-message", "data-testid": "error-message", role: "alert", text: message }),
    h("button", {
      type: "button", class: "button button-small retry-button",
      onclick: () => retryQuestion(turn, question),
    }, "Try again"),
  ]));
  root.setAttribute("data-state", "error");
}

// ---------------------------------------------------------------------------
// Asking, streaming

function setBusy(busy) {
  state.busy = busy;
  ui.sendButton.disabled = busy;
  ui.sendButton.classList.toggle("is-busy", busy);
  ui.composer.setAttribute("aria-busy", busy ? "true" : "false");
}

function abortCurrentAnswer() {
  state.requestId += 1;
  if (state.controller) state.controller.abort();
  state.controller = null;
  setBusy(false);
}

function showComposerNotice(message, { error = false } = {}) {
  clearComposerNotice();
  ui.composerNoticeSlot.append(h("p", {
    id: "composer-notice", class: `composer-notice${error ? " is-error" : ""}`,
    role: error ? "alert" : "status", "data-testid": error ? "error-message" : null,
  }, [error ? icon("alert", "icon notice-icon") : null, message]));
  ui.question.setAttribute("aria-describedby", "composer-notice composer-hint");
}

function clearComposerNotice() {
  ui.composerNoticeSlot.replaceChildren();
  ui.question.setAttribute("aria-describedby", "composer-hint");
}

function autosizeQuestion() {
  const q = ui.question;
  q.style.height = "auto";
  q.style.height = `${Math.min(q.scrollHeight, 220)}px`;
}

function send() {
  const question = ui.question.value.trim();
  if (!question) {
    showComposerNotice("Type a question first.", { error: true });
    ui.question.focus();
    return;
  }
  if (state.busy) {
    showComposerNotice("Wait for the current answer to finish.");
    return;
  }
  clearComposerNotice();
  ui.question.value = "";
  autosizeQuestion();
  ask(question);
}

function retryQuestion(turn, question) {
  if (state.busy) {
    showComposerNotice("Wait for the current answer to finish.");
    return;
  }
  turn.remove();
  if (ui.question.value.trim() === question) {
    ui.question.value = "";
    autosizeQuestion();
  }
  clearComposerNotice();
  ask(question);
}

async function ask(question) {
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
    if (follow) scrollToBottom(true);
    announce(finalAnswer.abstained
      ? "The articles do not answer that question."
      : `Answer ready, with ${plural((finalAnswer.citations || []).length, "source")}.`);
  } catch (error) {
    if (stale() || (error && error.name === "AbortError")) return;
    state.controller = null;
    setBusy(false);
    const message = error instanceof ApiError ? error.message
      : `Something went wrong while reading the answer (${error && error.message ? error.message : error}).`;
    renderAnswerError(root, message, { question, turn, partial });
    // The question stays: in the conversation above, and back in the composer.
    if (!ui.question.value.trim()) {
      ui.question.value = question;
      autosizeQuestion();
    }
    scrollToBottom(true);
    announce(`No answer: ${message}`);
  }
}

/** Read a text/event-stream body, calling onEvent(name, data) for each event. */
async function readEvents(response, onEvent, signal) {
  if (!response.body || typeof response.body.getReader !== "function") {
    // Very old engines: no streaming, but the events are the same.
    splitEvents(`${(await response.text()).replace(/\r\n?/g, "\n")}\n\n`, onEvent, true);
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let pendingCR = "";
  try {
    for (;;) {
      if (signal && signal.aborted) throw new DOMException("aborted", "AbortError");
      const { value, done } = await reader.read();
      let chunk = pendingCR + (done ? decoder.decode() : decoder.decode(value, { stream: true }));
      pendingCR = "";
      if (!done && chunk.endsWith("\r")) {
        pendingCR = "\r";
        chunk = chunk.slice(0, -1);
      }
      buffer += chunk.replace(/\r\n?/g, "\n");
      buffer = splitEvents(buffer, onEvent, done);
      if (done) break;
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  }
}

/** Dispatch every complete event block of buffer; return what is left. */
function splitEvents(buffer, onEvent, flush) {
  let rest = buffer;
  let index = rest.indexOf("\n\n");
  while (index !== -1) {
    dispatchBlock(rest.slice(0, index), onEvent);
    rest = rest.slice(index + 2);
    index = rest.indexOf("\n\n");
  }
  if (flush && rest.trim()) {
    dispatchBlock(rest, onEvent);
    rest = "";
  }
  return rest;
}

function dispatchBlock(block, onEvent) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return;
  let parsed;
  try {
    parsed = JSON.parse(data.join("\n"));
  } catch {
    if (name === "answer") throw new ApiError("The server sent an answer that could not be read.");
    return;
  }
  onEvent(name, parsed);
}

// ---------------------------------------------------------------------------
// Citation popover

let popoverChip = null;

function citationFor(button) {
  const root = button.closest('[data-testid="answer"]');
  const answer = root && answerData.get(root);
  if (!answer || !Array.isArray(answer.citations)) return null;
  const n = Number(button.dataset.n);
  return answer.citations.find((c) => Number(c.n) === n) || null;
}

function showPopover(chip) {
  const citation = citationFor(chip);
  if (!citation) return;
  popoverChip = chip;
  ui.popover.replaceChildren(
    h("p", { class: "popover-title" }, [
      h("span", { class: "popover-n", text: String(citation.n) }),
      h("span", { text: citation.title || citation.doc_id }),
    ]),
    h("blockquote", { class: "popover-quote", text: `“${shorten(citation.quote, 320)}”` }),
    h("p", { class: "popover-hint", text: "Select to read it in the article" }),
  );
  ui.popover.hidden = false;
  chip.setAttribute("aria-describedby", "citation-popover");
  positionPopover(chip);
}

function positionPopover(chip) {
  const pop = ui.popover;
  const rect = chip.getBoundingClientRect();
  const margin = 8;
  const vw = document.documentElement.clientWidth;
  const vh = document.documentElement.clientHeight;
  pop.style.left = "0px";
  pop.style.top = "0px";
  const { width, height } = pop.getBoundingClientRect();
  let top = rect.bottom + margin;
  let placement = "below";
  if (top + height > vh - margin && rect.top - margin - height > margin) {
    top = rect.top - margin - height;
    placement = "above";
  }
  const left = Math.max(margin, Math.min(rect.left + rect.width / 2 - width / 2, vw - width - margin));
  pop.style.left = `${Math.round(left)}px`;
  pop.style.top = `${Math.round(Math.max(margin, top))}px`;
  pop.dataset.placement = placement;
}

function hidePopover() {
  if (popoverChip) popoverChip.removeAttribute("aria-describedby");
  popoverChip = null;
  if (ui.popover) ui.popover.hidden = true;
}

// ---------------------------------------------------------------------------
// Source panel

function showSourcePanel() {
  ui.sourcePanel.hidden = false;
  ui.layout.classList.add("with-panel");
  document.body.classList.add("source-open");
}

function closeSourcePanel({ restoreFocus = true } = {}) {
  if (ui.sourcePanel.hidden) return;
  state.panelToken += 1;
  state.panelDocId = null;
  ui.sourcePanel.hidden = true;
  ui.layout.classList.remove("with-panel");
  document.body.classList.remove("source-open");
  const opener = state.panelOpener;
  state.panelOpener = null;
  if (restoreFocus && opener && opener.isConnected) opener.focus({ preventScroll: true });
}

async function fetchDocument(collection, docId) {
  const key = `${collection}\u0000${docId}`;
  if (state.docCache.has(key)) return state.docCache.get(key);
  const doc = await requestJSON(apiUrl(documentPath(docId), { collection: state.collectionsKnown ? collection : null }));
  state.docCache.set(key, doc);
  return doc;
}

function openCitation(button) {
  const citation = citationFor(button);
  if (!citation) return;
  hidePopover();
  openSource({ docId: citation.doc_id, citation, title: citation.title, opener: button });
}

async function openSource({ docId, citation = null, title = "", opener = null }) {
  const collection = state.collection;
  state.panelToken += 1;
  const token = state.panelToken;
  state.panelDocId = docId;
  state.panelOpener = opener;
  showSourcePanel();
  ui.sourceTitle.textContent = title || docId;
  ui.sourceMeta.replaceChildren(h("span", { class: "muted", text: "Loading the article…" }));
  ui.sourceCited.hidden = true;
  ui.sourceCited.replaceChildren();
  ui.sourceText.replaceChildren();
  ui.sourceText.setAttribute("aria-busy", "true");
  ui.sourceTitle.focus({ preventScroll: true });

  let doc;
  try {
    doc = await fetchDocument(collection, docId);
  } catch (error) {
    if (token !== state.panelToken) return;
    ui.sourceText.removeAttribute("aria-busy");
    ui.sourceMeta.replaceChildren();
    ui.sourceText.replaceChildren(h("p", { class: "panel-error", role: "alert" }, [
      icon("alert", "icon notice-icon"),
      `Could not open this article: ${error && error.message ? error.message : error}`,
    ]));
    return;
  }
  if (token !== state.panelToken) return;
  renderDocument(doc, citation);
}

function renderDocument(doc, citation) {
  ui.sourceText.removeAttribute("aria-busy");
  ui.sourceTitle.textContent = doc.title || (citation && citation.title) || doc.id;

  const meta = [];
  if (doc.source) meta.push(h("span", { class: "meta-item", text: doc.source }));
  if (doc.date) meta.push(h("time", { class: "meta-item", datetime: doc.date, text: formatDate(doc.date) }));
  const link = safeUrl(doc.url || (citation && citation.url));
  if (link) {
    meta.push(h("a", { class: "meta-item meta-link", href: link, target: "_blank", rel: "noopener noreferrer" }, [
      "Open the original", icon("external", "icon icon-inline"),
    ]));
  }
  if (!meta.length) meta.push(h("span", { class: "meta-item muted", text: doc.id }));
  ui.sourceMeta.replaceChildren(...meta);

  const text = typeof doc.text === "string" ? doc.text : "";
  if (!citation) {
    ui.sourceCited.hidden = true;
    ui.sourceText.replaceChildren(document.createTextNode(text));
    ui.sourceText.scrollTop = 0;
    return;
  }

  const start = Number(citation.start);
  const end = Number(citation.end);
  const valid = Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end > start
    && end <= text.length;
  if (!valid) {
    ui.sourceText.replaceChildren(document.createTextNode(text));
    ui.sourceText.scrollTop = 0;
    showCitedNote(citation, null,
      "The cited passage is outside this article’s current text: the article may have changed since this answer.");
    return;
  }

  // Three nodes, by offsets: text before, the cited span, text after.
  const mark = h("mark", { class: "highlight", "data-testid": "source-highlight", id: "source-highlight", tabindex: "-1" });
  mark.append(document.createTextNode(text.slice(start, end)));
  ui.sourceText.replaceChildren(document.createTextNode(text.slice(0, start)), mark,
    document.createTextNode(text.slice(end)));
  const changed = typeof citation.quote === "string" && citation.quote && text.slice(start, end) !== citation.quote;
  showCitedNote(citation, mark, changed
    ? "The article changed since this answer: the highlight may not match the quote any more."
    : "");
  mark.scrollIntoView({ block: "center" });
  mark.classList.add("flash");
  mark.addEventListener("animationend", () => mark.classList.remove("flash"), { once: true });
}

function showCitedNote(citation, mark, warning) {
  const label = Number.isInteger(citation.n) ? `Passage cited as [${citation.n}]` : "Cited passage";
  const children = [h("span", { class: "cited-label" }, [icon("target", "icon icon-inline"), label])];
  if (mark) {
    children.push(h("button", {
      type: "button", class: "button button-small",
      onclick: () => {
        mark.scrollIntoView({ block: "center", behavior: "smooth" });
        mark.focus({ preventScroll: true });
      },
    }, "Show passage"));
  }
  if (warning) children.push(h("p", { class: "cited-warning", text: warning }));
  ui.sourceCited.replaceChildren(...children);
  ui.sourceCited.hidden = false;
}

// A link to a passage, as the OpenAI-compatible routes put in their annotations and sources:
// #source=<doc id>&collection=<name>&start=<offset>&end=<offset>&n=<citation number>
function linkedPassage() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const docId = params.get("source");
  if (!docId) return null;
  const offset = (name) => (/^\d+$/.test(params.get(name) || "") ? Number(params.get(name)) : null);
  const start = offset("start");
  const end = offset("end");
  const citation = start !== null && end !== null ? { doc_id: docId, start, end, n: offset("n") } : null;
  return { docId, collection: params.get("collection"), citation };
}

function openLinkedPassage() {
  const link = linkedPassage();
  if (!link) return;
  const known = state.collections.some((c) => c.name === link.collection);
  if (link.collection && link.collection !== state.collection && known) switchCollection(link.collection);
  openSource({ docId: link.docId, citation: link.citation });
}

// ---------------------------------------------------------------------------
// Library: list and delete

function openLibrary() {
  state.libraryOpen = true;
  ui.libraryPanel.hidden = false;
  ui.libraryButton.setAttribute("aria-expanded", "true");
  document.body.classList.add("library-open");
  updateCollectionLabels();
  ui.libraryTitle.focus({ preventScroll: true });
  loadLibrary();
}

function closeLibrary({ restoreFocus = true } = {}) {
  if (!state.libraryOpen) return;
  state.libraryOpen = false;
  ui.libraryPanel.hidden = true;
  ui.libraryButton.setAttribute("aria-expanded", "false");
  document.body.classList.remove("library-open");
  if (restoreFocus) ui.libraryButton.focus({ preventScroll: true });
}

function toggleLibrary() {
  if (state.libraryOpen) closeLibrary();
  else openLibrary();
}

async function loadLibrary() {
  const collection = state.collection;
  state.libraryToken += 1;
  const token = state.libraryToken;
  ui.docStatus.textContent = ui.docList.children.length ? "" : "Loading the articles…";
  ui.docStatus.classList.remove("is-error");
  ui.docList.setAttribute("aria-busy", "true");
  try {
    const data = await requestJSON(apiUrl("/v1/documents", { collection: state.collectionsKnown ? collection : null }));
    if (token !== state.libraryToken) return;
    renderDocList(Array.isArray(data.documents) ? data.documents : []);
  } catch (error) {
    if (token !== state.libraryToken) return;
    ui.docList.replaceChildren();
    ui.docCount.textContent = "";
    ui.docStatus.textContent = `Could not load the articles: ${error.message}`;
    ui.docStatus.classList.add("is-error");
  } finally {
    if (token === state.libraryToken) ui.docList.removeAttribute("aria-busy");
  }
}

function renderDocList(documents) {
  ui.docCount.textContent = `(${documents.length})`;
  ui.docStatus.textContent = documents.length
    ? ""
    : "No articles in this collection yet. Add some above.";
  ui.docList.replaceChildren(...documents.map(renderDocRow));
}

function renderDocRow(doc) {
  const title = doc.title || doc.id;
  const meta = [doc.source, formatDate(doc.date), Number.isFinite(doc.chunks) ? plural(doc.chunks, "chunk") : null]
    .filter(Boolean);
  const row = h("li", { class: "doc-row", "data-testid": "doc-row", "data-doc-id": doc.id }, [
    h("button", {
      type: "button", class: "doc-open", title: `Read “${title}”`,
      onclick: (event) => openSource({ docId: doc.id, title, opener: event.currentTarget }),
    }, [
      icon("doc", "icon doc-icon"),
      h("span", { class: "doc-text" }, [
        h("span", { class: "doc-title", text: title }),
        h("span", { class: "doc-meta" }, meta.map((m) => h("span", { text: m }))),
      ]),
    ]),
    h("button", {
      type: "button", class: "icon-button doc-delete", "data-testid": "doc-delete",
      "aria-label": `Delete “${title}”`, title: "Delete",
      onclick: (event) => deleteDocument(doc, event.currentTarget),
    }, icon("trash")),
  ]);
  return row;
}

async function deleteDocument(doc, button) {
  const title = doc.title || doc.id;
  const collection = state.collection;
  const ok = window.confirm(`Delete “${title}” from “${collection}”?\nIt will no longer be used to answer questions.`);
  if (!ok) return;
  button.disabled = true;
  setLibraryStatus(`Deleting “${title}”…`);
  try {
    await requestJSON(apiUrl(documentPath(doc.id), { collection: state.collectionsKnown ? collection : null }),
      { method: "DELETE" });
    state.docCache.clear();
    if (state.panelDocId === doc.id) closeSourcePanel({ restoreFocus: false });
    setLibraryStatus(`Deleted “${title}”.`);
    if (collection === state.collection) await loadLibrary();
    refreshCollectionsQuietly();
  } catch (error) {
    button.disabled = false;
    setLibraryStatus(`Could not delete “${title}”: ${error.message}`, true);
  }
}

function setLibraryStatus(message, error = false) {
  ui.libraryStatus.textContent = message;
  ui.libraryStatus.classList.toggle("is-error", error);
}

async function refreshCollectionsQuietly() {
  try {
    const data = await requestJSON("/v1/collections");
    state.collections = Array.isArray(data.collections) ? data.collections : [];
    state.collectionsKnown = true;
    if (data.default) state.defaultCollection = data.default;
    fillCollectionSelect();
    showBanner("");
  } catch {
    // The list stays as it was.
  }
}

// ---------------------------------------------------------------------------
// Library: upload files, add a web page

function setUploadResult(content, kind = "info") {
  ui.uploadResult.replaceChildren(...[].concat(content));
  ui.uploadResult.dataset.kind = kind;
}

function setUploadBusy(busy) {
  ui.dropZone.classList.toggle("is-busy", busy);
}

function listLine(label, names) {
  return h("p", { class: "result-line" }, [h("strong", { text: `${label}: ` }), names.join(", ")]);
}

function showIngestResult(result) {
  const added = Array.isArray(result.added) ? result.added : [];
  const updated = Array.isArray(result.updated) ? result.updated : [];
  const unchanged = Array.isArray(result.unchanged) ? result.unchanged : [];
  const skipped = Array.isArray(result.skipped) ? result.skipped : [];
  const pruned = Array.isArray(result.pruned) ? result.pruned : [];

  const summary = [];
  if (added.length) summary.push(`${plural(added.length, "article")} added`);
  if (updated.length) summary.push(`${updated.length} updated`);
  if (unchanged.length) summary.push(`${unchanged.length} already in the library`);
  if (skipped.length) summary.push(`${plural(skipped.length, "file")} skipped`);
  const headline = summary.length ? `${summary.join(", ")}.` : "Nothing was added.";
  const lead = summary.length && !skipped.length ? "Done: " : "";

  const nodes = [h("p", { class: "result-headline", text: `${lead}${headline}` })];
  if (added.length) nodes.push(listLine("Added", added));
  if (updated.length) nodes.push(listLine("Updated", updated));
  if (unchanged.length) nodes.push(listLine("Unchanged", unchanged));
  if (pruned.length) nodes.push(listLine("Removed", pruned));
  if (skipped.length) {
    nodes.push(h("p", { class: "result-line" }, h("strong", { text: "Skipped:" })));
    nodes.push(h("ul", { class: "skipped-list" }, skipped.map((s) => h("li", {}, [
      h("span", { class: "file-name", text: (s && (s.name || s.source)) || "file" }),
      ` — ${(s && s.reason) || "could not be read"}`,
    ]))));
  }
  const extra = [];
  if (Number.isFinite(result.chunks) && result.chunks > 0) extra.push(`${plural(result.chunks, "passage")} indexed`);
  if (Number.isFinite(result.seconds)) extra.push(`in ${result.seconds.toFixed(1)} s`);
  if (extra.length) nodes.push(h("p", { class: "result-note", text: `${extra.join(" ")}.` }));

  setUploadResult(nodes, skipped.length ? "warning" : "success");
  state.docCache.clear();
  loadLibrary();
  refreshCollectionsQuietly();
}

function uploadFiles(fileList, collection = state.collection) {
  const files = Array.from(fileList || []);
  if (!files.length) return;
  if (state.uploading) {
    state.uploadQueue.push({ files, collection });
    const queued = state.uploadQueue.reduce((sum, batch) => sum + batch.files.length, 0);
    ui.progressLabel.textContent = `+${plural(queued, "file")} next`;
    ui.fileInput.value = "";
    return;
  }
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);

  state.uploading = true;
  setUploadBusy(true);
  ui.progressRow.hidden = false;
  ui.uploadProgress.value = 0;
  ui.progressLabel.textContent = "0%";
  const what = files.length === 1 ? `“${files[0].name}”` : `${files.length} files`;
  setUploadResult(`Uploading ${what}…`, "pending");

  const finish = (label) => {
    state.uploading = false;
    setUploadBusy(false);
    ui.uploadProgress.value = 100;
    ui.progressLabel.textContent = label;
    const next = state.uploadQueue.shift();
    if (next) setTimeout(() => uploadFiles(next.files, next.collection), 0);
  };

  const xhr = new XMLHttpRequest();
  xhr.open("POST", apiUrl("/v1/documents", { collection: state.collectionsKnown ? collection : null }));
  xhr.setRequestHeader("Accept", "application/json");
  if (apiKey()) xhr.setRequestHeader("Authorization", `Bearer ${apiKey()}`);
  xhr.upload.onprogress = (event) => {
    if (!event.lengthComputable || !event.total) return;
    const percent = Math.round((event.loaded / event.total) * 100);
    ui.uploadProgress.value = percent;
    ui.progressLabel.textContent = `${percent}%`;
  };
  xhr.upload.onload = () => {
    // Sent; the server now reads and indexes the files (an indeterminate bar).
    ui.uploadProgress.removeAttribute("value");
    ui.progressLabel.textContent = "Indexing…";
    setUploadResult(`Uploaded ${what}; reading and indexing…`, "pending");
  };
  xhr.onload = () => {
    if (xhr.status === 401 && askForKey()) {
      finish("Retrying");
      uploadFiles(files, collection);
      return;
    }
    finish(xhr.status >= 200 && xhr.status < 300 ? "Done" : "Failed");
    let body = null;
    try {
      body = JSON.parse(xhr.responseText);
    } catch {
      body = null;
    }
    if (xhr.status >= 200 && xhr.status < 300 && body) {
      showIngestResult(body);
    } else {
      const detail = detailText(body && body.detail);
      setUploadResult([
        h("p", { class: "result-headline", text: "The upload was not added." }),
        h("p", { class: "result-line", text: detail || statusMessage(xhr.status, xhr.statusText) }),
      ], "error");
    }
  };
  xhr.onerror = () => {
    finish("Failed");
    setUploadResult(`The upload could not reach the server. ${OFFLINE_MESSAGE}`, "error");
  };
  xhr.onabort = () => {
    finish("Cancelled");
    setUploadResult("The upload was cancelled.", "error");
  };
  xhr.send(form);
  ui.fileInput.value = "";   // the same file can be chosen again
}

async function addUrl() {
  let value = ui.urlInput.value.trim();
  if (!value) {
    setUploadResult("Type the address of a web page first.", "error");
    ui.urlInput.focus();
    return;
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) value = `https://${value}`;
  let parsed = null;
  try {
    parsed = new URL(value);
  } catch {
    parsed = null;
  }
  if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:") || !parsed.hostname) {
    setUploadResult("That does not look like a web address (https://…).", "error");
    ui.urlInput.focus();
    return;
  }
  if (state.fetchingUrl) return;
  const collection = state.collection;
  state.fetchingUrl = true;
  ui.urlAdd.disabled = true;
  setUploadResult(`Fetching ${value}…`, "pending");
  try {
    const result = await requestJSON(apiUrl("/v1/documents", { collection: state.collectionsKnown ? collection : null }), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ url: value }),
    });
    ui.urlInput.value = "";
    showIngestResult(result);
  } catch (error) {
    setUploadResult([
      h("p", { class: "result-headline", text: "The page was not added." }),
      h("p", { class: "result-line", text: error.message }),
    ], "error");
  } finally {
    state.fetchingUrl = false;
    ui.urlAdd.disabled = false;
  }
}

// ---------------------------------------------------------------------------
// Clear with undo

let toastTimer = 0;

function showToast(message, action) {
  clearTimeout(toastTimer);
  const toast = h("div", { class: "toast", role: "status" }, [h("span", { text: message })]);
  if (action) {
    toast.append(h("button", {
      type: "button", class: "button button-small",
      onclick: () => { ui.toastSlot.replaceChildren(); action.run(); },
    }, action.label));
  }
  ui.toastSlot.replaceChildren(toast);
  toastTimer = setTimeout(() => ui.toastSlot.replaceChildren(), 8000);
}

function clearConversation() {
  abortCurrentAnswer();
  clearComposerNotice();
  const previous = state.turns;
  const collection = state.collection;
  state.turns = [];
  saveConversation();
  renderConversation();
  closeSourcePanel({ restoreFocus: false });
  if (previous.length) {
    showToast("Conversation cleared.", {
      label: "Undo",
      run: () => {
        if (state.collection !== collection || state.turns.length || state.busy) return;
        state.turns = previous;
        saveConversation();
        renderConversation();
      },
    });
  }
  announce("Conversation cleared.");
  ui.question.focus();
}

// ---------------------------------------------------------------------------
// Start-up

function bindElements() {
  const byId = (id) => document.getElementById(id);
  Object.assign(ui, {
    layout: byId("layout"),
    banner: byId("banner"),
    conversation: byId("conversation"),
    emptyState: byId("empty-state"),
    emptyCollection: byId("empty-collection"),
    turns: byId("turns"),
    composer: byId("composer"),
    composerNoticeSlot: byId("composer-notice-slot"),
    question: byId("question"),
    sendButton: byId("send-button"),
    clearButton: byId("clear-button"),
    collectionSelect: byId("collection-select"),
    libraryButton: byId("library-button"),
    libraryPanel: byId("library-panel"),
    libraryClose: byId("library-close"),
    libraryTitle: byId("library-title"),
    libraryStatus: byId("library-status"),
    docStatus: byId("doc-status"),
    docList: byId("doc-list"),
    docCount: byId("doc-count"),
    dropZone: byId("drop-zone"),
    fileInput: byId("file-input"),
    progressRow: byId("progress-row"),
    uploadProgress: byId("upload-progress"),
    progressLabel: byId("progress-label"),
    uploadResult: byId("upload-result"),
    urlForm: byId("url-form"),
    urlInput: byId("url-input"),
    urlAdd: byId("url-add"),
    sourcePanel: byId("source-panel"),
    sourceClose: byId("source-panel-close"),
    sourceTitle: byId("source-title"),
    sourceMeta: byId("source-meta"),
    sourceCited: byId("source-cited"),
    sourceText: byId("source-text"),
    popover: byId("citation-popover"),
    toastSlot: byId("toast-slot"),
    announcer: byId("announcer"),
  });
}

function bindEvents() {
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  ui.question.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    send();
  });
  ui.question.addEventListener("input", () => {
    autosizeQuestion();
    if (ui.question.value.trim()) clearComposerNotice();
  });

  ui.clearButton.addEventListener("click", clearConversation);
  ui.collectionSelect.addEventListener("change", () => switchCollection(ui.collectionSelect.value));
  ui.libraryButton.addEventListener("click", toggleLibrary);
  ui.libraryClose.addEventListener("click", () => closeLibrary());
  ui.sourceClose.addEventListener("click", () => closeSourcePanel());

  // Chips and sources, by delegation (answers are re-rendered freely).
  ui.turns.addEventListener("click", (event) => {
    const button = event.target.closest(".chip, .source-item");
    if (button && ui.turns.contains(button)) openCitation(button);
  });
  ui.turns.addEventListener("mouseover", (event) => {
    const chip = event.target.closest(".chip");
    if (chip && chip !== popoverChip) showPopover(chip);
  });
  ui.turns.addEventListener("mouseout", (event) => {
    const chip = event.target.closest(".chip");
    if (chip && !(event.relatedTarget && chip.contains(event.relatedTarget)) && document.activeElement !== chip) {
      hidePopover();
    }
  });
  ui.turns.addEventListener("focusin", (event) => {
    const chip = event.target.closest(".chip");
    if (chip) showPopover(chip);
  });
  ui.turns.addEventListener("focusout", (event) => {
    if (event.target.closest(".chip")) hidePopover();
  });
  ui.conversation.addEventListener("scroll", () => { if (popoverChip) hidePopover(); }, { passive: true });
  window.addEventListener("resize", () => { if (popoverChip) hidePopover(); });

  // Library: file input, drag and drop, URL form.
  ui.fileInput.addEventListener("change", () => uploadFiles(ui.fileInput.files));
  ui.urlForm.addEventListener("submit", (event) => {
    event.preventDefault();
    addUrl();
  });
  // The whole library drawer accepts dropped files; the drop zone lights up.
  let dragDepth = 0;
  const hasFiles = (event) => Boolean(event.dataTransfer)
    && Array.from(event.dataTransfer.types || []).includes("Files");
  ui.libraryPanel.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    ui.dropZone.classList.add("is-dragging");
  });
  ui.libraryPanel.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  ui.libraryPanel.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) ui.dropZone.classList.remove("is-dragging");
  });
  ui.libraryPanel.addEventListener("drop", (event) => {
    event.preventDefault();
    dragDepth = 0;
    ui.dropZone.classList.remove("is-dragging");
    if (event.dataTransfer && event.dataTransfer.files && event.dataTransfer.files.length) {
      uploadFiles(event.dataTransfer.files);
    }
  });
  // A file dropped anywhere else must not make the browser leave the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (popoverChip) {
      hidePopover();
      return;
    }
    if (state.libraryOpen) {
      event.preventDefault();
      closeLibrary();
    } else if (!ui.sourcePanel.hidden) {
      event.preventDefault();
      closeSourcePanel();
    }
  });

  window.addEventListener("hashchange", openLinkedPassage);

  // Another tab changed this collection's conversation.
  window.addEventListener("storage", (event) => {
    if (event.key !== storageKey(state.collection) || state.busy) return;
    state.turns = loadConversation(state.collection);
    renderConversation();
  });
}

async function start() {
  bindElements();
  bindEvents();
  autosizeQuestion();
  try {
    await loadCollections();
    switchCollection(state.collection);
  } finally {
    // Even if start-up failed, a waiting question goes ahead (and shows its own error).
    state.started = true;
    markStarted();
  }
  openLinkedPassage();
  document.documentElement.dataset.ready = "true";
}

start();
