// Who is signed in, and what the token may do. The token is sent once, to POST
// /v1/session, and forgotten: the service answers with an HttpOnly cookie (which this
// script cannot read) and a CSRF token for writes.

import { SESSION_PATH, request, setCsrf } from "./api.js";

const RANKS = { reader: 0, writer: 1, admin: 2 };

export const me = {
  signedIn: false,
  name: "",
  role: "reader",
  namespaces: [],
  secrets: false,
  expiresAt: null,
};

function apply(data) {
  Object.assign(me, {
    signedIn: true,
    name: data.name,
    role: data.role,
    namespaces: data.namespaces,
    secrets: data.secrets,
    expiresAt: data.expires_at,
  });
  setCsrf(data.csrf_token);
}

function clear() {
  Object.assign(me, { signedIn: false, name: "", role: "reader", namespaces: [], secrets: false });
  setCsrf(null);
}

/** Pick up a session this browser already has (after a reload); false when there is none. */
export async function restore() {
  try {
    apply((await request("GET", SESSION_PATH)).data);
    return true;
  } catch (error) {
    if (error.status === 401) {
      clear();
      return false;
    }
    throw error;
  }
}

/** Exchange `token` for a session. */
export async function signIn(token) {
  apply((await request("POST", SESSION_PATH, { body: { token } })).data);
}

/** End the session on the service and forget it here. */
export async function signOut() {
  try {
    await request("DELETE", SESSION_PATH);
  } finally {
    clear();
  }
}

/** Forget the session here (the service already ended it). */
export function forget() {
  clear();
}

function matches(pattern, ns) {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`).test(ns);
}

/** True when the token has `role` (or higher), and may touch `ns` when one is given. */
export function can(role, ns) {
  if (!me.signedIn || RANKS[me.role] < RANKS[role]) return false;
  return ns === undefined || me.namespaces.some((pattern) => matches(pattern, ns));
}
