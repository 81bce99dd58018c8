// Shared state of the chat page: what is selected, what is running, and the page's elements.

export const STORAGE_PREFIX = "citeqa:conversation:";
export const KEY_STORAGE = "citeqa:api-key";
export const HISTORY_MESSAGES = 6;        // previous messages sent with a follow-up
export const MAX_STORED_TURNS = 60;       // older turns are dropped from localStorage
export const FALLBACK_COLLECTION = "articles";
export const NEAR_BOTTOM_PX = 140;
// Until GET /v1/limits answers; the server's own check stays the last word.
export const DEFAULT_MAX_QUESTION_CHARS = 2000;

export const state = {
  collection: null,          // name of the selected collection
  defaultCollection: FALLBACK_COLLECTION,
  collections: [],           // [{name, documents, chunks, model}]
  collectionsKnown: false,   // false when GET /v1/collections failed
  maxQuestionChars: DEFAULT_MAX_QUESTION_CHARS,
  maxVerifyChars: null,      // the longest text to check, once GET /v1/limits says
  mode: "chat",              // "chat" or "check" (Check a text, verify.js)
  turns: [],                 // persisted turns: [{question, answer, at}]
  started: false,            // start-up has loaded the collection's conversation
  busy: false,               // an answer is streaming
  controller: null,          // AbortController of the streaming request
  stopping: false,           // the user pressed Stop: the abort shows as a stopped answer
  requestId: 0,              // bumps to make an in-flight answer stale
  panelToken: 0,             // bumps to cancel a document load
  panelDocId: null,
  panelOpener: null,
  panelFromLibrary: false,   // closing the article goes back to the library
  libraryOpen: false,
  libraryToken: 0,
  libraryCursor: null,       // next_cursor of the last page listed; null when all are shown
  libraryTotal: 0,           // documents in the collection, as the server last counted
  uploading: false,          // an XHR upload is running
  uploadQueue: [],           // files dropped or chosen meanwhile, uploaded next
  fetchingUrl: false,
  pendingDelete: null,       // {doc, collection, timer}: deleted on screen, not yet on the server
  docCache: new Map(),       // "collection\u0000docId" -> document
};

/** The page's elements by role, filled in once at start-up. */
export const ui = {};

// Resolves once start-up has chosen the collection and shown its stored conversation.
let resolveStarted = () => {};
export const started = new Promise((resolve) => { resolveStarted = resolve; });
export function markStarted() {
  resolveStarted();
}

export const answerData = new WeakMap();   // answer <article> -> answer object
