// Which instances of the fleet run which version of a document (GET .../fleet), refreshed
// while the page is open. A service without fleet reporting says so, once, and is not asked
// again.

import { api, paths } from "../api.js";
import { h, notice } from "../dom.js";
import { errorBlock } from "./common.js";

const REFRESH_MS = 5000;

function bars(summary) {
  const entries = Object.entries(summary.on_version || {}).sort((a, b) => Number(b[0]) - Number(a[0]));
  const total = summary.instances || 0;
  return h(
    "ul",
    { class: "fleet-bars" },
    entries.map(([version, count]) => {
      const fill = h("span", { class: Number(version) === summary.version ? "fill current" : "fill" });
      fill.style.width = `${total ? Math.round((100 * count) / total) : 0}%`;
      return h(
        "li",
        {},
        h("span", { class: "label" }, `version ${version}${Number(version) === summary.version ? " (current)" : ""}`),
        h("span", { class: "bar", "aria-hidden": "true" }, fill),
        h("span", { class: "count" }, `${count} of ${total}`),
      );
    }),
  );
}

function summaryView(summary) {
  const total = summary.instances || 0;
  if (!total) {
    return h("p", { class: "muted" }, "No instance reports this document yet. SDK clients report once they start (ConfigClient with an app name).");
  }
  const onCurrent = (summary.on_version || {})[String(summary.version)] || 0;
  const lag = summary.lag_ms;
  return h(
    "div",
    {},
    h("p", { class: onCurrent === total ? "fleet-ok" : "fleet-pending" }, `${onCurrent} of ${total} instances run version ${summary.version}.`),
    bars(summary),
    lag && lag.p50 !== null && lag.p50 !== undefined ? h("p", { class: "help" }, `Time to apply version ${summary.version}: median ${lag.p50} ms, slowest ${lag.max} ms.`) : null,
    summary.rejected && summary.rejected.length
      ? notice(
          "error",
          h("p", {}, `${summary.rejected.length} instance(s) rejected a version:`),
          h("ul", {}, summary.rejected.map((item) => h("li", {}, h("code", {}, item.instance), ` version ${item.version}: ${item.error}`))),
        )
      : null,
  );
}

/** The fleet panel of document ns/name; it stops refreshing when `signal` aborts. */
export function fleetPanel(ns, name, signal) {
  const body = h("div", { "aria-live": "polite" }, h("p", { class: "muted" }, "Asking the fleet…"));
  const panel = h("div", {}, h("div", { class: "panel-head" }, h("h2", { id: "fleet-title" }, "Fleet")), body);
  let timer = null;
  const load = async () => {
    timer = null;
    try {
      const summary = (await api.get(paths.docFleet(ns, name))).data;
      if (signal.aborted) return;
      body.replaceChildren(summaryView(summary));
    } catch (error) {
      if (signal.aborted) return;
      if (error.routeMissing) {
        body.replaceChildren(h("p", { class: "muted" }, "Fleet reporting is not available on this service."));
        return;
      }
      body.replaceChildren(errorBlock(error, "read the fleet"));
    }
    if (!signal.aborted) timer = setTimeout(load, REFRESH_MS);
  };
  load();
  signal.addEventListener("abort", () => clearTimeout(timer));
  return panel;
}
