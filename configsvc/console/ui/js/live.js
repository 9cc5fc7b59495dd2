// Live changes: one Server-Sent Events stream per watched namespace, shared by the views.
//
// The stream authenticates with the session cookie (an EventSource cannot send headers).
// After a dropped connection the browser reconnects by itself and resumes with
// Last-Event-ID; when it gives up (the service refused the stream, or answered something
// that is no stream), the feed reconnects itself with jittered backoff, resuming from the
// last event it saw (?since=), and first asks whether the session is still alive.

import { SESSION_PATH, paths, request, sessionEnded } from "./api.js";

const RETRY_BASE_MS = 1000;
const RETRY_CAP_MS = 30000;
const EVENTS = ["snapshot", "put", "delete"];

const feeds = new Map();
const statusListeners = new Set();

class Feed {
  constructor(ns) {
    this.ns = ns;
    this.handlers = new Set();
    this.lastId = null;
    this.attempt = 0;
    this.state = "connecting";
    this.source = null;
    this.timer = null;
    this.open();
  }

  open() {
    const query = new URLSearchParams({ namespace: this.ns });
    if (this.lastId !== null) query.set("since", this.lastId);
    const source = new EventSource(`${paths.watch()}?${query}`);
    this.source = source;
    source.addEventListener("open", () => {
      this.attempt = 0;
      this.setState("live");
    });
    for (const type of EVENTS) {
      source.addEventListener(type, (event) => this.deliver(type, event));
    }
    source.addEventListener("error", () => {
      if (source !== this.source) return;
      this.setState("reconnecting");
      if (source.readyState === EventSource.CLOSED) this.retryLater();
      // else: CONNECTING, the browser retries by itself with Last-Event-ID
    });
  }

  deliver(type, event) {
    if (event.lastEventId) this.lastId = event.lastEventId;
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    for (const handler of this.handlers) handler(type, data);
  }

  retryLater() {
    this.source.close();
    const delay = Math.random() * Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.reconnect(), delay);
  }

  async reconnect() {
    this.timer = null;
    if (this.closed) return;
    try {
      await request("GET", SESSION_PATH);
    } catch (error) {
      if (error.status === 401) {
        this.setState("ended");
        sessionEnded(error.message);
        return;
      }
      if (!this.closed) this.retryLater();
      return;
    }
    if (!this.closed) this.open();
  }

  setState(state) {
    this.state = state;
    for (const listener of statusListeners) listener(this.ns, state);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
  }
}

/**
 * Call `handler(type, data)` for every event of namespace `ns` ("snapshot", "put",
 * "delete") until the returned function is called.
 */
export function watch(ns, handler) {
  let feed = feeds.get(ns);
  if (!feed) {
    feed = new Feed(ns);
    feeds.set(ns, feed);
  }
  feed.handlers.add(handler);
  for (const listener of statusListeners) listener(ns, feed.state);
  return () => {
    feed.handlers.delete(handler);
    if (feed.handlers.size === 0) {
      feed.close();
      feeds.delete(ns);
      for (const listener of statusListeners) listener(ns, "idle");
    }
  };
}

/** Call `listener(ns, state)` when a feed's state changes: connecting, live, reconnecting,
 * ended, idle. */
export function onStatus(listener) {
  statusListeners.add(listener);
}

/** Close every feed (at sign-out). */
export function closeAll() {
  for (const feed of feeds.values()) feed.close();
  feeds.clear();
  for (const listener of statusListeners) listener(null, "idle");
}
