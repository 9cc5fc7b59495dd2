// Line diffs (Myers' O(ND) algorithm) and their rendering, unified or side by side.

import { h } from "./dom.js";

const CONTEXT_LINES = 3;

/** The edit script from lines `a` to lines `b`: [{op: " " | "-" | "+", a, b, text}]. */
export function diffLines(a, b) {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace = [];
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]);
      let x = down ? v[offset + k + 1] : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(trace, a, b, offset);
    }
  }
  return [];
}

function backtrack(trace, a, b, offset) {
  const ops = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d >= 0; d--) {
    const v = trace[d];
    const k = x - y;
    const down = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]);
    const prevK = down ? k + 1 : k - 1;
    const prevX = v[offset + prevK];
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push({ op: " ", a: x - 1, b: y - 1, text: a[x - 1] });
      x--;
      y--;
    }
    if (d > 0) {
      if (x === prevX) ops.push({ op: "+", a: null, b: y - 1, text: b[y - 1] });
      else ops.push({ op: "-", a: x - 1, b: null, text: a[x - 1] });
    }
    x = prevX;
    y = prevY;
  }
  return ops.reverse();
}

function lines(text) {
  const split = text.split("\n");
  if (split.length && split[split.length - 1] === "") split.pop();
  return split;
}

/** Changed-line counts: {added, removed}. */
export function diffStats(ops) {
  let added = 0;
  let removed = 0;
  for (const op of ops) {
    if (op.op === "+") added++;
    else if (op.op === "-") removed++;
  }
  return { added, removed };
}

/** Runs of ops with up to CONTEXT_LINES unchanged lines around each change. */
function hunks(ops) {
  const keep = new Array(ops.length).fill(false);
  ops.forEach((op, i) => {
    if (op.op === " ") return;
    for (let j = Math.max(0, i - CONTEXT_LINES); j <= Math.min(ops.length - 1, i + CONTEXT_LINES); j++) {
      keep[j] = true;
    }
  });
  const found = [];
  let current = null;
  ops.forEach((op, i) => {
    if (!keep[i]) {
      current = null;
      return;
    }
    if (!current) {
      current = [];
      found.push(current);
    }
    current.push(op);
  });
  return found;
}

function lineNo(n) {
  return h("td", { class: "ln" }, n === null ? "" : String(n + 1));
}

const SIGN = { " ": " ", "-": "−", "+": "+" };
const ROW = { " ": "same", "-": "del", "+": "add" };
const SPOKEN = { " ": "", "-": "removed: ", "+": "added: " };

function code(op) {
  return h("td", { class: "code" }, h("span", { class: "visually-hidden" }, SPOKEN[op.op]), op.text);
}

function unified(ops, caption) {
  const body = h("tbody");
  const groups = hunks(ops);
  groups.forEach((group, index) => {
    if (index > 0 || group[0].a > 0 || group[0].b > 0) {
      body.append(h("tr", { class: "gap" }, h("td", { colspan: 4 }, "⋯")));
    }
    for (const op of group) {
      body.append(
        h("tr", { class: ROW[op.op] }, lineNo(op.a), lineNo(op.b), h("td", { class: "sign", "aria-hidden": "true" }, SIGN[op.op]), code(op)),
      );
    }
  });
  return h(
    "table",
    { class: "diff diff-unified" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", { class: "visually-hidden" }, h("tr", {}, h("th", { scope: "col" }, "old line"), h("th", { scope: "col" }, "new line"), h("th", { scope: "col" }, "change"), h("th", { scope: "col" }, "text"))),
    body,
  );
}

function sideBySide(ops, caption, labels) {
  const body = h("tbody");
  const empty = () => [h("td", { class: "ln" }), h("td", { class: "code empty" })];
  for (const [index, group] of hunks(ops).entries()) {
    if (index > 0 || group[0].a > 0 || group[0].b > 0) {
      body.append(h("tr", { class: "gap" }, h("td", { colspan: 4 }, "⋯")));
    }
    let i = 0;
    while (i < group.length) {
      const op = group[i];
      if (op.op === " ") {
        body.append(h("tr", { class: "same" }, lineNo(op.a), code(op), lineNo(op.b), code(op)));
        i++;
        continue;
      }
      const removed = [];
      const added = [];
      while (i < group.length && group[i].op === "-") removed.push(group[i++]);
      while (i < group.length && group[i].op === "+") added.push(group[i++]);
      for (let r = 0; r < Math.max(removed.length, added.length); r++) {
        const left = removed[r] ? [lineNo(removed[r].a), code(removed[r])] : empty();
        const right = added[r] ? [lineNo(added[r].b), code(added[r])] : empty();
        left[1].classList.add(removed[r] ? "del" : "none");
        right[1].classList.add(added[r] ? "add" : "none");
        body.append(h("tr", { class: "change" }, ...left, ...right));
      }
    }
  }
  return h(
    "table",
    { class: "diff diff-split" },
    h("caption", { class: "visually-hidden" }, caption),
    h(
      "thead",
      {},
      h("tr", {}, h("th", { scope: "col", colspan: 2 }, labels[0]), h("th", { scope: "col", colspan: 2 }, labels[1])),
    ),
    body,
  );
}

/**
 * A rendered diff of two texts. `mode` is "unified" or "split"; `labels` name the two sides
 * (e.g. ["version 3", "version 5"]).
 */
export function renderDiff(before, after, { mode = "unified", labels = ["before", "after"] } = {}) {
  const ops = diffLines(lines(before), lines(after));
  const { added, removed } = diffStats(ops);
  const caption = `Changes from ${labels[0]} to ${labels[1]}: ${added} lines added, ${removed} removed`;
  if (added === 0 && removed === 0) {
    return h("p", { class: "diff-none" }, `No differences between ${labels[0]} and ${labels[1]}.`);
  }
  const table = mode === "split" ? sideBySide(ops, caption, labels) : unified(ops, caption);
  return h(
    "div",
    { class: "diff-wrap" },
    h("p", { class: "diff-stats" }, h("span", { class: "stat-add" }, `+${added}`), " ", h("span", { class: "stat-del" }, `−${removed}`), ` lines (${labels[0]} → ${labels[1]})`),
    h("div", { class: "scroll-x", tabindex: "0", role: "region", "aria-label": caption }, table),
  );
}
