// The namespaces the token may see, and a way to open one by name (a namespace exists as
// soon as it is named: its first document creates it).

import { api, paths } from "../api.js";
import { h } from "../dom.js";
import { go, link } from "../router.js";
import { me } from "../session.js";
import { crumbs, emptyState, errorBlock, loading, pageHeader } from "./common.js";

const NAME_RULE = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;

function openForm() {
  const input = h("input", { id: "open-ns", name: "namespace", autocomplete: "off", spellcheck: "false", placeholder: "e.g. staging", "aria-describedby": "open-ns-help" });
  const status = h("div", { class: "form-status" });
  const form = h(
    "form",
    { class: "inline-form", "aria-labelledby": "open-ns-title" },
    h("h2", { id: "open-ns-title" }, "Open a namespace"),
    h("label", { for: "open-ns" }, "Namespace"),
    h("div", { class: "row" }, input, h("button", { type: "submit" }, "Open")),
    h("p", { id: "open-ns-help", class: "help" }, "A namespace exists once it holds a document; open an empty one to create its first document."),
    status,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const ns = input.value.trim();
    if (!NAME_RULE.test(ns)) {
      status.replaceChildren(h("p", { class: "field-error", role: "alert" }, "1-63 characters of a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit."));
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    go(link.namespace(ns));
  });
  return form;
}

export async function namespacesView(main) {
  const body = h("div", {}, loading());
  main.replaceChildren(crumbs(["Namespaces"]), pageHeader("Namespaces", { sub: `Signed in as ${me.name} (${me.role}); may see ${me.namespaces.join(", ")}` }), body, openForm());
  let items;
  try {
    items = (await api.get(paths.namespaces())).data.items;
  } catch (error) {
    body.replaceChildren(errorBlock(error, "list the namespaces"));
    return;
  }
  if (!items.length) {
    body.replaceChildren(emptyState("No namespace you may see holds a document yet.", h("p", {}, "Open a namespace by name below to create its first document.")));
    return;
  }
  body.replaceChildren(
    h(
      "ul",
      { class: "card-list", "aria-label": "Namespaces" },
      items.map((ns) => h("li", {}, h("a", { class: "card", href: link.namespace(ns) }, h("span", { class: "card-title" }, ns), h("span", { class: "card-sub" }, "open its documents")))),
    ),
  );
}
