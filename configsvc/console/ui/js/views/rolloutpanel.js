// The staged rollout of a document (GET .../rollouts/current): its state, step and percent,
// the candidate against the base version, its plan and how the chosen instances fare; for
// writers, pause, resume, promote and abort. The latest rollout only: one that ended shows
// in a line or two. The watch stream says nothing of a rollout's start, steps, pauses or
// aborts to a stream that names no SDK instance, so while the page is visible the panel asks
// again every few seconds while one is running or paused, every half minute otherwise (a
// rollout started elsewhere), and when the page sees a change of the document (`refresh`).

import { api, paths } from "../api.js";
import { announce, h, notice, replace, timeEl } from "../dom.js";
import { link } from "../router.js";
import { errorBlock, openDialog } from "./common.js";

const REFRESH_MS = 5000;
const IDLE_REFRESH_MS = 30000;
const ACTIVE = new Set(["running", "paused"]);
const STATE_LABEL = { running: "running", paused: "paused", done: "promoted", aborted: "aborted" };
const ACTIONS = {
  running: ["pause", "promote", "abort"],
  paused: ["resume", "promote", "abort"],
};
const AUTOMATIC = "configsvc:rollouts";
const DEFAULT_MIN_CALLS = 20;

/** "50", "12.5": a percentage as the service writes it. */
function pct(value) {
  return String(Math.round(Number(value) * 100) / 100);
}

/** "30 s", "5 min", "2 h", "3 days": how long a step lasts. */
function duration(seconds) {
  const units = [["day", 86400], ["h", 3600], ["min", 60]];
  for (const [unit, size] of units) {
    if (seconds >= 2 * size || (unit !== "day" && seconds >= size && seconds % size === 0)) {
      const count = Math.round((seconds / size) * 10) / 10;
      return unit === "day" ? `${count} day${count === 1 ? "" : "s"}` : `${count} ${unit}`;
    }
  }
  return `${pct(seconds)} s`;
}

function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

function lastTransition(rollout) {
  const items = rollout.transitions || [];
  return items.length ? items[items.length - 1] : null;
}

/** Why it is paused or was aborted: `reason` (set while paused and once aborted; an older
 * service set it for aborts only, and a pause's reason is also in its transition's message,
 * "paused: <reason>"). */
function reasonOf(rollout) {
  if (rollout.state === "aborted" || rollout.reason) return rollout.reason || null;
  const last = lastTransition(rollout);
  if (rollout.state === "paused" && last && last.action === "paused") {
    const match = /^paused: ([\s\S]+)$/.exec(last.message || "");
    return match ? match[1] : null;
  }
  return null;
}

function byWhom(name) {
  return name === AUTOMATIC ? "the service" : name;
}

function labelsText(labels) {
  const entries = Object.entries(labels || {});
  if (!entries.length) return h("span", {}, "every instance");
  return h("span", {}, "instances labelled ", entries.map(([key, value], index) => [index ? ", " : "", h("code", {}, `${key}=${value}`)]));
}

function abortRule(rollout) {
  const rule = rollout.abort_on || {};
  const parts = [];
  if (rule.rejected) parts.push(`${plural(rule.rejected, "chosen instance")} reject${rule.rejected === 1 ? "s" : ""} version ${rollout.version}`);
  if (rule.error_rate) parts.push(`at least ${pct(rule.error_rate * 100)} % of the chosen instances' calls fail (once they made ${rule.min_calls ?? DEFAULT_MIN_CALLS} or more)`);
  return parts.length ? `when ${parts.join(", or when ")}` : "only by hand";
}

function item(label, ...value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, ...value));
}

function versionsLine(ns, name, rollout) {
  return h(
    "p",
    { class: "rollout-versions" },
    "Candidate ",
    h("a", { href: link.version(ns, name, rollout.version) }, `version ${rollout.version}`),
    ` over version ${rollout.base_version}`,
    rollout.message ? ` — “${rollout.message}”` : "",
    " · ",
    h("a", { href: link.diff(ns, name, rollout.base_version, rollout.version), "aria-label": `Diff version ${rollout.base_version} with candidate version ${rollout.version}` }, `diff ${rollout.base_version} → ${rollout.version}`),
  );
}

function progress(rollout) {
  const total = rollout.steps.length;
  const prefix = rollout.state === "aborted" ? "Stopped at step" : "Step";
  const fill = h("span", { class: "fill" });
  fill.style.width = `${Math.max(0, Math.min(100, Number(rollout.percent)))}%`;
  return h(
    "div",
    { class: "rollout-progress" },
    h("p", { class: "rollout-step" }, `${prefix} ${rollout.step} of ${total}: ${pct(rollout.percent)} %`),
    h("span", { class: "bar", "aria-hidden": "true" }, fill),
    h(
      "ol",
      { class: "rollout-steps", "aria-label": "Steps" },
      rollout.steps.map((percent, index) =>
        h("li", { class: index + 1 === rollout.step ? "now" : index + 1 < rollout.step ? "past" : "", "aria-current": index + 1 === rollout.step ? "step" : null }, `${pct(percent)} %`),
      ),
    ),
  );
}

function nextStep(rollout) {
  if (rollout.state === "paused") return h("span", { class: "muted" }, "none while paused");
  if (!rollout.next_step_at) return h("span", { class: "muted" }, "—");
  const next = rollout.steps[rollout.step];
  const what = next === undefined || rollout.step + 1 >= rollout.steps.length ? "promotion to every instance" : `${pct(next)} %`;
  return h("span", {}, `${what}, `, timeEl(rollout.next_step_at));
}

function fleetBlock(rollout) {
  const fleet = rollout.fleet || {};
  if (!fleet.instances) {
    return h("p", { class: "muted" }, "No instance reports this document yet: the counts come from the SDK instances' reports.");
  }
  const rejected = fleet.rejected || [];
  const counts = [
    `${fleet.chosen} of ${plural(fleet.instances, "instance")} chosen`,
    `${fleet.on_candidate} on version ${rollout.version}`,
    `${rejected.length} rejected`,
  ];
  return h(
    "div",
    {},
    h("p", { class: "rollout-fleet" }, counts.join(" · ")),
    fleet.error_rate !== null && fleet.error_rate !== undefined
      ? h("p", { class: "help" }, `Error rate on version ${rollout.version}: ${pct(fleet.error_rate * 100)} % (${fleet.failures} of ${plural(fleet.tries, "call")} failed).`)
      : null,
    rejected.length
      ? notice("error", h("p", {}, `Rejected version ${rollout.version}:`), h("ul", {}, rejected.map((entry) => h("li", {}, h("code", {}, entry.instance), `: ${entry.error}`))))
      : null,
  );
}

function reasonBlock(rollout) {
  const reason = reasonOf(rollout);
  if (!reason) return null;
  return notice(rollout.state === "aborted" ? "error" : "warn", h("p", { class: "rollout-reason" }, h("strong", {}, "Reason: "), reason));
}

function stateBadge(rollout) {
  return h("span", { class: `rollout-state state-${rollout.state}`, dataset: { state: rollout.state } }, STATE_LABEL[rollout.state] || rollout.state);
}

/** A selector for the button or link of `root` that has the focus, or null. */
function focusKey(root) {
  const el = document.activeElement;
  if (!el || !root.contains(el)) return null;
  if (el.dataset.action) return `button[data-action="${CSS.escape(el.dataset.action)}"]`;
  const href = el.getAttribute("href");
  return href ? `a[href="${CSS.escape(href)}"]` : null;
}

/** The panel of document ns/name. Answers {section, refresh}: `refresh()` asks the service
 * again (the page calls it when the live stream shows a change of the document); `onChange`
 * is called when the rollout moved on (a transition, or another rollout) since last shown;
 * `onActive(running or paused)` with each answer. */
export function rolloutPanel(ns, name, { signal, writable, onChange, onActive }) {
  const body = h("div");
  const title = h("h2", { id: "rollout-title", tabindex: "-1" }, "Rollout");
  const head = h("div", { class: "panel-head" }, title);
  const section = h("section", { class: "panel rollout", "aria-labelledby": "rollout-title", hidden: true }, head, body);
  let shown = null;
  let shownText = "";
  let timer = null;
  let gone = false;
  let loading = false;
  let again = false;

  const active = () => shown !== null && ACTIVE.has(shown.state);

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (gone || signal.aborted || document.hidden) return;
    timer = setTimeout(load, active() ? REFRESH_MS : IDLE_REFRESH_MS);
  }

  function actionButtons(rollout) {
    if (!writable) return null;
    const names = ACTIONS[rollout.state] || [];
    if (!names.length) return null;
    const labels = { pause: "Pause", resume: "Resume", promote: "Promote now", abort: "Abort" };
    return h(
      "div",
      { class: "row rollout-actions" },
      names.map((action) => h("button", { type: "button", class: action === "abort" ? "danger" : "", dataset: { action }, onclick: () => act(action) }, labels[action])),
    );
  }

  function renderActive(rollout) {
    const last = lastTransition(rollout);
    return [
      versionsLine(ns, name, rollout),
      progress(rollout),
      reasonBlock(rollout),
      h(
        "dl",
        { class: "meta rollout-meta" },
        item("Started", `by ${byWhom(rollout.started_by)} `, timeEl(rollout.started_at)),
        last && last.action !== "started" ? item("Last change", `${last.action === "step" ? last.message : last.action} by ${byWhom(last.by)} `, timeEl(last.at)) : null,
        item("Next step", nextStep(rollout)),
        item("Each step", duration(rollout.step_seconds)),
        item("Applies to", labelsText(rollout.match && rollout.match.labels)),
        item("Aborts", abortRule(rollout)),
      ),
      h("h3", {}, "Chosen instances"),
      fleetBlock(rollout),
      actionButtons(rollout),
      writable ? h("p", { class: "help" }, "While the rollout runs or is paused, saving, rolling back or deleting this document is refused.") : null,
    ];
  }

  function renderEnded(rollout) {
    const last = lastTransition(rollout);
    return [
      versionsLine(ns, name, rollout),
      h(
        "p",
        { class: "rollout-ended" },
        rollout.state === "aborted" ? `Aborted at step ${rollout.step} of ${rollout.steps.length} (${pct(rollout.percent)} %)` : `Promoted to every instance`,
        last ? [` by ${byWhom(last.by)} `, timeEl(last.at)] : "",
        `; started by ${byWhom(rollout.started_by)} `,
        timeEl(rollout.started_at),
        ".",
      ),
      reasonBlock(rollout),
    ];
  }

  function render(rollout) {
    const text = JSON.stringify(rollout);
    if (text === shownText) return;
    const before = shown;
    const focused = focusKey(section);
    shown = rollout;
    shownText = text;
    section.hidden = false;
    section.dataset.state = rollout.state;
    head.replaceChildren(title, h("span", { class: "rollout-head" }, ACTIVE.has(rollout.state) ? "" : h("span", { class: "muted" }, "last rollout "), stateBadge(rollout)));
    replace(body, ACTIVE.has(rollout.state) ? renderActive(rollout) : renderEnded(rollout));
    onActive?.(ACTIVE.has(rollout.state));
    if (focused) body.querySelector(focused)?.focus(); // a refresh keeps the keyboard's place
    if (before && (before.id !== rollout.id || before.revision !== rollout.revision)) {
      if (before.state !== rollout.state || before.id !== rollout.id) announce(`Rollout of ${name}: ${STATE_LABEL[rollout.state] || rollout.state}`);
      onChange?.(rollout);
    }
  }

  /** Show `rollout` unless an answer about a newer transition is shown already. */
  function show(rollout) {
    if (shown && shown.id === rollout.id && rollout.revision < shown.revision) return;
    render(rollout);
  }

  async function ask() {
    try {
      const rollout = (await api.get(paths.rollout(ns, name))).data;
      if (!signal.aborted) show(rollout);
    } catch (error) {
      if (signal.aborted) return;
      if (error.routeMissing) {
        gone = true; // a service without rollouts: not asked again
        section.hidden = true;
      } else if (error.status === 404) {
        shown = null; // the document never had a rollout
        onActive?.(false);
        shownText = "";
        section.hidden = true;
      } else {
        section.hidden = false;
        body.replaceChildren(errorBlock(error, "read the rollout"));
        shownText = "";
      }
    }
  }

  async function load() {
    clearTimeout(timer);
    timer = null;
    if (gone || signal.aborted) return;
    if (loading) {
      again = true; // asked while a call is under way: ask once more when it ends
      return;
    }
    loading = true;
    await ask();
    loading = false;
    if (again) {
      again = false;
      load();
    } else {
      schedule();
    }
  }

  async function act(action) {
    const rollout = shown;
    const reason = action === "pause" || action === "abort" ? h("input", { id: "rollout-reason", maxlength: 500, autocomplete: "off" }) : null;
    const explain = {
      pause: `The share stays at ${pct(rollout.percent)} %: the chosen instances keep version ${rollout.version}, and no step comes until the rollout is resumed.`,
      resume: `The rollout goes on at ${pct(rollout.percent)} % for what remained of its step; then the next steps come.`,
      promote: `Version ${rollout.version} becomes the current version for every instance, at once. It is validated again against its kind first.`,
      abort: `Every instance that has version ${rollout.version} goes back to version ${rollout.base_version}. Version ${rollout.version} stays in the history.`,
    }[action];
    const titles = {
      pause: `Pause the rollout of ${name}?`,
      resume: `Resume the rollout of ${name}?`,
      promote: `Promote version ${rollout.version} of ${name}?`,
      abort: `Abort the rollout of ${name}?`,
    };
    const confirmLabels = { pause: "Pause", resume: "Resume", promote: `Promote version ${rollout.version}`, abort: "Abort the rollout" };
    const result = await openDialog({
      title: titles[action],
      body: h(
        "div",
        {},
        h("p", {}, explain),
        reason ? [h("label", { for: "rollout-reason" }, "Reason (optional, kept in history)"), reason] : null,
      ),
      confirmLabel: confirmLabels[action],
      danger: action === "abort",
      onConfirm: async () => {
        const text = reason ? reason.value.trim() : "";
        try {
          return (await api.post(paths.rolloutAction(ns, name, action), text ? { reason: text } : {})).data;
        } catch (error) {
          if (error.status === 409) load(); // it moved on meanwhile: show where it stands
          throw error;
        }
      },
    });
    if (!result || signal.aborted) return;
    show(result);
    schedule();
    title.focus();
  }

  const onVisible = () => {
    if (!document.hidden && timer === null) load();
  };
  document.addEventListener("visibilitychange", onVisible);
  signal.addEventListener("abort", () => {
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisible);
  });
  load();
  return { section, refresh: () => (gone ? undefined : load()) };
}
