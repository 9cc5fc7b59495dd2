// Routes live in the URL's fragment (#/ns/prod/doc/chat-models): the service serves one page,
// and nothing secret ever goes into a URL.

const ROUTES = [
  [/^$/, "namespaces", []],
  [/^ns\/([^/]+)$/, "namespace", ["ns"]],
  [/^ns\/([^/]+)\/new$/, "create", ["ns"]],
  [/^ns\/([^/]+)\/fleet$/, "fleet", ["ns"]],
  [/^ns\/([^/]+)\/doc\/([^/]+)$/, "document", ["ns", "name"]],
  [/^ns\/([^/]+)\/doc\/([^/]+)\/v\/(\d+)$/, "document", ["ns", "name", "version"]],
  [/^ns\/([^/]+)\/doc\/([^/]+)\/diff\/(\d+)\/(\d+)$/, "document", ["ns", "name", "from", "to"]],
  [/^ns\/([^/]+)\/doc\/([^/]+)\/edit$/, "edit", ["ns", "name"]],
  [/^kinds$/, "kinds", []],
  [/^kinds\/([^/]+)$/, "kinds", ["kind"]],
  [/^tokens$/, "tokens", []],
];

/** {view, params} of a location hash; view "missing" when nothing matches. */
export function parseRoute(hash) {
  const path = hash.replace(/^#\/?/, "").replace(/\/$/, "");
  for (const [pattern, view, names] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    const params = {};
    names.forEach((name, index) => {
      params[name] = decodeURIComponent(match[index + 1]);
    });
    return { view, params };
  }
  return { view: "missing", params: { path } };
}

const seg = encodeURIComponent;

/** Links to the console's pages. */
export const link = {
  namespaces: () => "#/",
  namespace: (ns) => `#/ns/${seg(ns)}`,
  create: (ns) => `#/ns/${seg(ns)}/new`,
  fleet: (ns) => `#/ns/${seg(ns)}/fleet`,
  doc: (ns, name) => `#/ns/${seg(ns)}/doc/${seg(name)}`,
  version: (ns, name, v) => `#/ns/${seg(ns)}/doc/${seg(name)}/v/${v}`,
  diff: (ns, name, from, to) => `#/ns/${seg(ns)}/doc/${seg(name)}/diff/${from}/${to}`,
  edit: (ns, name) => `#/ns/${seg(ns)}/doc/${seg(name)}/edit`,
  kinds: () => "#/kinds",
  kind: (kind) => `#/kinds/${seg(kind)}`,
  tokens: () => "#/tokens",
};

/** Go to `hash` (a link above). */
export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
