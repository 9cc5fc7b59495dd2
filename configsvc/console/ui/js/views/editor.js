// Edit a document (or create one) as YAML or JSON: checked by the service (a dry run) with
// each error shown at its field path and line, reviewed as a diff, and saved with
// compare-and-set. When someone else saved first, the conflict says who and shows their change.

import { api, paths } from "../api.js";
import { announce, h, notice, timeEl } from "../dom.js";
import { renderDiff } from "../diff.js";
import { watch } from "../live.js";
import { go, link } from "../router.js";
import { can, me } from "../session.js";
import { TextError, locate, parseText, pathLabel, toText } from "../text.js";
import { errorBlock, loading, nsCrumbs, pageHeader } from "./common.js";

const NAME_RULE = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;
let leaveGuard = null;

/** True when leaving the page would lose edits (asked by main.js before navigating). */
export function hasUnsavedEdits() {
  return leaveGuard ? leaveGuard() : false;
}

function codeEditor(id, text) {
  const gutter = h("pre", { class: "gutter", "aria-hidden": "true" });
  const area = h("textarea", {
    id,
    class: "code",
    spellcheck: "false",
    autocapitalize: "off",
    autocomplete: "off",
    wrap: "off",
    rows: 24,
    "aria-describedby": `${id}-help ${id}-problems`,
  });
  area.value = text;
  let marked = new Set();
  const paint = () => {
    const count = area.value.split("\n").length;
    gutter.replaceChildren(
      ...Array.from({ length: count }, (_, i) => h("span", { class: marked.has(i + 1) ? "bad" : "" }, `${i + 1}\n`)),
    );
    gutter.scrollTop = area.scrollTop;
  };
  area.addEventListener("input", paint);
  area.addEventListener("scroll", () => {
    gutter.scrollTop = area.scrollTop;
  });
  paint();
  return {
    element: h("div", { class: "editor" }, gutter, area),
    area,
    get text() {
      return area.value;
    },
    set text(value) {
      area.value = value;
      paint();
    },
    mark(lines) {
      marked = new Set(lines.filter(Boolean));
      area.setAttribute("aria-invalid", marked.size ? "true" : "false");
      paint();
    },
    goToLine(line) {
      const lines = area.value.split("\n");
      const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
      area.focus();
      area.setSelectionRange(start, start + (lines[line - 1] || "").length);
      const lineHeight = area.scrollHeight / Math.max(1, lines.length);
      area.scrollTop = Math.max(0, (line - 4) * lineHeight);
    },
  };
}

function option(value, label, selected) {
  return h("option", { value, selected }, label);
}

/** The editor page: `params.name` absent means a new document. */
export async function editorView(main, { params, signal }) {
  const { ns } = params;
  const creating = !params.name;
  let name = params.name || "";
  const title = creating ? `New document in ${ns}` : `Edit ${name}`;
  main.replaceChildren(nsCrumbs(ns, ...(creating ? [["new document"]] : [[name, link.doc(ns, name)], ["edit"]])), pageHeader(title), loading());
  if (!can("writer", ns)) {
    main.append(errorBlock({ status: 403, message: `token ${me.name} (${me.role}) may not write in ${ns}`, details: [] }, "edit"));
    main.querySelector(".loading")?.remove();
    return;
  }

  let base = null;
  let kinds = [];
  try {
    const [kindAnswer, docAnswer] = await Promise.all([api.get(paths.schemas()), creating ? null : api.get(paths.doc(ns, name))]);
    kinds = kindAnswer.data.items.map((item) => item.kind);
    base = docAnswer ? docAnswer.data : null;
  } catch (error) {
    main.replaceChildren(nsCrumbs(ns, [name || "new document"]), pageHeader(title), errorBlock(error, creating ? "start a new document" : `open ${ns}/${name}`));
    return;
  }
  if (signal.aborted) return;

  let format = "yaml";
  const initialText = base ? toText(base.spec, format) : "{}\n";
  const editor = codeEditor("spec-text", initialText);
  const nameInput = creating ? h("input", { id: "doc-name", autocomplete: "off", spellcheck: "false", required: true, "aria-describedby": "doc-name-help" }) : null;
  const kindSelect = h("select", { id: "doc-kind" }, kinds.map((kind) => option(kind, kind, base ? kind === base.kind : false)));
  const messageInput = h("input", { id: "doc-message", maxlength: 1000, placeholder: "why this change (kept in history)" });
  const problems = h("div", { id: "spec-text-problems", class: "problems" });
  const review = h("div", { class: "review", "aria-live": "polite" });
  const banner = h("div", { class: "banner", "aria-live": "polite" });
  const schemaRef = h("details", { class: "schema-ref" }, h("summary", {}, "Schema of this kind"), h("pre", { class: "code" }, ""));
  const checkButton = h("button", { type: "button" }, "Check");
  const reviewButton = h("button", { type: "submit", class: "primary" }, "Review and save");
  let dirty = false;
  leaveGuard = () => dirty && editor.text !== initialText;
  signal.addEventListener("abort", () => {
    leaveGuard = null;
  });

  const formatRadios = ["yaml", "json"].map((value) =>
    h("span", {}, h("input", { type: "radio", name: "edit-format", id: `edit-format-${value}`, value, checked: value === format }), h("label", { for: `edit-format-${value}` }, value.toUpperCase())),
  );
  const formatToggle = h("fieldset", { class: "toggle" }, h("legend", { class: "visually-hidden" }, "Edit as"), formatRadios);
  formatToggle.addEventListener("change", (event) => {
    const next = event.target.value;
    try {
      const value = parseText(editor.text, format);
      editor.text = toText(value, next);
      format = next;
      clearProblems();
    } catch (error) {
      event.target.checked = false;
      formatToggle.querySelector(`#edit-format-${format}`).checked = true;
      showProblems([{ text: `${error.message} — fix it before switching to ${next.toUpperCase()}.`, line: error.line }]);
    }
  });

  const loadSchema = async () => {
    try {
      const schema = (await api.get(paths.schema(kindSelect.value))).data.schema;
      schemaRef.querySelector("pre").textContent = JSON.stringify(schema, null, 2);
      schemaRef.querySelector("summary").textContent = `Schema of ${kindSelect.value}`;
    } catch {
      schemaRef.querySelector("pre").textContent = "(could not load the schema)";
    }
  };
  kindSelect.addEventListener("change", loadSchema);
  editor.area.addEventListener("input", () => {
    dirty = true;
    review.replaceChildren();
  });

  function clearProblems() {
    problems.replaceChildren();
    editor.mark([]);
  }

  /** items: [{text, line, path}] */
  function showProblems(items, heading = "The service refused this spec:") {
    editor.mark(items.map((item) => item.line));
    problems.replaceChildren(
      notice(
        "error",
        h("p", {}, heading),
        h(
          "ul",
          { class: "problem-list" },
          items.map((item) =>
            h(
              "li",
              {},
              item.path ? h("code", {}, pathLabel(item.path)) : null,
              item.path ? ": " : null,
              item.text,
              item.line ? [" ", h("button", { type: "button", class: "link", onclick: () => editor.goToLine(item.line) }, `go to line ${item.line}`)] : null,
            ),
          ),
        ),
      ),
    );
  }

  function currentName() {
    if (!creating) return name;
    const value = nameInput.value.trim();
    if (!NAME_RULE.test(value)) {
      nameInput.setAttribute("aria-invalid", "true");
      throw new TextError("Name the document: 1-63 characters of a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit.", null);
    }
    nameInput.removeAttribute("aria-invalid");
    return value;
  }

  function body(spec) {
    const message = messageInput.value.trim();
    return { kind: kindSelect.value, spec, ...(message ? { message } : {}) };
  }

  /** Parse and dry-run; answers {spec, answer} or null after showing the problems. */
  async function check() {
    clearProblems();
    let spec;
    let target;
    try {
      target = currentName();
      spec = parseText(editor.text, format);
    } catch (error) {
      showProblems([{ text: error.message, line: error.line }], "This cannot be sent yet:");
      if (creating && !NAME_RULE.test(nameInput.value.trim())) nameInput.focus();
      return null;
    }
    if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
      showProblems([{ text: "The spec must be a mapping (key: value pairs), not a list or a single value.", line: 1 }], "This cannot be sent yet:");
      return null;
    }
    try {
      const answer = (await api.put(paths.doc(ns, target), body(spec), { query: { dry_run: "true" } })).data;
      return { spec, answer, target };
    } catch (error) {
      if (error.status === 422 && error.details.length) {
        showProblems(
          error.details.map((detail) => {
            const loc = Array.isArray(detail.loc) ? detail.loc : [];
            const inSpec = loc[0] === "spec";
            const path = inSpec ? loc.slice(1) : loc;
            return { path, text: detail.msg, line: inSpec ? locate(editor.text, path, format) : null };
          }),
          error.message,
        );
        problems.querySelector("button")?.focus();
      } else {
        problems.replaceChildren(errorBlock(error, "check the document"));
      }
      return null;
    }
  }

  checkButton.addEventListener("click", async () => {
    const result = await check();
    if (result) {
      problems.replaceChildren(notice("ok", `Valid ${kindSelect.value}: the service accepts it (nothing was saved).`));
      announce("Valid: nothing was saved yet");
    }
  });

  async function save(result) {
    const headers = base ? { "If-Match": `"${base.revision}"` } : { "If-None-Match": "*" };
    try {
      const saved = (await api.put(paths.doc(ns, result.target), body(result.spec), { headers })).data;
      dirty = false;
      leaveGuard = null;
      announce(`Saved ${result.target}: version ${saved.version}`);
      go(link.doc(ns, result.target));
    } catch (error) {
      if (error.status === 412 || error.status === 409) await showConflict(result);
      else review.replaceChildren(errorBlock(error, "save"));
    }
  }

  async function showConflict(result) {
    let theirs = null;
    try {
      theirs = (await api.get(paths.doc(ns, result.target))).data;
    } catch (error) {
      if (error.status !== 404) {
        review.replaceChildren(errorBlock(error, "read the other change"));
        return;
      }
    }
    const mine = toText(result.spec, format);
    const parts = [
      h("h2", { id: "conflict-title" }, "Someone else saved first"),
      theirs
        ? h("p", {}, `${theirs.updated_by} saved version ${theirs.version} `, timeEl(theirs.updated_at), theirs.message ? ` — “${theirs.message}”` : "", `, after the version you started from${base ? ` (${base.version})` : ""}. Nothing of yours was saved.`)
        : h("p", {}, "The document was deleted after you started editing. Nothing of yours was saved."),
    ];
    if (theirs && base) {
      parts.push(h("h3", {}, `Their change (version ${base.version} → ${theirs.version})`), renderDiff(toText(base.spec, format), toText(theirs.spec, format), { labels: [`version ${base.version}`, `version ${theirs.version}`] }));
    }
    if (theirs) {
      parts.push(h("h3", {}, `Your edits compared with version ${theirs.version}`), renderDiff(toText(theirs.spec, format), mine, { labels: [`version ${theirs.version}`, "your edits"] }));
    }
    const keep = h("button", { type: "button", class: "primary" }, theirs ? `Keep my edits, review against version ${theirs.version}` : "Keep my edits");
    const discard = theirs ? h("button", { type: "button" }, `Discard my edits, load version ${theirs.version}`) : null;
    keep.addEventListener("click", () => {
      base = theirs;
      banner.replaceChildren();
      review.replaceChildren();
      reviewButton.focus();
    });
    discard?.addEventListener("click", () => {
      base = theirs;
      editor.text = toText(theirs.spec, format);
      dirty = false;
      banner.replaceChildren();
      review.replaceChildren();
      editor.area.focus();
    });
    review.replaceChildren(h("section", { class: "conflict notice notice-error", role: "alert", "aria-labelledby": "conflict-title" }, ...parts, h("div", { class: "row" }, keep, discard)));
    keep.focus();
  }

  const form = h(
    "form",
    { class: "edit-form", novalidate: true },
    creating
      ? h("div", { class: "field" }, h("label", { for: "doc-name" }, "Name"), nameInput, h("p", { id: "doc-name-help", class: "help" }, "Lowercase letters, digits, '.', '_', '-'; e.g. chat-models."))
      : null,
    h("div", { class: "field-row" }, h("div", { class: "field" }, h("label", { for: "doc-kind" }, "Kind"), kindSelect), h("div", { class: "field" }, h("span", { class: "label" }, "Edit as"), formatToggle)),
    h("div", { class: "field" }, h("label", { for: "spec-text" }, "Spec"), editor.element, h("p", { id: "spec-text-help", class: "help" }, me.secrets ? "Secret values are shown in clear: your token may read them." : "Secret values show as ****; leave **** to keep a secret as it is stored."), problems),
    h("div", { class: "field" }, h("label", { for: "doc-message" }, "Message"), messageInput),
    h("div", { class: "row" }, checkButton, reviewButton, h("a", { href: creating ? link.namespace(ns) : link.doc(ns, name) }, "Cancel")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    reviewButton.disabled = true;
    try {
      const result = await check();
      if (!result) return;
      if (result.answer.changed === false) {
        review.replaceChildren(notice("info", "No changes: the spec equals the stored one, so there is nothing to save."));
        return;
      }
      const saveButton = h("button", { type: "button", class: "primary" }, creating ? `Create ${result.target}` : `Save version ${base.version + 1}`);
      const back = h("button", { type: "button" }, "Back to editing");
      saveButton.addEventListener("click", () => {
        saveButton.disabled = true;
        save(result);
      });
      back.addEventListener("click", () => {
        review.replaceChildren();
        editor.area.focus();
      });
      review.replaceChildren(
        h(
          "section",
          { class: "panel", "aria-labelledby": "review-title" },
          h("h2", { id: "review-title" }, "Review the change"),
          base ? renderDiff(toText(base.spec, format), toText(result.answer.spec, format), { labels: [`version ${base.version}`, "your edits"] }) : h("pre", { class: "code" }, toText(result.answer.spec, format)),
          h("div", { class: "row" }, saveButton, back),
        ),
      );
      saveButton.focus();
    } finally {
      reviewButton.disabled = false;
    }
  });

  main.replaceChildren(
    nsCrumbs(ns, ...(creating ? [["new document"]] : [[name, link.doc(ns, name)], ["edit"]])),
    pageHeader(title, { sub: base ? `Editing version ${base.version} (${base.kind}), saved by ${base.updated_by}.` : "Pick a kind, write the spec, check it, then save." }),
    banner,
    h("div", { class: "edit-layout" }, h("div", {}, form, review), h("aside", {}, schemaRef)),
  );
  loadSchema();
  (creating ? nameInput : editor.area).focus({ preventScroll: true });

  if (!creating) {
    const stop = watch(ns, (type, data) => {
      if (type === "put" && data.name === name && base && data.version > base.version) {
        banner.replaceChildren(notice("warn", `Version ${data.version} was saved by ${data.updated_by} while you were editing${data.message ? ` (“${data.message}”)` : ""}. Saving now will report a conflict and show their change.`));
      } else if (type === "delete" && data.name === name) {
        banner.replaceChildren(notice("warn", "This document was deleted while you were editing. Saving would report a conflict."));
      }
    });
    signal.addEventListener("abort", stop);
  }
}
