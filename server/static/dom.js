// Small DOM helpers: element building, icons, text formatting, announcements.

import { ui } from "./state.js";


export function h(tag, props = {}, children = []) {
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
  copy: ["M9 9h11v11H9z", "M5 15H4V4h11v1"],
  check: ["M5 12.5l4.5 4.5L19 7.5"],
  edit: ["M4 20h4L19 9l-4-4L4 16z", "M13.5 6.5l4 4"],
  spark: ["M12 4v4M12 16v4M4 12h4M16 12h4", "M7 7l2 2M15 15l2 2M7 17l2-2M15 9l2-2"],
  cross: ["M6.5 6.5l11 11M17.5 6.5l-11 11"],
  question: ["M9 9a3 3 0 1 1 4.2 2.75c-.8.35-1.2 1-1.2 1.85V14.5", "M12 18.5v.01"],
  dash: ["M6 12h12"],
  close: ["M6 6l12 12M18 6L6 18"],
  checklist: ["M4 6.5l1.8 1.8L9 5", "M4 13.5l1.8 1.8L9 12", "M12 7h8M12 14h8M4 19.5h16"],
};

export function icon(name, className = "icon") {
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

export function shorten(text, max) {
  const clean = String(text ?? "").replace(/\s+/g, " ").trim();
  if (clean.length <= max) return clean;
  const cut = clean.slice(0, max - 1);
  const space = cut.lastIndexOf(" ");
  return `${(space > max * 0.6 ? cut.slice(0, space) : cut).replace(/[\s,.;:]+$/, "")}…`;
}

export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

export function formatDate(value) {
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
export function safeUrl(value) {
  if (!value) return null;
  try {
    const url = new URL(String(value), window.location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

export function announce(message) {
  ui.announcer.textContent = "";
  // A fresh text node in a later frame makes screen readers repeat identical messages.
  requestAnimationFrame(() => { ui.announcer.textContent = message; });
}

