// The documents of a namespace, kept up to date by the namespace's watch stream.

import { api, paths } from "../api.js";
import { announce, h, timeEl } from "../dom.js";
import { watch } from "../live.js";
import { link } from "../router.js";
import { can, me } from "../session.js";
import { emptyState, errorBlock, loading, nsCrumbs, pageHeader } from "./common.js";

function row(ns, doc) {
  return h(
    "tr",
    { dataset: { name: doc.name } },
    h("th", { scope: "row" }, h("a", { href: link.doc(ns, doc.name) }, doc.name)),
    h("td", {}, h("span", { class: "badge" }, doc.kind)),
    h("td", { class: "num" }, String(doc.version)),
    h("td", {}, doc.updated_by),
    h("td", {}, timeEl(doc.updated_at)),
    h("td", { class: "message" }, doc.message || h("span", { class: "muted" }, "—")),
  );
}

export async function namespaceView(main, { params, signal }) {
  const { ns } = params;
  const writable = can("writer", ns);
  const body = h("div", {}, loading());
  main.replaceChildren(
    nsCrumbs(ns),
    pageHeader(ns, {
      sub: "Documents of this namespace. Changes appear here as they are saved.",
      actions: [
        writable ? h("a", { class: "button primary", href: link.create(ns) }, "New document") : null,
        h("a", { class: "button", href: link.fleet(ns) }, "Fleet"),
      ],
    }),
    body,
  );
  if (!can("reader", ns)) {
    body.replaceChildren(errorBlock({ status: 403, message: `token ${me.name} may not access namespace ${ns}`, details: [] }, "open this namespace"));
    return;
  }
  const docs = new Map();
  let listing;
  try {
    listing = (await api.get(paths.configs(ns))).data;
  } catch (error) {
    body.replaceChildren(errorBlock(error, `list the documents of ${ns}`));
    return;
  }
  if (signal.aborted) return;
  for (const doc of listing.items) docs.set(doc.name, doc);

  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "docs" },
    h("caption", { class: "visually-hidden" }, `Documents of ${ns}`),
    h("thead", {}, h("tr", {}, ["Name", "Kind", "Version", "Updated by", "Updated", "Message"].map((label) => h("th", { scope: "col" }, label)))),
    tbody,
  );
  const render = (changed) => {
    if (!docs.size) {
      body.replaceChildren(
        emptyState(`No documents in ${ns} yet.`, writable ? h("p", {}, h("a", { href: link.create(ns) }, "Create the first document"), ".") : h("p", {}, "Documents appear here as soon as someone saves one.")),
      );
      return;
    }
    const rows = [...docs.values()].sort((a, b) => a.name.localeCompare(b.name)).map((doc) => row(ns, doc));
    tbody.replaceChildren(...rows);
    if (changed) {
      const updated = tbody.querySelector(`tr[data-name="${CSS.escape(changed)}"]`);
      if (updated) updated.classList.add("flash");
    }
    if (!table.isConnected) body.replaceChildren(h("div", { class: "scroll-x" }, table));
  };
  render();

  const stop = watch(ns, (type, data) => {
    if (type === "snapshot") {
      docs.clear();
      for (const doc of data.items) docs.set(doc.name, doc);
      render();
    } else if (type === "put") {
      const isNew = !docs.has(data.name);
      docs.set(data.name, data);
      render(data.name);
      announce(`${data.name} ${isNew ? "created" : "updated"}: version ${data.version} by ${data.updated_by}`);
    } else if (type === "delete") {
      docs.delete(data.name);
      render();
      announce(`${data.name} deleted`);
    }
  });
  signal.addEventListener("abort", stop);
}
