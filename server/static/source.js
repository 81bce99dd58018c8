// Reading sources: the popover a citation chip shows, and the panel that opens an article
// with the cited span highlighted by its offsets.

import { requestJSON, apiUrl, documentPath } from "./api.js";
import { formatDate, h, icon, safeUrl, shorten } from "./dom.js";
import { closeLibrary, openLibrary } from "./library.js";
import { answerData, state, ui } from "./state.js";

// ---------------------------------------------------------------------------
// Citation popover

export let popoverChip = null;

export function citationFor(button) {
  const root = button.closest('[data-testid="answer"]');
  const answer = root && answerData.get(root);
  if (!answer || !Array.isArray(answer.citations)) return null;
  const n = Number(button.dataset.n);
  return answer.citations.find((c) => Number(c.n) === n) || null;
}

export function showPopover(chip) {
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

export function hidePopover() {
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

export function closeSourcePanel({ restoreFocus = true } = {}) {
  if (ui.sourcePanel.hidden) return;
  state.panelToken += 1;
  state.panelDocId = null;
  ui.sourcePanel.hidden = true;
  ui.layout.classList.remove("with-panel");
  document.body.classList.remove("source-open");
  const opener = state.panelOpener;
  const fromLibrary = state.panelFromLibrary;
  state.panelOpener = null;
  state.panelFromLibrary = false;
  if (!restoreFocus) return;
  // An article read from the library closes back to it, at the row it was opened from.
  if (fromLibrary) openLibrary({ focusDocId: docIdOf(opener) });
  else if (opener && opener.isConnected) opener.focus({ preventScroll: true });
}

async function fetchDocument(collection, docId) {
  const key = `${collection}\u0000${docId}`;
  if (state.docCache.has(key)) return state.docCache.get(key);
  const doc = await requestJSON(apiUrl(documentPath(docId), { collection: state.collectionsKnown ? collection : null }));
  state.docCache.set(key, doc);
  return doc;
}

export function openCitation(button) {
  const citation = citationFor(button);
  if (!citation) return;
  hidePopover();
  openSource({ docId: citation.doc_id, citation, title: citation.title, opener: button });
}

export function docIdOf(opener) {
  const row = opener && opener.closest ? opener.closest("[data-doc-id]") : null;
  return row ? row.dataset.docId : null;
}

/** Open an article in the panel; from the library, the drawer gives way so nothing covers it. */
export async function openSource({
  docId, citation = null, title = "", opener = null, fromLibrary = false, citedLabel = "",
}) {
  const collection = state.collection;
  state.panelToken += 1;
  const token = state.panelToken;
  if (fromLibrary) closeLibrary({ restoreFocus: false });
  state.panelDocId = docId;
  state.panelOpener = opener;
  state.panelFromLibrary = fromLibrary;
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
  renderDocument(doc, citation, citedLabel);
}

function renderDocument(doc, citation, citedLabel = "") {
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
      "The cited passage is outside this article’s current text: the article may have changed since this answer.",
      citedLabel);
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
    : "", citedLabel);
  mark.scrollIntoView({ block: "center" });
  mark.classList.add("flash");
  mark.addEventListener("animationend", () => mark.classList.remove("flash"), { once: true });
}

function showCitedNote(citation, mark, warning, citedLabel = "") {
  const label = citedLabel
    || (Number.isInteger(citation.n) ? `Passage cited as [${citation.n}]` : "Cited passage");
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
export function linkedPassage() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const docId = params.get("source");
  if (!docId) return null;
  const offset = (name) => (/^\d+$/.test(params.get(name) || "") ? Number(params.get(name)) : null);
  const start = offset("start");
  const end = offset("end");
  const citation = start !== null && end !== null ? { doc_id: docId, start, end, n: offset("n") } : null;
  return { docId, collection: params.get("collection"), citation };
}
