// Tokens, for admins: list (never the secrets), create (the token is shown once), revoke.

import { api, paths } from "../api.js";
import { announce, h, notice, timeEl } from "../dom.js";
import { can, me } from "../session.js";
import { crumbs, emptyState, errorBlock, loading, openDialog, pageHeader } from "./common.js";

const NAME_RULE = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;

function createForm(onCreated) {
  const name = h("input", { id: "token-name", autocomplete: "off", spellcheck: "false", "aria-describedby": "token-name-help" });
  const role = h("select", { id: "token-role" }, ["reader", "writer", "admin"].map((value) => h("option", { value }, value)));
  const namespaces = h("input", { id: "token-namespaces", value: "*", autocomplete: "off", spellcheck: "false", "aria-describedby": "token-ns-help" });
  const secrets = h("input", { id: "token-secrets", type: "checkbox" });
  const status = h("div", { class: "form-status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "edit-form", "aria-labelledby": "create-token-title" },
    h("h2", { id: "create-token-title" }, "Create a token"),
    h(
      "div",
      { class: "field-row" },
      h("div", { class: "field" }, h("label", { for: "token-name" }, "Name"), name, h("p", { id: "token-name-help", class: "help" }, "Who or what uses it: deploy-bot, oncall-alice.")),
      h("div", { class: "field" }, h("label", { for: "token-role" }, "Role"), role),
    ),
    h("div", { class: "field" }, h("label", { for: "token-namespaces" }, "Namespaces"), namespaces, h("p", { id: "token-ns-help", class: "help" }, "Comma-separated patterns: *, prod, team-a-*.")),
    h("div", { class: "field check" }, secrets, h("label", { for: "token-secrets" }, "May read secret values (api keys) in clear")),
    status,
    h("button", { type: "submit", class: "primary" }, "Create token"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.replaceChildren();
    if (!NAME_RULE.test(name.value.trim())) {
      status.append(notice("error", "A token name is 1-63 characters of a-z, 0-9, '.', '_', '-'."));
      name.focus();
      return;
    }
    const patterns = namespaces.value.split(",").map((part) => part.trim()).filter(Boolean);
    try {
      const created = (await api.post(paths.tokens(), { name: name.value.trim(), role: role.value, namespaces: patterns, secrets: secrets.checked })).data;
      form.reset();
      namespaces.value = "*";
      onCreated(created);
    } catch (error) {
      status.append(errorBlock(error, "create the token"));
    }
  });
  return form;
}

function shownOnce(created) {
  const value = h("input", { id: "new-token", readonly: true, value: created.token, class: "code", "aria-describedby": "new-token-help" });
  const copy = h("button", { type: "button" }, "Copy");
  copy.addEventListener("click", async () => {
    value.select();
    try {
      await navigator.clipboard.writeText(value.value);
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Press Ctrl+C to copy";
    }
  });
  return notice(
    "ok",
    h("p", {}, h("strong", {}, `Token ${created.name} created.`), " Copy it now: it is shown this once and stored only as a hash."),
    h("label", { for: "new-token" }, "Token"),
    h("div", { class: "row" }, value, copy),
    h("p", { id: "new-token-help", class: "help" }, "Give it to its user over a safe channel. Leaving this page forgets it."),
  );
}

export async function tokensView(main) {
  const body = h("div", {}, loading());
  const created = h("div", { "aria-live": "polite" });
  main.replaceChildren(crumbs(["Tokens"]), pageHeader("Tokens", { sub: "Who may read and change configuration. Revoking a token ends its sessions and streams at once." }), created, body);
  if (!can("admin")) {
    body.replaceChildren(notice("info", `Managing tokens needs an admin token; ${me.name} is a ${me.role}.`));
    return;
  }
  const load = async () => {
    let items;
    try {
      items = (await api.get(paths.tokens())).data.items;
    } catch (error) {
      body.replaceChildren(errorBlock(error, "list the tokens"));
      return;
    }
    const table = items.length
      ? h(
          "div",
          { class: "scroll-x" },
          h(
            "table",
            { class: "tokens" },
            h("caption", { class: "visually-hidden" }, "Tokens"),
            h("thead", {}, h("tr", {}, ["Name", "Role", "Namespaces", "Secrets", "Created", h("span", { class: "visually-hidden" }, "Actions")].map((label) => h("th", { scope: "col" }, label)))),
            h(
              "tbody",
              {},
              items.map((token) =>
                h(
                  "tr",
                  {},
                  h("th", { scope: "row" }, token.name),
                  h("td", {}, token.role),
                  h("td", {}, h("code", {}, token.namespaces.join(", "))),
                  h("td", {}, token.secrets ? "yes" : "no"),
                  h("td", {}, timeEl(token.created_at), ` by ${token.created_by}`),
                  h("td", {}, h("button", { type: "button", class: "small danger", "aria-label": `Revoke ${token.name}`, onclick: () => revoke(token.name) }, "Revoke")),
                ),
              ),
            ),
          ),
        )
      : emptyState("No tokens yet besides the admin token.", h("p", {}, "Create one below for each person or service."));
    body.replaceChildren(table, createForm(onCreated));
  };
  const onCreated = (token) => {
    created.replaceChildren(shownOnce(token));
    announce(`Token ${token.name} created; copy it now`);
    load();
    created.querySelector("input")?.focus();
  };
  const revoke = async (name) => {
    const done = await openDialog({
      title: `Revoke ${name}?`,
      body: h("p", {}, `Every client using ${name} is refused from now on, on every instance; its open streams and console sessions end.`),
      confirmLabel: "Revoke",
      danger: true,
      onConfirm: async () => {
        await api.delete(paths.token(name));
        return true;
      },
    });
    if (done) {
      announce(`Token ${name} revoked`);
      created.replaceChildren();
      load();
    }
  };
  await load();
}
