// citeqa: the chat page. Dependency-free ES modules, no build step. This one wires the page
// up at start-up; the rest is in state.js (shared state), dom.js, api.js, dialogs.js,
// collections.js, conversation.js (turns, copy, edit, starters), ask.js (composer,
// streaming), source.js (citation popover, article panel), library.js, and verify.js with
// verify-view.js (the "Check a text" mode).

import { abortCurrentAnswer, autosizeQuestion, clearComposerNotice, send, stopAnswer, updateCounter } from "./ask.js";
import { loadCollections, loadLimits, updateCollectionLabels } from "./collections.js";
import { loadConversation, loadStarters, renderConversation, saveConversation, storageKey } from "./conversation.js";
import { showToast } from "./dialogs.js";
import { announce } from "./dom.js";
import {
  addUrl, closeLibrary, flushPendingDelete, loadLibrary, loadMoreArticles, toggleLibrary, uploadFiles,
} from "./library.js";
import { closeSourcePanel, hidePopover, linkedPassage, openCitation, openSource, popoverChip, showPopover } from "./source.js";
import { markStarted, state, ui } from "./state.js";
import {
  bindVerifyEvents, closeCheckDetail, inCheckMode, modeFromUrl, resetCheck, setMode, updateVerifyCounter,
} from "./verify.js";

function switchCollection(name) {
  abortCurrentAnswer();
  hidePopover();
  state.collection = name;
  if (ui.collectionSelect.value !== name) ui.collectionSelect.value = name;
  state.turns = loadConversation(name);
  closeSourcePanel({ restoreFocus: false });
  renderConversation();
  updateCollectionLabels();
  resetCheck();
  loadStarters();
  if (state.libraryOpen) loadLibrary();
}

// ---------------------------------------------------------------------------
// Clear with undo

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
      action: {
        label: "Undo",
        run: () => {
          if (state.collection !== collection || state.turns.length || state.busy) return;
          state.turns = previous;
          saveConversation();
          renderConversation();
        },
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
    skipLink: byId("skip-link"),
    chat: byId("chat"),
    modeButton: byId("mode-button"),
    modeLabel: byId("mode-label"),
    checker: byId("checker"),
    checkerCollection: byId("checker-collection"),
    verifyForm: byId("verify-form"),
    verifyInput: byId("verify-input"),
    verifyNotice: byId("verify-notice"),
    verifyCount: byId("verify-count"),
    verifyButton: byId("verify-button"),
    verifyStop: byId("verify-stop"),
    verifyResult: byId("verify-result"),
    verifyProgress: byId("verify-progress"),
    verifyCounts: byId("verdict-counts"),
    verifyMarked: byId("verify-marked"),
    banner: byId("banner"),
    samplesNote: byId("samples-note"),
    conversation: byId("conversation"),
    emptyState: byId("empty-state"),
    emptyCollection: byId("empty-collection"),
    turns: byId("turns"),
    composer: byId("composer"),
    composerNoticeSlot: byId("composer-notice-slot"),
    question: byId("question"),
    charCount: byId("char-count"),
    sendButton: byId("send-button"),
    stopButton: byId("stop-button"),
    startersBlock: byId("starters-block"),
    starters: byId("starters"),
    keyDialog: byId("key-dialog"),
    keyForm: byId("key-form"),
    keyMessage: byId("key-message"),
    keyInput: byId("key-input"),
    keyError: byId("key-error"),
    keyCancel: byId("key-cancel"),
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
    docMore: byId("doc-more"),
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
    updateCounter();
    if (ui.question.value.trim()) clearComposerNotice();
  });
  ui.stopButton.addEventListener("click", stopAnswer);
  bindVerifyEvents();

  ui.clearButton.addEventListener("click", clearConversation);
  ui.collectionSelect.addEventListener("change", () => switchCollection(ui.collectionSelect.value));
  ui.libraryButton.addEventListener("click", toggleLibrary);
  ui.libraryClose.addEventListener("click", () => closeLibrary());
  ui.docMore.addEventListener("click", loadMoreArticles);
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
  window.addEventListener("pagehide", flushPendingDelete);

  document.addEventListener("keydown", (event) => {
    // A modal dialog handles its own Escape.
    if (event.key !== "Escape" || document.querySelector("dialog[open]")) return;
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
    } else if (closeCheckDetail()) {
      event.preventDefault();
    }
  });

  window.addEventListener("hashchange", () => {
    if (modeFromUrl() === "check" && !inCheckMode()) setMode("check");
    openLinkedPassage();
  });

  // Another tab changed this collection's conversation.
  window.addEventListener("storage", (event) => {
    if (event.key !== storageKey(state.collection) || state.busy) return;
    state.turns = loadConversation(state.collection);
    renderConversation();
  });
}

// Opens the passage a #source=... link names (see source.js: linkedPassage).
function openLinkedPassage() {
  const link = linkedPassage();
  if (!link) return;
  const known = state.collections.some((c) => c.name === link.collection);
  if (link.collection && link.collection !== state.collection && known) switchCollection(link.collection);
  openSource({ docId: link.docId, citation: link.citation });
}

async function start() {
  bindElements();
  bindEvents();
  autosizeQuestion();
  setMode(modeFromUrl());
  try {
    await Promise.all([loadCollections(), loadLimits()]);
    updateCounter();
    updateVerifyCounter();
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

