// Pieces several pages share: breadcrumbs, loading and error blocks, page headers.

import { h, notice } from "../dom.js";
import { link } from "../router.js";
import { pathLabel } from "../text.js";

/** Breadcrumbs: [["Namespaces", "#/"], ["prod", "#/ns/prod"], ["chat-models"]]. */
export function crumbs(...items) {
  return h(
    "nav",
    { class: "crumbs", "aria-label": "Breadcrumb" },
    h(
      "ol",
      {},
      items.map(([label, href], index) =>
        h("li", {}, href && index < items.length - 1 ? h("a", { href }, label) : h("span", { "aria-current": "page" }, label)),
      ),
    ),
  );
}

export function nsCrumbs(ns, ...more) {
  return crumbs(["Namespaces", link.namespaces()], [ns, link.namespace(ns)], ...more);
}

export function loading(what = "Loading…") {
  return h("p", { class: "loading", role: "status" }, what);
}

/** The API's details as a list: "endpoints › a › timeout › read: must be > 0". */
export function detailList(details) {
  if (!details || !details.length) return null;
  return h(
    "ul",
    { class: "error-details" },
    details.map((detail) => {
      const where = detail.document ? `${detail.document}: ` : "";
      const loc = Array.isArray(detail.loc) && detail.loc.length ? `${pathLabel(detail.loc)}: ` : "";
      return h("li", {}, where, loc ? h("code", {}, loc) : null, detail.msg || "");
    }),
  );
}

/** An error block for a failed call, with what to do when it is clear. */
export function errorBlock(error, doing) {
  const hint = {
    0: "Check that the service is running and reachable, then try again.",
    403: "Your token is not allowed to do this. Ask an admin for a token with the needed role or namespace.",
    503: "The service cannot reach its store right now. Try again in a moment.",
  }[error.status];
  return notice(
    "error",
    h("p", {}, h("strong", {}, doing ? `Could not ${doing}: ` : "Error: "), error.message),
    detailList(error.details),
    hint ? h("p", { class: "hint" }, hint) : null,
  );
}

/** A page header: heading, an optional line under it, and actions on the right. */
export function pageHeader(title, { sub, actions } = {}) {
  return h(
    "div",
    { class: "page-header" },
    h("div", {}, h("h1", {}, title), sub ? h("p", { class: "sub" }, sub) : null),
    actions && actions.length ? h("div", { class: "actions" }, actions) : null,
  );
}

/** An empty state: what is missing and what one can do about it. */
export function emptyState(title, ...children) {
  return h("div", { class: "empty" }, h("p", { class: "empty-title" }, title), ...children);
}

/** A modal dialog (native <dialog>: keyboard and focus handled by the browser). Resolves
 * with the value `onConfirm` returns, or null when cancelled. */
export function openDialog({ title, body, confirmLabel, danger = false, onConfirm }) {
  return new Promise((resolve) => {
    const status = h("div", { class: "dialog-status" });
    const confirm = h("button", { type: "submit", class: danger ? "danger" : "primary" }, confirmLabel);
    const cancel = h("button", { type: "button" }, "Cancel");
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", { id: "dialog-title" }, title),
      body,
      status,
      h("div", { class: "dialog-actions" }, cancel, confirm),
    );
    const dialog = h("dialog", { "aria-labelledby": "dialog-title" }, form);
    let result = null;
    cancel.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      confirm.disabled = true;
      status.replaceChildren();
      try {
        result = await onConfirm();
        dialog.close();
      } catch (error) {
        status.append(errorBlock(error));
        confirm.disabled = false;
      }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
