// Specs as text, YAML or JSON: written for reading and editing, parsed back to JSON values
// (the API takes JSON only: YAML is parsed here, in the browser, by the vendored js-yaml),
// and a field path located in the text, so that an error shows at its line.

import { dump, load } from "../vendor/js-yaml.min.js";

export const FORMATS = ["yaml", "json"];

/** `value` as YAML or JSON text. */
export function toText(value, format) {
  if (format === "json") return `${JSON.stringify(value, null, 2)}\n`;
  return dump(value, { lineWidth: -1, noRefs: true });
}

/** A text that is not valid YAML or JSON; `line` is 1-based, or null when unknown. */
export class TextError extends Error {
  constructor(message, line) {
    super(message);
    this.line = line;
  }
}

function jsonErrorLine(text, message) {
  const lineColumn = /line (\d+) column (\d+)/.exec(message);
  if (lineColumn) return Number(lineColumn[1]);
  const position = /position (\d+)/.exec(message);
  if (position) return text.slice(0, Number(position[1])).split("\n").length;
  return null;
}

/** Parse `text` as `format`; throws TextError with the line of the problem. */
export function parseText(text, format) {
  if (format === "json") {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new TextError(`Not valid JSON: ${error.message}`, jsonErrorLine(text, error.message));
    }
  }
  try {
    const value = load(text);
    return value === undefined ? null : value;
  } catch (error) {
    const line = error.mark && Number.isInteger(error.mark.line) ? error.mark.line + 1 : null;
    const reason = (error.reason || error.message || "").split("\n")[0];
    throw new TextError(`Not valid YAML: ${reason}`, line);
  }
}

function indentOf(line) {
  return line.length - line.trimStart().length;
}

/** Where a line's key starts: after its indentation and any "- " of list items. */
function keyIndentOf(line) {
  return /^[ \t]*(?:- +)*/.exec(line)[0].length;
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function keyPattern(key, format) {
  const k = escapeRegExp(String(key));
  if (format === "json") return new RegExp(`^\\s*"${k}"\\s*:`);
  return new RegExp(`^\\s*(?:- +)*(?:${k}|"${k}"|'${k}')\\s*:(?:\\s|$)`);
}

function isContent(line) {
  const trimmed = line.trim();
  return trimmed !== "" && !trimmed.startsWith("#");
}

/** The end (exclusive) of the block under a line at `indent`, from line `start`. A YAML
 * list may sit at its key's own indentation ("key:\n- item"). */
function blockEnd(lines, start, indent, format) {
  for (let i = start; i < lines.length; i++) {
    const line = lines[i];
    if (!isContent(line) || indentOf(line) > indent) continue;
    if (format === "json" && /^\s*[}\]],?\s*$/.test(line)) continue;
    if (format === "yaml" && indentOf(line) === indent && /^\s*-( |$)/.test(line)) continue;
    return i;
  }
  return lines.length;
}

function findItem(lines, from, to, index, format) {
  let childIndent = null;
  let count = -1;
  for (let i = from; i < to; i++) {
    const line = lines[i];
    if (!isContent(line)) continue;
    const indent = indentOf(line);
    if (childIndent === null) childIndent = indent;
    if (indent !== childIndent) continue;
    const starts = format === "json" ? !/^\s*[}\]]/.test(line) : /^\s*-( |$)/.test(line);
    if (starts && ++count === index) return i;
  }
  return null;
}

/**
 * The 1-based line of the field at `path` (e.g. ["endpoints", "a", "timeout", "read"]) in
 * `text`, or of its nearest parent that can be found; null when none can. Made for the text
 * the console writes (block YAML, indented JSON); a best effort for other layouts.
 */
export function locate(text, path, format) {
  const lines = text.split("\n");
  let from = 0;
  let to = lines.length;
  let found = null;
  let indent = -1;
  for (const segment of path) {
    let line = null;
    if (typeof segment === "number") {
      line = findItem(lines, from, to, segment, format);
    } else {
      const pattern = keyPattern(segment, format);
      for (let i = from; i < to; i++) {
        if (pattern.test(lines[i]) && keyIndentOf(lines[i]) > indent) {
          line = i;
          break;
        }
      }
    }
    if (line === null) break;
    found = line;
    if (typeof segment === "number") {
      // the item's first key may sit on its own "- key: value" line
      indent = indentOf(lines[line]);
      from = line;
      to = blockEnd(lines, line + 1, indent, format === "yaml" ? "item" : format);
    } else {
      indent = format === "yaml" ? keyIndentOf(lines[line]) : indentOf(lines[line]);
      from = line + 1;
      to = blockEnd(lines, from, indent, format);
    }
  }
  return found === null ? null : found + 1;
}

/** A field path for people: endpoints › local-34b › timeout › read. */
export function pathLabel(path) {
  return path.length ? path.map((part) => (typeof part === "number" ? `[${part}]` : part)).join(" › ") : "(the whole spec)";
}
