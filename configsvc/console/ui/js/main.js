// The console's entry point: the session, the top bar, and the page for the current route.

import { onSessionEnded } from "./api.js";
import { announce, focusHeading, h, refreshTimes } from "./dom.js";
import * as live from "./live.js";
import { link, parseRoute } from "./router.js";
import { can, forget, me, restore, signOut } from "./session.js";
import { errorBlock, pageHeader } from "./views/common.js";
import { documentView } from "./views/document.js";
import { editorView, hasUnsavedEdits } from "./views/editor.js";
import { fleetView } from "./views/fleet.js";
import { kindsView } from "./views/kinds.js";
import { namespaceView } from "./views/namespace.js";
import { namespacesView } from "./views/namespaces.js";
import { renderSignIn } from "./views/signin.js";
import { tokensView } from "./views/tokens.js";

const TIME_REFRESH_MS = 30000;
const VIEWS = {
  namespaces: namespacesView,
  namespace: namespaceView,
  create: editorView,
  edit: editorView,
  document: documentView,
  fleet: fleetView,
  kinds: kindsView,
  tokens: tokensView,
  missing: async (main, { params }) => {
    main.replaceChildren(pageHeader("Page not found"), errorBlock({ status: 404, message: `nothing at #/${params.path}`, details: [] }), h("p", {}, h("a", { href: link.namespaces() }, "Go to the namespaces")));
  },
};
const LIVE_TEXT = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", ended: "Offline", idle: "" };

const main = document.getElementById("main");
const who = document.getElementById("who");
const signOutButton = document.getElementById("sign-out");
const liveStatus = document.getElementById("live-status");
const navLinks = document.querySelectorAll("[data-nav]");
let controller = null;
let currentHash = location.hash;

function chrome(route) {
  document.body.classList.toggle("signed-in", me.signedIn);
  who.textContent = me.signedIn ? `${me.name} · ${me.role}` : "";
  signOutButton.hidden = !me.signedIn;
  for (const a of navLinks) {
    a.hidden = !me.signedIn || (a.dataset.nav === "tokens" && !can("admin"));
    const section = { namespaces: ["namespaces", "namespace", "document", "edit", "create", "fleet"], kinds: ["kinds"], tokens: ["tokens"] }[a.dataset.nav] || [];
    if (route && section.includes(route.view)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function showSignIn(message) {
  controller?.abort();
  controller = null;
  live.closeAll();
  chrome(null);
  document.title = "Sign in · configsvc";
  renderSignIn(main, { message, onSignedIn: () => render() });
}

async function render() {
  controller?.abort();
  if (!me.signedIn) {
    showSignIn();
    return;
  }
  const route = parseRoute(location.hash);
  chrome(route);
  controller = new AbortController();
  const { signal } = controller;
  main.replaceChildren();
  try {
    await VIEWS[route.view](main, { params: route.params, signal });
  } catch (error) {
    if (signal.aborted) return;
    main.append(errorBlock(error, "show this page"));
  }
  if (signal.aborted) return;
  const heading = main.querySelector("h1");
  document.title = `${heading ? heading.textContent : "configsvc"} · configsvc`;
  if (!main.contains(document.activeElement) || document.activeElement === main) focusHeading(main);
}

window.addEventListener("hashchange", () => {
  if (hasUnsavedEdits() && !window.confirm("Leave this page? Your edits are not saved.")) {
    history.replaceState(null, "", currentHash || "#/");
    return;
  }
  currentHash = location.hash;
  render();
});

window.addEventListener("beforeunload", (event) => {
  if (hasUnsavedEdits()) event.preventDefault();
});

onSessionEnded((message) => {
  if (!me.signedIn) return;
  forget();
  showSignIn(`Your session ended: ${message}`);
  announce("Your session ended; sign in again");
});

live.onStatus((_ns, state) => {
  liveStatus.textContent = LIVE_TEXT[state] || "";
  liveStatus.dataset.state = state;
});

signOutButton.addEventListener("click", async () => {
  live.closeAll();
  try {
    await signOut();
  } catch {
    // signed out here either way; the service forgets the session at its expiry
  }
  showSignIn("You signed out.");
  announce("Signed out");
});

document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

setInterval(() => refreshTimes(main), TIME_REFRESH_MS);

async function start() {
  try {
    await restore();
  } catch (error) {
    main.replaceChildren(errorBlock(error, "reach the service"));
    return;
  }
  render();
}

start();
