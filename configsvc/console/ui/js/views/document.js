// A document: its spec (secrets as **** unless the token may read them), its history with
// messages and actions, any version, a diff between two versions, roll back, its staged
// rollout and its fleet. It follows the namespace's watch stream: a new version appears
// without a reload.

import { api, paths } from "../api.js";
import { actionLabel, announce, h, notice, timeEl } from "../dom.js";
import { renderDiff } from "../diff.js";
import { watch } from "../live.js";
import { go, link } from "../router.js";
import { can, me } from "../session.js";
import { toText } from "../text.js";
import { emptyState, errorBlock, loading, nsCrumbs, openDialog, pageHeader } from "./common.js";
import { fleetPanel } from "./fleetpanel.js";
import { rolloutPanel } from "./rolloutpanel.js";

const view = { format: "yaml", diffMode: "unified" };

/** "7 versions, newest first"; a rollout's transitions are rows of its candidate's version. */
function historyCount(items) {
  const versions = new Set(items.map((item) => item.version)).size;
  const rows = items.length > versions ? ` (${items.length} entries)` : "";
  return `${versions} version${versions === 1 ? "" : "s"}${rows}, newest first`;
}

function formatToggle(name, current, onChange, options = [["yaml", "YAML"], ["json", "JSON"]]) {
  return h(
    "fieldset",
    { class: "toggle" },
    h("legend", { class: "visually-hidden" }, name),
    options.map(([value, label]) => {
      const id = `${name.replace(/\W+/g, "-")}-${value}`;
      return [
        h("input", { type: "radio", id, name, value, checked: value === current, onchange: () => onChange(value) }),
        h("label", { for: id }, label),
      ];
    }),
  );
}

function metaLine(doc) {
  return h(
    "dl",
    { class: "meta" },
    h("div", {}, h("dt", {}, "Kind"), h("dd", {}, h("a", { class: "badge", href: link.kind(doc.kind) }, doc.kind))),
    h("div", {}, h("dt", {}, "Version"), h("dd", { class: "version" }, String(doc.version))),
    h("div", {}, h("dt", {}, "Updated by"), h("dd", {}, doc.updated_by)),
    h("div", {}, h("dt", {}, "Updated"), h("dd", {}, timeEl(doc.updated_at))),
    h("div", { class: "wide" }, h("dt", {}, "Message"), h("dd", {}, doc.message || h("span", { class: "muted" }, "(none)"))),
  );
}

function specBlock(spec, label) {
  return h("pre", { class: "code spec", tabindex: "0", "aria-label": label }, toText(spec, view.format));
}

/** The document page. */
export async function documentView(main, { params, signal }) {
  const { ns, name } = params;
  const state = { doc: null, deleted: null, history: [], versions: new Map() };
  const writable = can("writer", ns);
  const banner = h("div", { class: "banner", "aria-live": "polite" });
  const header = h("div");
  const specSection = h("section", { class: "panel", "aria-labelledby": "spec-title" });
  const historySection = h("section", { class: "panel", "aria-labelledby": "history-title" });
  const compareSection = h("section", { class: "panel", "aria-labelledby": "compare-title", id: "compare" });
  const fleetSection = h("section", { class: "panel", "aria-labelledby": "fleet-title" });
  const layout = h("div", { class: "doc-layout" }, h("div", { class: "col-main" }, specSection, compareSection), h("div", { class: "col-side" }, historySection, fleetSection));
  main.replaceChildren(nsCrumbs(ns, [name]), header, banner, loading());

  async function version(v) {
    if (state.doc && Number(v) === state.doc.version) return state.doc;
    if (!state.versions.has(v)) {
      state.versions.set(v, (await api.get(paths.version(ns, name, v))).data);
    }
    return state.versions.get(v);
  }

  async function loadHistory() {
    state.history = (await api.get(paths.history(ns, name))).data.items;
  }

  try {
    const [docResult] = await Promise.allSettled([api.get(paths.doc(ns, name)), loadHistory()]);
    if (docResult.status === "fulfilled") state.doc = docResult.value.data;
    else if (docResult.reason.status !== 404) throw docResult.reason;
  } catch (error) {
    main.replaceChildren(nsCrumbs(ns, [name]), pageHeader(name), errorBlock(error, `open ${ns}/${name}`));
    return;
  }
  if (signal.aborted) return;
  if (!state.doc && !state.history.length) {
    main.replaceChildren(
      nsCrumbs(ns, [name]),
      pageHeader(name),
      emptyState(`There is no document ${ns}/${name}.`, writable ? h("p", {}, h("a", { href: link.create(ns) }, `Create a document in ${ns}`), ".") : null),
    );
    return;
  }
  // while a rollout runs or is paused, writes of the document answer 409: none is offered
  let rolloutActive = false;
  const rollout = rolloutPanel(ns, name, {
    signal,
    writable,
    onChange: () => refresh(),
    onActive: (active) => {
      if (active === rolloutActive) return;
      rolloutActive = active;
      renderHeader();
      renderHistory();
      renderSpec();
    },
  });
  layout.querySelector(".col-main").prepend(rollout.section);
  main.replaceChildren(nsCrumbs(ns, [name]), header, banner, layout);

  function renderHeader() {
    const doc = state.doc;
    const actions = [];
    if (doc && writable && !rolloutActive) actions.push(h("a", { class: "button primary", href: link.edit(ns, name) }, "Edit"));
    if (doc && state.history.length > 1) {
      actions.push(h("button", { type: "button", onclick: () => { compareSection.scrollIntoView(); compareSection.querySelector("select")?.focus(); } }, "Compare versions"));
    }
    header.replaceChildren(
      pageHeader(name, { sub: doc ? null : "This document is deleted; its history is kept.", actions }),
      doc ? metaLine(doc) : null,
    );
  }

  async function renderSpec() {
    const viewing = params.version ? Number(params.version) : null;
    const parts = [h("div", { class: "panel-head" }, h("h2", { id: "spec-title" }, viewing ? `Version ${viewing}` : "Spec"), formatToggle("Spec format", view.format, (value) => { view.format = value; renderSpec(); renderCompare(); }))];
    if (!me.secrets) parts.push(h("p", { class: "help" }, "Secret values show as **** (your token may not read them)."));
    if (viewing) {
      let old;
      try {
        old = await version(viewing);
      } catch (error) {
        specSection.replaceChildren(...parts, errorBlock(error, `read version ${viewing}`));
        return;
      }
      const current = state.doc ? state.doc.version : null;
      parts.push(
        notice(
          "info",
          h("p", {}, `You are looking at version ${viewing}`, current ? ` (current: ${current})` : "", `, saved by ${old.updated_by} `, timeEl(old.updated_at), old.message ? ` — “${old.message}”` : "", "."),
          h(
            "p",
            { class: "row" },
            h("a", { href: link.doc(ns, name) }, "Back to the current version"),
            current && current !== viewing ? h("a", { href: link.diff(ns, name, viewing, current) }, `Diff with version ${current}`) : null,
            writable && !rolloutActive && current !== viewing ? h("button", { type: "button", onclick: () => rollbackDialog(viewing) }, `Roll back to version ${viewing}`) : null,
          ),
        ),
        specBlock(old.spec, `Spec of version ${viewing}`),
      );
    } else if (state.doc) {
      parts.push(specBlock(state.doc.spec, "Current spec"));
    } else {
      parts.push(notice("warn", `This document is deleted. Pick a version in the history to see what it held${writable ? ", or roll back to one to bring the document back" : ""}.`));
    }
    specSection.replaceChildren(...parts);
  }

  function renderHistory() {
    const current = state.doc ? state.doc.version : null;
    const entries = state.history.map((item) => {
      const viewable = item.action !== "delete";
      const isCurrent = item.version === current;
      return h(
        "li",
        { class: isCurrent ? "current" : "", dataset: { version: item.version } },
        h(
          "div",
          { class: "h-top" },
          viewable ? h("a", { class: "h-version", href: link.version(ns, name, item.version), "aria-label": `View version ${item.version}` }, `v${item.version}`) : h("span", { class: "h-version" }, `v${item.version}`),
          h("span", { class: `action action-${item.action}` }, actionLabel(item.action)),
          h("span", { class: "h-by" }, item.updated_by),
          timeEl(item.updated_at),
          isCurrent ? h("span", { class: "h-current" }, "current") : null,
        ),
        h("p", { class: "h-message" }, item.message || h("span", { class: "muted" }, "no message")),
        viewable && current && !isCurrent
          ? h(
              "div",
              { class: "h-actions" },
              h("a", { href: link.diff(ns, name, item.version, current), "aria-label": `Diff version ${item.version} with the current version` }, "diff with current"),
              writable && !rolloutActive ? h("button", { type: "button", class: "small", "aria-label": `Roll back to version ${item.version}`, onclick: () => rollbackDialog(item.version) }, "roll back to this") : null,
            )
          : null,
      );
    });
    historySection.replaceChildren(
      h("div", { class: "panel-head" }, h("h2", { id: "history-title" }, "History"), h("span", { class: "muted" }, historyCount(state.history))),
      h("div", { class: "scroll-y", tabindex: "0", role: "region", "aria-label": "History" }, h("ol", { class: "history", "aria-labelledby": "history-title" }, entries)),
    );
  }

  async function renderCompare() {
    // a rollout's candidate has one history row per transition: one choice per version
    const choices = [...new Set(state.history.filter((item) => item.action !== "delete").map((item) => item.version))];
    if (choices.length < 2) {
      compareSection.replaceChildren(h("h2", { id: "compare-title" }, "Compare versions"), h("p", { class: "muted" }, "There is only one version so far."));
      return;
    }
    const to = params.to ? Number(params.to) : choices[0];
    const from = params.from ? Number(params.from) : choices[1];
    const select = (id, label, value) =>
      h("label", { for: id }, label, h("select", { id }, choices.map((v) => h("option", { value: v, selected: v === value }, `version ${v}${state.doc && v === state.doc.version ? " (current)" : ""}`))));
    const output = h("div", { class: "diff-output" }, loading("Computing the diff…"));
    const form = h(
      "form",
      { class: "compare-form" },
      select("diff-from", "From ", from),
      select("diff-to", "To ", to),
      formatToggle("Diff layout", view.diffMode, (value) => { view.diffMode = value; renderCompare(); }, [["unified", "Unified"], ["split", "Side by side"]]),
      h("button", { type: "submit" }, "Show diff"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      go(link.diff(ns, name, form.querySelector("#diff-from").value, form.querySelector("#diff-to").value));
    });
    compareSection.replaceChildren(h("h2", { id: "compare-title" }, "Compare versions"), form, output);
    try {
      const [a, b] = await Promise.all([version(from), version(to)]);
      output.replaceChildren(renderDiff(toText(a.spec, view.format), toText(b.spec, view.format), { mode: view.diffMode, labels: [`version ${from}`, `version ${to}`] }));
    } catch (error) {
      output.replaceChildren(errorBlock(error, "compute the diff"));
    }
  }

  async function rollbackDialog(target) {
    const old = await version(target);
    const message = h("input", { id: "rollback-message", value: `rollback to version ${target}`, maxlength: 1000 });
    const body = h(
      "div",
      {},
      h("p", {}, `This writes a new version whose spec equals version ${target}'s (saved by ${old.updated_by}). It is validated against today's schema.`),
      state.doc ? renderDiff(toText(state.doc.spec, view.format), toText(old.spec, view.format), { labels: [`current (version ${state.doc.version})`, `version ${target}`] }) : null,
      h("label", { for: "rollback-message" }, "Message (kept in history)"),
      message,
    );
    const result = await openDialog({
      title: `Roll back ${name} to version ${target}`,
      body,
      confirmLabel: "Roll back",
      onConfirm: async () => (await api.post(paths.rollback(ns, name), { to_version: target, message: message.value.trim() || undefined })).data,
    });
    if (result) {
      announce(`Rolled back: version ${result.version} equals version ${target}`);
      banner.replaceChildren(notice("ok", `Rolled back: version ${result.version} now equals version ${target}.`));
      go(link.doc(ns, name));
    }
  }

  renderHeader();
  await Promise.all([renderSpec(), renderCompare()]);
  renderHistory();
  fleetSection.append(fleetPanel(ns, name, signal));
  if (params.from) compareSection.scrollIntoView();

  async function refresh(note) {
    try {
      await loadHistory();
    } catch {
      // keep the history shown; the next change refreshes it
    }
    if (signal.aborted) return;
    renderHeader();
    renderHistory();
    await Promise.all([renderSpec(), params.from ? Promise.resolve() : renderCompare()]);
    if (note) banner.replaceChildren(notice("info", note));
  }

  const stop = watch(ns, (type, data) => {
    if (type === "snapshot" || data.name === name) rollout.refresh();
    if (type === "put" && data.name === name) {
      if (state.doc && data.version <= state.doc.version) return;
      state.doc = data;
      state.versions.set(data.version, data);
      announce(`${name} is now at version ${data.version}, saved by ${data.updated_by}`);
      refresh(`Version ${data.version} arrived: saved by ${data.updated_by}${data.message ? ` — “${data.message}”` : ""}.`);
      header.querySelector(".version")?.classList.add("flash");
    } else if (type === "delete" && data.name === name) {
      state.doc = null;
      state.deleted = data;
      announce(`${name} was deleted`);
      refresh("This document was just deleted.");
    } else if (type === "snapshot") {
      const found = data.items.find((doc) => doc.name === name) || null;
      if (found?.version !== state.doc?.version) {
        state.doc = found;
        refresh(found ? `Now at version ${found.version}.` : "This document is deleted.");
      }
    }
  });
  signal.addEventListener("abort", stop);
}
