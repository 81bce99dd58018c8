// In-page dialogs and toasts: the API key dialog (a password field, not window.prompt) and
// short notices with an action such as Undo.

import { h } from "./dom.js";
import { ui } from "./state.js";

/** Ask for the server's API key in a modal dialog; the key, or null when cancelled. */
export function requestApiKey({ refused = false } = {}) {
  const dialog = ui.keyDialog;
  ui.keyMessage.textContent = refused
    ? "The API key was refused. Enter a valid key for this citeqa server."
    : "This citeqa server needs an API key. Enter it to continue.";
  ui.keyInput.value = "";
  ui.keyError.textContent = "";
  return new Promise((resolve) => {
    const finish = (key) => {
      ui.keyForm.removeEventListener("submit", onSubmit);
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
      resolve(key);
    };
    const onSubmit = (event) => {
      event.preventDefault();
      const key = ui.keyInput.value.trim();
      if (!key) {
        ui.keyError.textContent = "Type the key first, or cancel.";
        ui.keyInput.focus();
        return;
      }
      finish(key);
    };
    // Escape or Cancel closes the dialog without a key.
    const onClose = () => finish(null);
    ui.keyForm.addEventListener("submit", onSubmit);
    dialog.addEventListener("close", onClose);
    ui.keyCancel.onclick = () => finish(null);
    dialog.showModal();
    ui.keyInput.focus();
  });
}

let currentToast = null;   // {timer, onExpire}

function retireToast({ expire }) {
  if (!currentToast) return;
  const { timer, onExpire } = currentToast;
  currentToast = null;
  clearTimeout(timer);
  ui.toastSlot.replaceChildren();
  if (expire && onExpire) onExpire();
}

/**
 * A notice at the bottom of the page. `action` ({label, run}) adds a button; `onExpire` runs
 * when the toast goes without its action being taken (timed out, or replaced by another).
 */
export function showToast(message, { action = null, onExpire = null, duration = 8000 } = {}) {
  retireToast({ expire: true });
  const toast = h("div", { class: "toast", role: "status", "data-testid": "toast" },
    [h("span", { text: message })]);
  if (action) {
    toast.append(h("button", {
      type: "button", class: "button button-small", "data-testid": "toast-action",
      onclick: () => {
        retireToast({ expire: false });
        action.run();
      },
    }, action.label));
  }
  ui.toastSlot.replaceChildren(toast);
  currentToast = { onExpire, timer: setTimeout(() => retireToast({ expire: true }), duration) };
}

/** Ends the toast now as if its time had run out (its onExpire runs). */
export function expireToast() {
  retireToast({ expire: true });
}
