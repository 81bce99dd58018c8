// "Check a text", the view: the submitted text with each sentence marked by its verdict as it
// arrives, the counts, and a sentence's reason and evidence, opened in the article panel.

import { h, icon, plural, shorten } from "./dom.js";
import { openSource } from "./source.js";
import { ui } from "./state.js";

// Colour is never the only mark: each verdict has its icon, a word for screen readers and its
// own underline style (style.css / verify.css).
export const VERDICTS = {
  supported: { label: "Supported", icon: "check", evidence: "Evidence" },
  contradicted: { label: "Contradicted", icon: "cross", evidence: "What the article says" },
  unsupported: { label: "Unsupported", icon: "question", evidence: "Closest passage found" },
  not_checkable: { label: "Not checkable", icon: "dash", evidence: "" },
};
const ORDER = ["supported", "contradicted", "unsupported", "not_checkable"];

export function emptyCounts() {
  return Object.fromEntries(ORDER.map((verdict) => [verdict, 0]));
}

/** Maps the server's offsets (Python: code points) to JavaScript string indexes (UTF-16). */
export function offsetMapper(text) {
  if (!/[\uD800-\uDFFF]/.test(text)) return (offset) => offset;
  const units = [0];
  for (const ch of text) units.push(units[units.length - 1] + ch.length);
  return (offset) => units[Math.min(Math.max(offset, 0), units.length - 1)];
}

/** Characters as the server counts them: code points, not UTF-16 units. */
export function codePoints(text) {
  const pairs = text.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g);
  return text.length - (pairs ? pairs.length : 0);
}

// ---------------------------------------------------------------------------
// The marked text

/**
 * A fresh rendering of `text`, all of it pending at first; `add(sentence)` marks the next
 * sentence checked. Sentences come in the text's order, so everything before the last one
 * marked is final and the rest is one pending text node that shrinks from its start.
 */
export function createMarkedText(text) {
  const toIndex = offsetMapper(text);
  const pending = h("span", { class: "pending", "data-testid": "verify-pending" }, [text]);
  ui.verifyMarked.replaceChildren(pending);
  let cursor = 0;
  const sentences = [];

  function add(sentence) {
    let start = toIndex(Number(sentence.start));
    let end = toIndex(Number(sentence.end));
    if (text.slice(start, end) !== sentence.text) {
      // Offsets that do not fit the text: place the sentence by its words instead.
      const found = text.indexOf(sentence.text, cursor);
      if (found === -1) return;
      start = found;
      end = found + sentence.text.length;
    }
    if (start < cursor) return;
    const index = sentences.length;
    sentences.push(sentence);
    const node = sentenceNode(sentence, index, text.slice(start, end));
    const gap = text.slice(cursor, start);
    pending.before(...(gap ? [gap, node] : [node]));
    pending.firstChild.deleteData(0, end - cursor);
    cursor = end;
    if (!pending.firstChild.length) pending.hidden = true;
  }

  /** Label what was left unchecked (the check was stopped or failed). */
  function markRest() {
    if (pending.hidden || !pending.firstChild.length) return;
    pending.before(h("span", { class: "unchecked-mark", text: "Not checked from here on: " }));
  }

  return { add, markRest, sentences };
}

function sentenceNode(sentence, index, shown) {
  const verdict = VERDICTS[sentence.verdict] ? sentence.verdict : "unsupported";
  const meta = VERDICTS[verdict];
  // role=button on a span, not a <button>: a button is an inline block and would not wrap
  // with the text around it. Only the current sentence is in the tab order (arrow keys move).
  return h("span", {
    class: "sentence", role: "button", tabindex: index === 0 ? "0" : "-1",
    "aria-expanded": "false", "data-testid": "verify-sentence", "data-verdict": verdict,
    "data-index": String(index),
  }, [
    h("span", { class: "verdict-mark", "aria-hidden": "true" }, [icon(meta.icon, "icon verdict-icon")]),
    h("span", { class: "sr-only", text: `${meta.label}: ` }),
    shown,
  ]);
}

// ---------------------------------------------------------------------------
// The summary

export function renderSummary({ counts, total, status, collection, asOf = "", problem = "" }) {
  const items = ORDER.map((verdict) => h("li", {
    class: "verdict-count", "data-verdict": verdict, "data-testid": `verify-count-${verdict}`,
  }, [
    h("span", { class: "verdict-mark", "aria-hidden": "true" }, [icon(VERDICTS[verdict].icon, "icon verdict-icon")]),
    h("span", { class: "count-label", text: VERDICTS[verdict].label }),
    h("span", { class: "count-value", text: String(counts[verdict] || 0) }),
  ]));
  const lines = {
    checking: `Checking… ${plural(total, "sentence")} so far.`,
    done: `${plural(total, "sentence")} checked against “${collection}”${asOf ? `, as of ${asOf}` : ""}.`,
    stopped: `You stopped the check after ${plural(total, "sentence")}; the rest of the text was not checked.`,
    error: `The check failed after ${plural(total, "sentence")}${problem ? `: ${problem}` : "."}`,
  };
  ui.verifyProgress.textContent = lines[status] || "";
  ui.verifyCounts.replaceChildren(...items);
}

// ---------------------------------------------------------------------------
// One sentence's reason and evidence

let openSentence = null;

export function closeDetail({ restoreFocus = false } = {}) {
  const detail = document.getElementById("verify-detail");
  if (detail) detail.remove();
  const sentence = openSentence;
  openSentence = null;
  if (!sentence) return false;
  sentence.setAttribute("aria-expanded", "false");
  sentence.removeAttribute("aria-controls");
  if (restoreFocus && sentence.isConnected) sentence.focus();
  return true;
}

/** Show (or hide, if it is showing) a sentence's verdict, reason and evidence, after it. */
export function toggleDetail(node, sentence) {
  if (openSentence === node) {
    closeDetail({ restoreFocus: true });
    return;
  }
  closeDetail();
  const meta = VERDICTS[node.dataset.verdict];
  const evidence = Array.isArray(sentence.evidence) ? sentence.evidence : [];
  const number = Number(node.dataset.index) + 1;
  const children = [
    h("p", { class: "detail-head" }, [
      h("span", { class: "verdict-mark", "aria-hidden": "true" }, [icon(meta.icon, "icon verdict-icon")]),
      h("strong", { class: "detail-verdict", "data-testid": "verify-detail-verdict", text: meta.label }),
      Number.isFinite(Number(sentence.score))
        ? h("span", { class: "detail-score", text: `score ${Number(sentence.score).toFixed(2)}` }) : null,
      h("button", {
        type: "button", class: "icon-button detail-close", "aria-label": "Close",
        title: "Close (Esc)", onclick: () => closeDetail({ restoreFocus: true }),
      }, [icon("close")]),
    ]),
  ];
  if (sentence.reason) {
    children.push(h("p", { class: "detail-reason", "data-testid": "verify-reason", text: sentence.reason }));
  }
  if (evidence.length) {
    children.push(h("p", { class: "detail-sub", text: meta.evidence || "Evidence" }));
    children.push(h("ul", { class: "evidence-list" }, evidence.map((citation) => h("li", {}, [
      h("button", {
        type: "button", class: "evidence-item", "data-testid": "verify-evidence",
        onclick: (event) => openSource({
          docId: citation.doc_id, citation, title: citation.title, opener: event.currentTarget,
          citedLabel: `${meta.evidence || "Evidence"}, for sentence ${number}`,
        }),
      }, [
        icon("doc", "icon evidence-icon"),
        h("span", { class: "source-body" }, [
          h("span", { class: "source-name", text: citation.title || citation.doc_id }),
          h("span", { class: "source-quote", text: `“${shorten(citation.quote, 280)}”` }),
          h("span", { class: "evidence-open", text: "Open in the article" }),
        ]),
      ]),
    ]))));
  } else if (node.dataset.verdict !== "not_checkable") {
    children.push(h("p", { class: "detail-sub", text: "No passage of the collection comes close." }));
  }
  const detail = h("div", {
    class: "verify-detail", id: "verify-detail", "data-testid": "verify-detail",
    "data-verdict": node.dataset.verdict, role: "group",
    "aria-label": `Sentence ${number}: ${meta.label.toLowerCase()}`,
  }, children);
  node.after(detail);
  node.setAttribute("aria-expanded", "true");
  node.setAttribute("aria-controls", "verify-detail");
  openSentence = node;
  // Focus stays on the sentence (now expanded); Tab goes on into its detail, right after it.
  detail.scrollIntoView({ block: "nearest" });
}

/** Arrow keys, Home and End move between sentences; only the focused one is a tab stop. */
export function moveFocus(from, key) {
  const all = Array.from(ui.verifyMarked.querySelectorAll(".sentence"));
  const index = all.indexOf(from);
  if (index === -1) return false;
  const target = {
    ArrowRight: index + 1, ArrowDown: index + 1, ArrowLeft: index - 1, ArrowUp: index - 1,
    Home: 0, End: all.length - 1,
  }[key];
  if (target === undefined || !all[target]) return false;
  from.setAttribute("tabindex", "-1");
  all[target].setAttribute("tabindex", "0");
  all[target].focus();
  return true;
}
