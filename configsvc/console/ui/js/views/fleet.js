// The fleet of a namespace: every SDK instance that reports, what it applied, what it
// rejected (GET /v1/fleet?namespace=), refreshed while the page is open.

import { api, paths } from "../api.js";
import { h, notice, timeEl } from "../dom.js";
import { link } from "../router.js";
import { emptyState, errorBlock, loading, nsCrumbs, pageHeader } from "./common.js";

const REFRESH_MS = 5000;

function instanceRow(ns, item) {
  const documents = Object.entries(item.documents || {});
  const rejected = Object.entries(item.rejected || {});
  const labels = Object.entries(item.labels || {}).map(([key, value]) => `${key}=${value}`);
  return h(
    "tr",
    {},
    h("th", { scope: "row" }, h("code", {}, item.instance)),
    h("td", {}, item.app || "—", labels.length ? h("div", { class: "muted" }, labels.join(", ")) : null),
    h("td", {}, item.mode || "—"),
    h("td", {}, timeEl(item.last_seen)),
    h(
      "td",
      {},
      documents.length
        ? h("ul", { class: "plain" }, documents.map(([ref, entry]) => {
            const name = ref.split("/")[1];
            return h("li", {}, h("a", { href: link.doc(ns, name) }, ref), ` v${entry.version}`);
          }))
        : h("span", { class: "muted" }, "—"),
    ),
    h("td", {}, rejected.length ? h("ul", { class: "plain bad" }, rejected.map(([ref, entry]) => h("li", {}, `${ref} v${entry.version}: ${entry.error}`))) : h("span", { class: "muted" }, "none")),
  );
}

export async function fleetView(main, { params, signal }) {
  const { ns } = params;
  const body = h("div", { "aria-live": "polite" }, loading());
  main.replaceChildren(nsCrumbs(ns, ["fleet"]), pageHeader(`Fleet of ${ns}`, { sub: "SDK instances that read this namespace, and the versions they applied." }), body);
  let timer = null;
  const load = async () => {
    timer = null;
    let items;
    try {
      items = (await api.get(paths.fleet(), { query: { namespace: ns } })).data.items;
    } catch (error) {
      if (signal.aborted) return;
      if (error.routeMissing) {
        body.replaceChildren(notice("info", "Fleet reporting is not available on this service."));
        return;
      }
      body.replaceChildren(errorBlock(error, "read the fleet"));
      timer = setTimeout(load, REFRESH_MS);
      return;
    }
    if (signal.aborted) return;
    body.replaceChildren(
      items.length
        ? h(
            "div",
            { class: "scroll-x" },
            h(
              "table",
              { class: "fleet" },
              h("caption", { class: "visually-hidden" }, `Instances reading ${ns}`),
              h("thead", {}, h("tr", {}, ["Instance", "App", "Mode", "Last seen", "Applied", "Rejected"].map((label) => h("th", { scope: "col" }, label)))),
              h("tbody", {}, items.map((item) => instanceRow(ns, item))),
            ),
          )
        : emptyState(`No instance reports ${ns} right now.`, h("p", {}, "SDK clients report once they start with an app name; an instance that stops reporting leaves this list.")),
    );
    timer = setTimeout(load, REFRESH_MS);
  };
  signal.addEventListener("abort", () => clearTimeout(timer));
  await load();
}
