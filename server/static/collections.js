// Collections and server limits: what the page asks about once at start-up.

import { ApiError, requestJSON } from "./api.js";
import { h } from "./dom.js";
import { FALLBACK_COLLECTION, state, ui } from "./state.js";

export async function loadCollections() {
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

/** The server's question and text-check limits, so the page can count before sending (the server still checks). */
export async function loadLimits() {
  try {
    const limits = await requestJSON("/v1/limits");
    if (Number.isInteger(limits.max_question_chars) && limits.max_question_chars > 0) {
      state.maxQuestionChars = limits.max_question_chars;
    }
    if (Number.isInteger(limits.max_verify_chars) && limits.max_verify_chars > 0) {
      state.maxVerifyChars = limits.max_verify_chars;
    }
  } catch {
    // An older server or none: the default stands and the server's answer decides.
  }
}

export function fillCollectionSelect() {
  const names = state.collections.map((c) => c.name);
  if (state.collection && !names.includes(state.collection)) names.unshift(state.collection);
  ui.collectionSelect.replaceChildren(...names.map((name) => h("option", { value: name, text: name })));
  ui.collectionSelect.value = state.collection;
}

export function showBanner(message) {
  ui.banner.textContent = message;
  ui.banner.hidden = !message;
}

export async function refreshCollectionsQuietly() {
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

// The collection `make run` puts the bundled sample articles in (citeqa/app.py).
const SAMPLES_COLLECTION = "samples";

export function updateCollectionLabels() {
  ui.emptyCollection.textContent = `“${state.collection}”`;
  ui.libraryTitle.textContent = state.collection;
  ui.samplesNote.hidden = state.collection !== SAMPLES_COLLECTION;
}
