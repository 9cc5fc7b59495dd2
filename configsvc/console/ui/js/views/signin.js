// Sign in with a token. The form posts to the service with fetch; it also names
// method="post" so that, should scripts fail, a browser never puts the token in a URL.

import { h, notice } from "../dom.js";
import { signIn } from "../session.js";
import { errorBlock } from "./common.js";

export function renderSignIn(main, { message, onSignedIn }) {
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-help",
  });
  const status = h("div", { class: "form-status" });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "signin", method: "post", action: "/v1/session", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to configsvc"),
    message ? notice("info", message) : null,
    h("label", { for: "token" }, "API token"),
    input,
    h(
      "p",
      { id: "token-help", class: "help" },
      "A token from ",
      h("code", {}, "configsvc tokens create"),
      ", or the service's admin token. It is exchanged for a session cookie that scripts cannot read, and is not kept in this browser.",
    ),
    status,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      status.replaceChildren(notice("error", "Enter a token."));
      input.focus();
      return;
    }
    button.disabled = true;
    status.replaceChildren(h("p", { role: "status" }, "Signing in…"));
    try {
      await signIn(token);
      input.value = "";
      onSignedIn();
    } catch (error) {
      const text =
        error.status === 401 ? "That token is not valid (mistyped, or revoked). Check it and try again." : null;
      status.replaceChildren(text ? notice("error", text) : errorBlock(error, "sign in"));
      button.disabled = false;
      input.select();
      input.focus();
    }
  });
  main.replaceChildren(h("div", { class: "signin-wrap" }, form));
  input.focus();
}
