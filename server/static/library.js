// The library drawer: the collection's articles (open, delete with undo), uploads with
// progress, and web pages added by URL.

import {
  OFFLINE_MESSAGE, apiKey, apiUrl, askForKey, detailText, documentPath, requestJSON,
  statusMessage,
} from "./api.js";
import { refreshCollectionsQuietly, updateCollectionLabels } from "./collections.js";
import { expireToast, showToast } from "./dialogs.js";
import { announce, formatDate, h, icon, plural, shorten } from "./dom.js";
import { closeSourcePanel, openSource } from "./source.js";
import { state, ui } from "./state.js";

const UNDO_DELETE_MS = 6000;

// ---------------------------------------------------------------------------
// Library: list and delete

/** Open the drawer; focus goes to its title, or back to the row an article was read from. */
export async function openLibrary({ focusDocId = null } = {}) {
  state.libraryOpen = true;
  ui.libraryPanel.hidden = false;
  ui.libraryButton.setAttribute("aria-expanded", "true");
  document.body.classList.add("library-open");
  updateCollectionLabels();
  ui.libraryTitle.focus({ preventScroll: true });
  await loadLibrary();
  const row = focusDocId && rowFor(focusDocId);
  if (row && state.libraryOpen) row.querySelector(".doc-open").focus();
}

function rowFor(docId) {
  return Array.from(ui.docList.children).find((row) => row.dataset.docId === docId) || null;
}

export function closeLibrary({ restoreFocus = true } = {}) {
  if (!state.libraryOpen) return;
  state.libraryOpen = false;
  ui.libraryPanel.hidden = true;
  ui.libraryButton.setAttribute("aria-expanded", "false");
  document.body.classList.remove("library-open");
  if (restoreFocus) ui.libraryButton.focus({ preventScroll: true });
}

export function toggleLibrary() {
  if (state.libraryOpen) closeLibrary();
  else openLibrary();
}

// Articles come in pages of this many; "Show more articles" fetches the next page.
const PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;

function listUrl(collection, limit, cursor) {
  return apiUrl("/v1/documents", {
    collection: state.collectionsKnown ? collection : null, limit, cursor,
  });
}

export async function loadLibrary() {
  const collection = state.collection;
  state.libraryToken += 1;
  const token = state.libraryToken;
  ui.docStatus.textContent = ui.docList.children.length ? "" : "Loading the articles…";
  ui.docStatus.classList.remove("is-error");
  ui.docList.setAttribute("aria-busy", "true");
  // A reload (after an upload or a delete) keeps as many rows as were shown, so the reader
  // does not lose their place.
  const shown = ui.docList.children.length;
  const limit = Math.min(MAX_PAGE_SIZE, Math.max(PAGE_SIZE, Math.ceil(shown / PAGE_SIZE) * PAGE_SIZE));
  try {
    const data = await requestJSON(listUrl(collection, limit, null));
    if (token !== state.libraryToken) return;
    renderDocList(Array.isArray(data.documents) ? data.documents : [], data);
  } catch (error) {
    if (token !== state.libraryToken) return;
    ui.docList.replaceChildren();
    ui.docCount.textContent = "";
    ui.docMore.hidden = true;
    ui.docStatus.textContent = `Could not load the articles: ${error.message}`;
    ui.docStatus.classList.add("is-error");
  } finally {
    if (token === state.libraryToken) ui.docList.removeAttribute("aria-busy");
  }
}

/** The next page of articles, added under those shown. */
export async function loadMoreArticles() {
  const cursor = state.libraryCursor;
  if (!cursor) return;
  const collection = state.collection;
  const token = state.libraryToken;
  ui.docMore.disabled = true;
  ui.docList.setAttribute("aria-busy", "true");
  try {
    const data = await requestJSON(listUrl(collection, PAGE_SIZE, cursor));
    if (token !== state.libraryToken) return;
    const documents = (Array.isArray(data.documents) ? data.documents : [])
      .filter((doc) => !isPendingDelete(doc) && !rowFor(doc.id));
    const first = documents.length ? renderDocRow(documents[0]) : null;
    ui.docList.append(...(first ? [first] : []), ...documents.slice(1).map(renderDocRow));
    showPaging(data);
    if (first) first.querySelector(".doc-open").focus({ preventScroll: false });
    announce(`${plural(documents.length, "more article")} listed.`);
  } catch (error) {
    if (token !== state.libraryToken) return;
    ui.docStatus.textContent = `Could not load more articles: ${error.message}`;
    ui.docStatus.classList.add("is-error");
  } finally {
    ui.docMore.disabled = false;
    if (token === state.libraryToken) ui.docList.removeAttribute("aria-busy");
  }
}

function showPaging(data) {
  state.libraryCursor = typeof data.next_cursor === "string" ? data.next_cursor : null;
  ui.docMore.hidden = !state.libraryCursor;
  if (Number.isFinite(data.total)) state.libraryTotal = data.total;
  showCount();
}

function showCount() {
  const pending = state.pendingDelete && state.pendingDelete.collection === state.collection ? 1 : 0;
  ui.docCount.textContent = `(${Math.max(0, state.libraryTotal - pending)})`;
}

function isPendingDelete(doc) {
  const pending = state.pendingDelete;
  return Boolean(pending && pending.collection === state.collection && pending.doc.id === doc.id);
}

function renderDocList(all, data) {
  // A document deleted on screen stays listed by the server until its undo time is over.
  const documents = all.filter((doc) => !isPendingDelete(doc));
  ui.docStatus.textContent = documents.length
    ? ""
    : "No articles in this collection yet. Add some above.";
  ui.docList.replaceChildren(...documents.map(renderDocRow));
  showPaging(data);
}

function renderDocRow(doc) {
  const title = doc.title || doc.id;
  const meta = [doc.source, formatDate(doc.date), Number.isFinite(doc.chunks) ? plural(doc.chunks, "chunk") : null]
    .filter(Boolean);
  const row = h("li", { class: "doc-row", "data-testid": "doc-row", "data-doc-id": doc.id }, [
    h("button", {
      type: "button", class: "doc-open", title: `Read “${title}”`,
      onclick: (event) => openSource({ docId: doc.id, title, opener: event.currentTarget, fromLibrary: true }),
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
      onclick: () => deleteDocument(doc),
    }, icon("trash")),
  ]);
  return row;
}

/**
 * Delete with undo: the row goes at once, the server is asked only when the undo time is over
 * (or another delete starts, or the page is left), so Undo really keeps the article.
 */
function deleteDocument(doc) {
  commitPendingDelete();
  const title = doc.title || doc.id;
  const row = rowFor(doc.id);
  const next = row && (row.nextElementSibling || row.previousElementSibling);
  const pending = { doc, collection: state.collection };
  state.pendingDelete = pending;
  if (row) row.remove();
  showCount();
  if (state.panelDocId === doc.id) closeSourcePanel({ restoreFocus: false });
  setLibraryStatus("");
  (next ? next.querySelector(".doc-open") : ui.libraryTitle).focus({ preventScroll: true });
  showToast(`“${shorten(title, 60)}” will be deleted.`, {
    action: { label: "Undo", run: () => undoDelete(pending) },
    onExpire: () => sendDelete(pending),
    duration: UNDO_DELETE_MS,
  });
  announce(`“${title}” will be deleted. Undo is in the notice at the bottom.`);
}

function undoDelete(pending) {
  if (state.pendingDelete !== pending) return;
  state.pendingDelete = null;
  const title = pending.doc.title || pending.doc.id;
  setLibraryStatus(`Kept “${title}”.`);
  if (state.libraryOpen && pending.collection === state.collection) {
    openLibrary({ focusDocId: pending.doc.id });
  }
}

/** Send the delete that is waiting for its undo time, now. */
function commitPendingDelete() {
  if (state.pendingDelete) expireToast();
}

async function sendDelete(pending, { keepalive = false } = {}) {
  if (state.pendingDelete !== pending) return;
  state.pendingDelete = null;
  const { doc, collection } = pending;
  const title = doc.title || doc.id;
  const known = state.collectionsKnown;
  try {
    await requestJSON(apiUrl(documentPath(doc.id), { collection: known ? collection : null }),
      { method: "DELETE", keepalive });
    state.docCache.clear();
    setLibraryStatus(`Deleted “${title}”.`);
    if (collection === state.collection && state.libraryOpen) await loadLibrary();
    refreshCollectionsQuietly();
  } catch (error) {
    setLibraryStatus(`Could not delete “${title}”: ${error.message}`, true);
    if (collection === state.collection && state.libraryOpen) await loadLibrary();
  }
}

/** Leaving the page does not cancel a delete the user did not undo. */
export function flushPendingDelete() {
  const pending = state.pendingDelete;
  if (pending) sendDelete(pending, { keepalive: true });
}

function setLibraryStatus(message, error = false) {
  ui.libraryStatus.textContent = message;
  ui.libraryStatus.classList.toggle("is-error", error);
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

export function uploadFiles(fileList, collection = state.collection) {
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
  xhr.onload = async () => {
    if (xhr.status === 401 && await askForKey()) {
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

export async function addUrl() {
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

