// The kinds this service knows, with their JSON Schemas; admins register and delete
// user-defined kinds where the service supports them (PUT/DELETE /v1/schemas/{kind}).

import { api, paths } from "../api.js";
import { announce, h, notice } from "../dom.js";
import { go, link } from "../router.js";
import { can } from "../session.js";
import { parseText } from "../text.js";
import { crumbs, emptyState, errorBlock, loading, openDialog, pageHeader } from "./common.js";

const KIND_RULE = /^[A-Z][A-Za-z0-9]{0,63}$/;
const UNAVAILABLE = "Registering kinds is not available on this service (it knows only its built-in kinds).";

function kindTable(items, supportsUserKinds) {
  const columns = ["Kind", ...(supportsUserKinds ? ["Built-in", "Version"] : []), "Description"];
  return h(
    "div",
    { class: "scroll-x" },
    h(
      "table",
      { class: "kinds" },
      h("caption", { class: "visually-hidden" }, "Kinds"),
      h("thead", {}, h("tr", {}, columns.map((label) => h("th", { scope: "col" }, label)))),
      h(
        "tbody",
        {},
        items.map((item) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, h("a", { href: link.kind(item.kind) }, item.kind)),
            supportsUserKinds ? h("td", {}, item.builtin ? "yes" : "no") : null,
            supportsUserKinds ? h("td", { class: "num" }, item.version === undefined ? "—" : String(item.version)) : null,
            h("td", {}, item.description || (item.schema && item.schema.description) || h("span", { class: "muted" }, "—")),
          ),
        ),
      ),
    ),
  );
}

function registerForm(onSaved, existing) {
  const nameInput = h("input", { id: "kind-name", autocomplete: "off", spellcheck: "false", value: existing ? existing.kind : "", readonly: Boolean(existing), "aria-describedby": "kind-name-help" });
  const description = h("input", { id: "kind-description", value: existing?.description || "" });
  const schemaText = h("textarea", { id: "kind-schema", class: "code", rows: 14, spellcheck: "false", "aria-describedby": "kind-schema-help" });
  schemaText.value = existing ? JSON.stringify(existing.schema, null, 2) : '{\n  "type": "object",\n  "properties": {},\n  "additionalProperties": false\n}\n';
  const message = h("input", { id: "kind-message", placeholder: "why (kept in the kind's history)" });
  const status = h("div", { class: "form-status", "aria-live": "polite" });
  const check = h("button", { type: "button" }, "Check");
  const save = h("button", { type: "submit", class: "primary" }, existing ? "Save new version" : "Register kind");
  const send = async (dryRun) => {
    status.replaceChildren();
    const kind = nameInput.value.trim();
    if (!KIND_RULE.test(kind)) {
      status.append(notice("error", "A kind name starts with a capital letter, then up to 63 letters and digits (e.g. FeatureFlags)."));
      nameInput.focus();
      return;
    }
    let schema;
    try {
      schema = parseText(schemaText.value, "yaml"); // YAML is a superset of JSON
    } catch (error) {
      status.append(notice("error", `${error.message}${error.line ? ` (line ${error.line})` : ""}`));
      schemaText.focus();
      return;
    }
    const body = { schema, ...(description.value.trim() ? { description: description.value.trim() } : {}), ...(message.value.trim() ? { message: message.value.trim() } : {}) };
    try {
      const answer = await api.put(paths.schema(kind), body, { query: dryRun ? { dry_run: "true" } : undefined });
      if (dryRun) {
        status.append(notice("ok", `The service accepts this schema for ${kind} (nothing was saved).`));
      } else {
        announce(`Kind ${kind} saved`);
        onSaved(kind, answer.data);
      }
    } catch (error) {
      status.append(error.routeMissing ? notice("info", UNAVAILABLE) : errorBlock(error, dryRun ? "check the kind" : "save the kind"));
    }
  };
  check.addEventListener("click", () => send(true));
  const form = h(
    "form",
    { class: "edit-form", "aria-labelledby": "register-title" },
    h("h2", { id: "register-title" }, existing ? `New version of ${existing.kind}` : "Register a kind"),
    h("div", { class: "field" }, h("label", { for: "kind-name" }, "Kind name"), nameInput, h("p", { id: "kind-name-help", class: "help" }, "Starts with a capital letter: FeatureFlags, PromptTemplates.")),
    h("div", { class: "field" }, h("label", { for: "kind-description" }, "Description"), description),
    h("div", { class: "field" }, h("label", { for: "kind-schema" }, "JSON Schema of the spec (JSON or YAML)"), schemaText, h("p", { id: "kind-schema-help", class: "help" }, 'The root must be "type": "object". Mark a string property "x-configsvc-secret": true to mask it like api_key. A new schema must keep every stored document of the kind valid.')),
    h("div", { class: "field" }, h("label", { for: "kind-message" }, "Message"), message),
    status,
    h("div", { class: "row" }, check, save),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(false);
  });
  return form;
}

async function kindDetail(main, kindName) {
  const body = h("div", {}, loading());
  main.replaceChildren(crumbs(["Kinds", link.kinds()], [kindName]), pageHeader(kindName), body);
  let item;
  let listing;
  try {
    [item, listing] = await Promise.all([api.get(paths.schema(kindName)).then((answer) => answer.data), api.get(paths.schemas()).then((answer) => answer.data.items)]);
  } catch (error) {
    body.replaceChildren(errorBlock(error, `read kind ${kindName}`));
    return;
  }
  const listed = listing.find((entry) => entry.kind === kindName) || {};
  const userKind = listed.builtin === false;
  const actions = [];
  if (userKind && can("admin")) {
    const remove = h("button", { type: "button", class: "danger" }, "Delete kind");
    remove.addEventListener("click", async () => {
      const done = await openDialog({
        title: `Delete kind ${kindName}?`,
        body: h("p", {}, "The service refuses while any document of this kind exists, and names them."),
        confirmLabel: "Delete kind",
        danger: true,
        onConfirm: async () => {
          await api.delete(paths.schema(kindName));
          return true;
        },
      });
      if (done) {
        announce(`Kind ${kindName} deleted`);
        go(link.kinds());
      }
    });
    actions.push(remove);
  }
  const secrets = [];
  const walk = (node, path) => {
    if (!node || typeof node !== "object") return;
    if (node["x-configsvc-secret"] === true || (path.length && path[path.length - 1] === "api_key")) secrets.push(path.join("."));
    for (const [key, value] of Object.entries(node.properties || {})) walk(value, [...path, key]);
    for (const value of Object.values(node.$defs || {})) walk(value, [...path, "…"]);
  };
  walk(item.schema, []);
  body.replaceChildren(
    h("p", { class: "sub" }, listed.builtin === undefined ? "" : listed.builtin ? "A built-in kind." : `A user-defined kind, version ${listed.version ?? "?"}.`, " ", listed.description || ""),
    actions.length ? h("div", { class: "actions" }, actions) : null,
    secrets.length ? h("p", { class: "help" }, "Secret fields (masked as **** for tokens without secrets): ", h("code", {}, secrets.join(", "))) : null,
    h("section", { class: "panel", "aria-labelledby": "schema-title" }, h("h2", { id: "schema-title" }, "JSON Schema"), h("pre", { class: "code", tabindex: "0" }, JSON.stringify(item.schema, null, 2))),
    userKind && can("admin") ? registerForm(() => go(link.kind(kindName)), { ...item, description: listed.description }) : null,
  );
}

export async function kindsView(main, { params }) {
  if (params.kind) {
    await kindDetail(main, params.kind);
    return;
  }
  const body = h("div", {}, loading());
  main.replaceChildren(crumbs(["Kinds"]), pageHeader("Kinds", { sub: "Every document has a kind; its JSON Schema is checked on every write." }), body);
  let items;
  try {
    items = (await api.get(paths.schemas())).data.items;
  } catch (error) {
    body.replaceChildren(errorBlock(error, "list the kinds"));
    return;
  }
  const supportsUserKinds = items.some((item) => "builtin" in item);
  const parts = [items.length ? kindTable(items, supportsUserKinds) : emptyState("This service knows no kinds.")];
  if (can("admin")) {
    parts.push(supportsUserKinds ? registerForm((kind) => go(link.kind(kind))) : h("p", { class: "muted" }, UNAVAILABLE));
  }
  body.replaceChildren(...parts);
}
