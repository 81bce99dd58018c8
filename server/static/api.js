// Talking to the citeqa API: errors, the API key, JSON requests and server-sent events.

import { requestApiKey } from "./dialogs.js";
import { KEY_STORAGE } from "./state.js";

/** Whether trying the same request again may help: the network failed or the server did. */
export function worthRetrying(error) {
  return !(error instanceof ApiError) || error.status === 0 || error.status >= 500;
}

export class ApiError extends Error {
  constructor(message, status = 0, code = "") {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export const OFFLINE_MESSAGE =
  "Could not reach the citeqa server. Check that it is running, then try again.";

export function apiUrl(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, value);
  }
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}

export function documentPath(docId) {
  // One path segment, even when the id holds "/" or spaces: the route accepts a path.
  return `/v1/documents/${encodeURIComponent(docId)}`;
}

export function detailText(detail) {
  if (typeof detail === "string") return detail;
  if (detail === null || detail === undefined) return "";
  try {
    return JSON.stringify(detail);
  } catch {
    return String(detail);
  }
}

export function statusMessage(status, statusText) {
  if (status === 413) return "That is too large for the server.";
  if (status >= 500) return `The server had a problem (${status}${statusText ? ` ${statusText}` : ""}).`;
  return `The server refused the request (${status}${statusText ? ` ${statusText}` : ""}).`;
}

export async function errorFromResponse(response) {
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

export function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function withAuth(headers = {}) {
  const key = apiKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : { ...headers };
}

let keyRequest = null;   // one dialog for all the requests refused at once

/** Ask for a key in the page's dialog and keep it; true when there is a new key to try. */
export function askForKey() {
  if (!keyRequest) {
    keyRequest = requestApiKey({ refused: Boolean(apiKey()) }).then((key) => {
      keyRequest = null;
      if (!key) return false;
      try {
        localStorage.setItem(KEY_STORAGE, key);
      } catch {
        return false;
      }
      return true;
    });
  }
  return keyRequest;
}

// fetch with the API key; on 401, ask for a key once and try again.
export async function apiFetch(url, options = {}) {
  const send = () => fetch(url, { ...options, headers: withAuth(options.headers) });
  const response = await send();
  if (response.status === 401 && await askForKey()) return send();
  return response;
}

export async function requestJSON(url, options = {}) {
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

/** Read a text/event-stream body, calling onEvent(name, data) for each event. */
export async function readEvents(response, onEvent, signal) {
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

