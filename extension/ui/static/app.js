// The driftguard dashboard: a plain ES module, no build step, no dependencies.
//
// Every request is the user's own, made through the front door that served this page (kubectl
// proxy, or any kube-apiserver address): the Applications API, Events, SelfSubjectAccessReviews.
// Every value from Git or the cluster reaches the page as text (textContent, or attributes through
// setAttribute), never as markup. Writes carry the CSRF token the page was served with.

const GROUP = "gitops.driftguard.io";
const VERSION = "v1alpha1";
const MARKER = `/apis/${GROUP}/${VERSION}/ui/`;
const ROOT = location.pathname.slice(0, Math.max(0, location.pathname.indexOf(MARKER)));
const API = `${ROOT}/apis/${GROUP}/${VERSION}`;
const UI = `${API}/ui`;
const PROJECTS_NAMESPACE = "driftguard-system";
const MANAGER = "driftguard-controller";
const CSRF = document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") ?? "";
const TERMINAL = new Set(["Succeeded", "Failed", "Error"]);

// --- DOM -------------------------------------------------------------------------------------
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "disabled" || key === "checked") el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const ICONS = {
  Synced: "✔", OutOfSync: "≠", Unknown: "?", Healthy: "♥", Progressing: "◌", Degraded: "✖",
  Missing: "∅", Suspended: "‖", Succeeded: "✔", Failed: "✖", Error: "✖", Running: "◌",
};

function badge(value) {
  const text = value || "Unknown";
  const slug = text.replace(/[^A-Za-z]/g, "").toLowerCase();
  return h("span", { class: `badge s-${slug}` }, h("span", { "aria-hidden": "true" }, Object.hasOwn(ICONS, text) ? ICONS[text] : "•"), " ", text);
}

function short(sha) {
  return sha ? String(sha).slice(0, 7) : "";
}

function ago(time) {
  if (!time) return "";
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(time)) / 1000));
  if (Number.isNaN(seconds)) return String(time);
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86400)}d ago`;
}

function when(time) {
  return time ? h("time", { datetime: time, title: time }, ago(time)) : "";
}

function table(caption, headers, rows) {
  return h("div", { class: "scroll" }, h("table", {},
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    rows instanceof HTMLTableSectionElement ? rows : h("tbody", {}, rows)));
}

function section(id, title, ...children) {
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), children);
}

// --- HTTP ------------------------------------------------------------------------------------
class APIError extends Error {
  constructor(code, reason, message) {
    super(`Error from server (${reason}): ${message}`);
    this.code = code;
  }
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && path.startsWith(`${API}/`)) headers["X-CSRF-Token"] = CSRF; // ours only
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new APIError(0, "ServiceUnavailable", `the server could not be reached: ${err.message}`);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    throw new APIError(response.status, data?.reason || response.statusText || "Unknown",
      data?.message || text.slice(0, 500) || `HTTP ${response.status}`);
  }
  return data;
}

// Streams a watch's events to onEvent until it ends or signal aborts.
async function watch(path, onEvent, signal) {
  const response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin", signal });
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new APIError(response.status, data.reason || "Unknown", data.message || `HTTP ${response.status}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).trim();
        buffer = buffer.slice(end + 1);
        if (line) onEvent(JSON.parse(line));
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

// Keeps a watch open, reconnecting from the last version seen; a 410 Gone starts over with relist().
function follow(path, onEvent, relist, signal, rv) {
  let version = rv;
  (async () => {
    while (!signal.aborted) {
      try {
        const sep = path.includes("?") ? "&" : "?";
        await watch(`${path}${sep}watch=true&resourceVersion=${encodeURIComponent(version)}`, (event) => {
          if (event.type === "ERROR") {
            throw new APIError(event.object?.code ?? 0, event.object?.reason || "Unknown", event.object?.message || "");
          }
          version = event.object?.metadata?.resourceVersion ?? version;
          onEvent(event);
        }, signal);
        clearAlert("live");
      } catch (err) {
        if (signal.aborted) return;
        if (err.code === 410) {
          try { version = await relist(); clearAlert("live"); continue; } catch (again) { err = again; }
        }
        if (signal.aborted) return;
        alert(err, "The live view stopped; retrying", "live");
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
    }
  })();
}

async function can(verb, resource, subresource, namespace, name) {
  const review = await call("POST", `${ROOT}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews`, {
    apiVersion: "authorization.k8s.io/v1", kind: "SelfSubjectAccessReview",
    spec: { resourceAttributes: { group: GROUP, resource, subresource, verb, namespace, name } },
  });
  const status = review?.status ?? {};
  const what = subresource ? `${resource}/${subresource}` : resource;
  return {
    allowed: Boolean(status.allowed),
    reason: status.allowed ? "" : `You may not do this: your RBAC grants no ${verb} on ${what} in namespace ${namespace}` +
      (status.reason ? ` (${status.reason})` : "") + ". Ask an admin of the namespace.",
  };
}

// --- alerts ----------------------------------------------------------------------------------
// An error shown until dismissed; one per ``key``, a newer replacing an older.
function alert(err, context, key = context) {
  const box = document.getElementById("alerts");
  const message = `${context}: ${err.message ?? err}`;
  const close = h("button", { type: "button", class: "link", "aria-label": "Dismiss" }, "×");
  const item = h("div", { class: "alert", "data-key": key }, h("span", {}, message), close);
  close.addEventListener("click", () => item.remove());
  clearAlert(key);
  box.append(item);
}

function clearAlert(key) {
  for (const item of document.getElementById("alerts").children) {
    if (item.getAttribute("data-key") === key) item.remove();
  }
}

function clearAlerts() {
  document.getElementById("alerts").replaceChildren();
}

// --- the list of Applications ------------------------------------------------------------------
function appRow(app) {
  const meta = app.metadata ?? {};
  const spec = app.spec ?? {};
  const status = app.status ?? {};
  const href = `#/apps/${encodeURIComponent(meta.namespace)}/${encodeURIComponent(meta.name)}`;
  return h("tr", { "data-app": `${meta.namespace}/${meta.name}` },
    h("th", { scope: "row" }, h("a", { href }, meta.name)),
    h("td", {}, meta.namespace),
    h("td", {}, spec.project ?? "default"),
    h("td", { class: "cell-sync" }, badge(status.sync?.status)),
    h("td", { class: "cell-health" }, badge(status.health?.status)),
    h("td", { class: "mono" }, short(status.sync?.revision)),
    h("td", { class: "wrap" }, spec.source?.repoURL ?? "", spec.source?.path && spec.source.path !== "." ? ` (${spec.source.path})` : ""),
    h("td", {}, spec.driftGuard?.mode ?? "enforce"),
    h("td", {}, status.operationState?.phase ?? ""));
}

function matches(app, filters) {
  const meta = app.metadata ?? {};
  const status = app.status ?? {};
  const text = `${meta.namespace}/${meta.name} ${app.spec?.source?.repoURL ?? ""} ${app.spec?.project ?? ""}`.toLowerCase();
  return (!filters.q || text.includes(filters.q.toLowerCase()))
    && (!filters.sync || (status.sync?.status ?? "Unknown") === filters.sync)
    && (!filters.health || (status.health?.status ?? "Unknown") === filters.health);
}

async function listPage(main, signal) {
  const apps = new Map();
  const filters = { q: "", sync: "", health: "" };
  const body = h("tbody", {});
  const count = h("p", { class: "count", "aria-live": "polite" });
  const scope = h("p", { class: "hint" });
  const key = (a) => `${a.metadata.namespace}/${a.metadata.name}`;
  const render = () => {
    const shown = [...apps.values()].filter((a) => matches(a, filters)).sort((a, b) => key(a).localeCompare(key(b)));
    fill(body, shown.map(appRow));
    if (!shown.length) fill(body, h("tr", {}, h("td", { colspan: 9 }, apps.size ? "No Application matches." : "No Applications in the namespaces you may list.")));
    fill(count, `${shown.length} of ${apps.size} Applications`);
  };
  const choice = (label, id, field, values) => h("div", { class: "field" },
    h("label", { for: id }, label),
    h("select", { id, onchange: (e) => { filters[field] = e.target.value; render(); } },
      h("option", { value: "" }, "All"), values.map((v) => h("option", { value: v }, v))));
  fill(main,
    h("h1", {}, "Applications"),
    h("div", { class: "filters", role: "search" },
      h("div", { class: "field" }, h("label", { for: "search" }, "Search"),
        h("input", { id: "search", type: "search", placeholder: "name, namespace, repository", oninput: (e) => { filters.q = e.target.value; render(); } })),
      choice("Sync", "filter-sync", "sync", ["Synced", "OutOfSync", "Unknown"]),
      choice("Health", "filter-health", "health", ["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"])),
    count, scope,
    table("Applications", ["Name", "Namespace", "Project", "Sync", "Health", "Revision", "Repository", "Guard", "Operation"], body));
  const relist = async () => {
    const list = await call("GET", `${UI}/applications`);
    apps.clear();
    for (const app of list.items ?? []) apps.set(key(app), app);
    fill(scope, list.allNamespaces ? "All namespaces." : "The namespaces where you may list Applications.");
    render();
    return list.metadata?.resourceVersion ?? "";
  };
  let rv;
  try { rv = await relist(); } catch (err) { alert(err, "Cannot list Applications"); return; }
  if (signal.aborted) return;
  follow(UI, (event) => {
    if (event.type === "DELETED") apps.delete(key(event.object));
    else if (event.type === "ADDED" || event.type === "MODIFIED") apps.set(key(event.object), event.object);
    else return; // a bookmark: nothing to show
    render();
  }, relist, signal, rv);
}

// --- one Application ---------------------------------------------------------------------------
function same(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || !a || !b) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => same(a[k], b[k]));
}

function summary(app) {
  const spec = app.spec ?? {};
  const status = app.status ?? {};
  const auto = spec.syncPolicy?.automated;
  const rows = [
    ["Namespace", app.metadata.namespace],
    ["Project", spec.project ?? "default"],
    ["Repository", spec.source?.repoURL ?? ""],
    ["Path", spec.source?.path ?? ""],
    ["Target", spec.source?.targetRevision ?? "HEAD"],
    ["Sync", h("span", {}, badge(status.sync?.status), " ", h("span", { class: "mono" }, short(status.sync?.revision)))],
    ["Health", h("span", {}, badge(status.health?.status), " ", status.health?.message ?? "")],
    ["Auto-sync", auto ? `on${auto.prune ? ", prune" : ""}${auto.selfHeal ? ", self-heal" : ""}` : "off"],
    ["Drift guard", spec.driftGuard?.mode ?? "enforce"],
    ["Compared", when(status.reconciledAt)],
  ];
  return h("dl", { class: "summary", id: "app-summary" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function operation(app) {
  const state = app.status?.operationState;
  if (!state) return h("p", {}, "No operation yet.");
  const results = state.syncResult?.resources ?? [];
  return h("div", {},
    h("p", { "aria-live": "polite" }, badge(state.phase), " ", state.message ?? "", " ", when(state.finishedAt ?? state.startedAt)),
    results.length ? table("Results of the last operation", ["Kind", "Namespace", "Name", "Result", "Message"],
      results.map((r) => h("tr", {}, h("td", {}, r.kind), h("td", {}, r.namespace ?? ""), h("td", {}, r.name),
        h("td", {}, r.status ?? "", r.hookPhase ? ` (${r.hookPhase} hook)` : ""), h("td", { class: "wrap" }, r.message ?? "")))) : "");
}

// FieldsV1 as readable paths: f:spec → .spec, k:{"name":"web"} → [name=web], v:"x" → [x].
function fieldPaths(fields, prefix = "") {
  const out = [];
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (key === ".") continue;
    let part = key;
    if (key.startsWith("f:")) part = `.${key.slice(2)}`;
    else if (key.startsWith("k:")) {
      try { part = `[${Object.entries(JSON.parse(key.slice(2))).map(([k, v]) => `${k}=${v}`).join(",")}]`; } catch { part = `[${key.slice(2)}]`; }
    } else if (key.startsWith("v:")) part = `[${key.slice(2)}]`;
    const path = prefix + part;
    const deeper = value && typeof value === "object" ? fieldPaths(value, path) : [];
    out.push(...(deeper.length ? deeper : [path]));
  }
  return out;
}

const plurals = new Map();
async function objectPath(res) {
  const enc = encodeURIComponent;
  const gv = res.group ? `${ROOT}/apis/${enc(res.group)}/${enc(res.version)}` : `${ROOT}/api/${enc(res.version || "v1")}`;
  if (!plurals.has(gv)) plurals.set(gv, call("GET", gv));
  const list = await plurals.get(gv);
  const found = (list.resources ?? []).find((r) => r.kind === res.kind && !r.name.includes("/"));
  if (!found) throw new APIError(404, "NotFound", `the server does not serve ${res.kind} in ${res.group || "core"}/${res.version}`);
  const ns = found.namespaced ? `/namespaces/${encodeURIComponent(res.namespace)}` : "";
  return `${gv}${ns}/${enc(found.name)}/${enc(res.name)}`;
}

function ownedFields(res, drifted, opened) {
  const id = `${res.group ?? ""}/${res.kind}/${res.namespace ?? ""}/${res.name}`;
  const box = h("div", { class: "owned" }, "Loading…");
  const details = h("details", { open: opened.has(id) }, h("summary", { "data-focus": `fields:${id}` }, "Fields Git sets"), box);
  details.addEventListener("toggle", async () => {
    if (details.open) opened.add(id); else opened.delete(id);
    if (!details.open || box.dataset.loaded) return;
    box.dataset.loaded = "1";
    try {
      const live = await call("GET", await objectPath(res));
      const entries = (live.metadata?.managedFields ?? []).filter((m) => m.manager === MANAGER);
      const paths = entries.flatMap((m) => fieldPaths(m.fieldsV1)).filter((p) => !p.startsWith(".metadata"));
      fill(box, paths.length ? h("ul", { class: "paths" }, paths.map((p) => h("li", { class: drifted.some((d) => p === d || p.startsWith(`${d}.`) || p.startsWith(`${d}[`)) ? "drifted" : "" }, p))) : "None recorded on the live object.");
    } catch (err) {
      fill(box, h("span", { class: "error" }, err.message));
    }
  });
  return details;
}

function resourceTree(app, opened) {
  const status = app.status ?? {};
  const drift = new Map();
  for (const d of status.drift?.resources ?? []) {
    const k = `${d.group ?? ""}/${d.kind}/${d.namespace ?? ""}/${d.name}`;
    drift.set(k, [...(drift.get(k) ?? []), d]);
  }
  const byKind = new Map();
  for (const r of status.resources ?? []) byKind.set(r.kind, [...(byKind.get(r.kind) ?? []), r]);
  if (!byKind.size) return h("p", {}, "Nothing deployed yet.");
  return [...byKind.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([kind, items]) =>
    h("div", { class: "kind" }, h("h3", {}, `${kind} (${items.length})`),
      h("ul", { class: "tree" }, items.map((r) => {
        const changes = drift.get(`${r.group ?? ""}/${r.kind}/${r.namespace ?? ""}/${r.name}`) ?? [];
        const drifted = changes.flatMap((c) => (c.fields ?? []).map((f) => (f.startsWith(".") ? f : `.${f}`)));
        return h("li", { class: "object" },
          h("div", { class: "line" }, h("strong", {}, r.name), r.namespace ? h("span", { class: "muted" }, ` ${r.namespace}`) : "",
            " ", badge(r.status), r.health ? [" ", badge(r.health.status), " ", r.health.message ?? ""] : ""),
          changes.map((c) => h("div", { class: "drift" }, "Drifted: ", h("span", { class: "mono" }, (c.fields ?? []).join(", ")),
            ` by ${c.by ?? "?"} `, when(c.at))),
          ownedFields(r, drifted, opened));
      }))));
}

function diffView(state) {
  const entries = (state?.syncResult?.resources ?? []).filter((e) => e.status && e.status !== "unchanged");
  if (!entries.length) return h("p", {}, "No difference: the cluster is as Git says.");
  return entries.map((e) => h("div", { class: "diff" },
    h("h3", {}, `${e.kind} ${e.namespace ? `${e.namespace}/` : ""}${e.name} (${e.status})`),
    h("pre", {}, String(e.diff || e.message || "").split("\n").map((line) =>
      h("span", { class: line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : "" }, line, "\n")))));
}

function history(app, rollback) {
  const rows = [...(app.status?.history ?? [])].reverse().map((e) => h("tr", {},
    h("td", {}, e.id), h("td", {}, when(e.deployedAt)), h("td", { class: "mono" }, short(e.revision)),
    h("td", {}, e.initiatedBy?.automated ? "automated" : e.initiatedBy?.username ?? ""),
    h("td", {}, rollback(e))));
  return rows.length ? table("History", ["ID", "Deployed", "Revision", "By", ""], rows) : h("p", {}, "Nothing deployed yet.");
}

function project(spec) {
  const rows = Object.entries(spec ?? {}).map(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "object" ? h("pre", {}, JSON.stringify(v, null, 2)) : String(v))]);
  return h("dl", { class: "summary" }, rows);
}

async function appPage(main, signal, namespace, name) {
  const path = `${API}/namespaces/${encodeURIComponent(namespace)}/applications/${encodeURIComponent(name)}`;
  let app;
  try { app = await call("GET", path); } catch (err) { fill(main, h("h1", {}, name)); alert(err, `Cannot read Application ${namespace}/${name}`); return; }
  if (signal.aborted) return;
  const opened = new Set(); // the "Fields Git sets" panels open, kept across redraws
  const parts = {
    summary: h("div", {}), op: h("div", {}), tree: h("div", {}), diff: h("div", { "aria-live": "polite" }),
    conditions: h("div", {}), events: h("div", {}), history: h("div", {}), project: h("div", {}),
  };
  const rights = { sync: { allowed: false, reason: "checking…" }, diff: { allowed: false, reason: "checking…" }, rollback: { allowed: false, reason: "checking…" } };
  let waitingFor = null; // a diff or dry run whose result the page shows when it ends
  const prune = h("input", { type: "checkbox", id: "opt-prune" });
  const dryRun = h("input", { type: "checkbox", id: "opt-dry-run" });
  const syncReason = h("p", { class: "reason", id: "sync-reason" });
  const diffReason = h("p", { class: "reason", id: "diff-reason" });
  const syncButton = h("button", { type: "button", id: "sync", class: "primary", "aria-describedby": "sync-reason" }, "Sync");
  const diffButton = h("button", { type: "button", id: "diff", "aria-describedby": "diff-reason" }, "Diff with Git");
  const confirming = { id: null };

  const act = async (kind, body, label) => {
    clearAlerts();
    try {
      const recorded = await call("POST", `${path}/${kind}`, body);
      if (kind === "diff" || body.dryRun) {
        waitingFor = recorded.operation;
        fill(parts.diff, h("p", {}, "Comparing with Git…"));
      }
      if (Number(recorded.metadata?.resourceVersion) >= Number(app.metadata?.resourceVersion)) app = recorded;
      render();
    } catch (err) {
      alert(err, label);
    }
  };
  syncButton.addEventListener("click", () => act("sync", { ...(prune.checked && { prune: true }), ...(dryRun.checked && { dryRun: true }) }, `Sync of ${namespace}/${name}`));
  diffButton.addEventListener("click", () => act("diff", {}, `Diff of ${namespace}/${name}`));

  const rollbackCell = (entry) => {
    if (!rights.rollback.allowed) return h("button", { type: "button", disabled: true, "aria-describedby": "rollback-reason" }, `Roll back to ${entry.id}`);
    if (confirming.id === entry.id) {
      return h("span", { class: "confirm" },
        h("button", { type: "button", class: "danger", "data-focus": `confirm:${entry.id}`, onclick: () => { confirming.id = null; act("rollback", { id: entry.id }, `Rollback of ${namespace}/${name}`); } }, `Confirm rollback to ${entry.id}`),
        h("button", { type: "button", "data-focus": `cancel:${entry.id}`, onclick: () => { confirming.id = null; render(`rollback:${entry.id}`); } }, "Cancel"));
    }
    return h("button", { type: "button", "data-focus": `rollback:${entry.id}`, onclick: () => { confirming.id = entry.id; render(`confirm:${entry.id}`); } }, `Roll back to ${entry.id}`);
  };

  // Redraws what the Application's state shows; keyboard focus stays where it was (or moves to
  // ``focus``), by the element's data-focus key.
  const render = (focus) => {
    const keep = focus ?? document.activeElement?.getAttribute?.("data-focus");
    fill(parts.summary, summary(app));
    fill(parts.op, operation(app));
    fill(parts.tree, resourceTree(app, opened));
    const conditions = app.status?.conditions ?? [];
    fill(parts.conditions, conditions.length ? table("Conditions", ["Type", "Status", "Reason", "Message", "Since"], conditions.map((c) =>
      h("tr", {}, h("td", {}, c.type), h("td", {}, c.status), h("td", {}, c.reason ?? ""), h("td", { class: "wrap" }, c.message ?? ""), h("td", {}, when(c.lastTransitionTime))))) : h("p", {}, "None."));
    fill(parts.history, history(app, rollbackCell), rights.rollback.allowed ? "" : h("p", { class: "reason", id: "rollback-reason" }, rights.rollback.reason));
    const state = app.status?.operationState;
    if (waitingFor && state && same(state.operation, waitingFor) && TERMINAL.has(state.phase)) {
      waitingFor = null;
      fill(parts.diff, state.phase === "Succeeded" ? diffView(state) : h("p", { class: "error" }, `The comparison failed: ${state.message ?? ""}`));
    }
    for (const [button, reasonBox, right] of [[syncButton, syncReason, rights.sync], [diffButton, diffReason, rights.diff]]) {
      button.disabled = !right.allowed;
      fill(reasonBox, right.allowed ? "" : right.reason);
    }
    if (keep) main.querySelector(`[data-focus="${CSS.escape(keep)}"]`)?.focus();
  };

  const loadEvents = async () => {
    try {
      const selector = `involvedObject.kind=Application,involvedObject.name=${name}`;
      const list = await call("GET", `${ROOT}/api/v1/namespaces/${encodeURIComponent(namespace)}/events?fieldSelector=${encodeURIComponent(selector)}`);
      const items = (list.items ?? []).sort((a, b) => String(b.lastTimestamp ?? b.eventTime ?? "").localeCompare(String(a.lastTimestamp ?? a.eventTime ?? ""))).slice(0, 50);
      fill(parts.events, items.length ? table("Events", ["Type", "Reason", "Message", "Count", "Last seen"], items.map((e) =>
        h("tr", {}, h("td", {}, e.type ?? ""), h("td", {}, e.reason ?? ""), h("td", { class: "wrap" }, e.message ?? ""), h("td", {}, e.count ?? 1), h("td", {}, when(e.lastTimestamp ?? e.eventTime))))) : h("p", {}, "None."));
    } catch (err) {
      fill(parts.events, h("p", { class: "error" }, err.message));
    }
  };

  fill(main,
    h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Applications"), " / ", namespace, " / ", name),
    h("h1", {}, name),
    parts.summary,
    section("h-actions", "Actions",
      h("div", { class: "actions" },
        h("div", { class: "check" }, prune, h("label", { for: "opt-prune" }, "Prune objects no longer in Git")),
        h("div", { class: "check" }, dryRun, h("label", { for: "opt-dry-run" }, "Dry run")),
        syncButton, diffButton),
      syncReason, diffReason),
    section("h-operation", "Last operation", parts.op),
    section("h-diff", "Diff with Git", parts.diff),
    section("h-resources", "Resources", parts.tree),
    section("h-conditions", "Conditions", parts.conditions),
    section("h-events", "Events", parts.events),
    section("h-history", "History", parts.history),
    section("h-project", `Project ${app.spec?.project ?? "default"}`, parts.project));
  fill(parts.diff, h("p", {}, "Press “Diff with Git” to see what a sync would change."));
  render();
  loadEvents();

  const ask = async (field, sub) => {
    try { rights[field] = await can("create", "applications", sub, namespace, name); } catch (err) { rights[field] = { allowed: false, reason: err.message }; }
  };
  await Promise.all([ask("sync", "sync"), ask("diff", "diff"), ask("rollback", "rollback")]);
  if (signal.aborted) return;
  render();

  call("GET", `${API}/namespaces/${PROJECTS_NAMESPACE}/appprojects/${encodeURIComponent(app.spec?.project ?? "default")}`)
    .then((p) => fill(parts.project, project(p.spec)))
    .catch((err) => fill(parts.project, h("p", { class: "error" }, err.message)));

  let eventsTimer = null;
  const relist = async () => {
    const fresh = await call("GET", path);
    if (!signal.aborted) { app = fresh; render(); }
    return fresh.metadata.resourceVersion;
  };
  follow(`${API}/namespaces/${encodeURIComponent(namespace)}/applications?fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`, (event) => {
    if (event.type === "DELETED") { alert(`Application ${namespace}/${name} was deleted`, "Gone"); return; }
    if (event.type !== "ADDED" && event.type !== "MODIFIED") return;
    app = event.object;
    render();
    clearTimeout(eventsTimer);
    eventsTimer = setTimeout(loadEvents, 1000);
  }, relist, signal, app.metadata.resourceVersion);
}

// --- routing -------------------------------------------------------------------------------------
let current = null;
async function route() {
  if (location.hash && !location.hash.startsWith("#/")) return; // an in-page link, not a page
  current?.abort();
  current = new AbortController();
  const signal = current.signal;
  clearAlerts();
  const main = document.getElementById("main");
  let parts;
  try { parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent); } catch { parts = []; }
  const one = parts[0] === "apps" && parts.length === 3 && parts[1] && parts[2];
  document.title = one ? `${parts[2]} · driftguard` : "Applications · driftguard";
  if (one) await appPage(main, signal, parts[1], parts[2]);
  else await listPage(main, signal);
  if (!signal.aborted) main.querySelector("h1")?.setAttribute("tabindex", "-1");
  if (!signal.aborted && document.activeElement === document.body) main.querySelector("h1")?.focus();
}

document.querySelector(".skip")?.addEventListener("click", (event) => {
  event.preventDefault(); // "#main" is not a page of ours: move focus, keep the page
  document.getElementById("main").focus();
});

async function whoAmI() {
  try {
    const review = await call("POST", `${ROOT}/apis/authentication.k8s.io/v1/selfsubjectreviews`, {
      apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview",
    });
    fill(document.getElementById("who"), `Signed in to Kubernetes as ${review?.status?.userInfo?.username ?? "?"}`);
  } catch (err) {
    fill(document.getElementById("who"), `Who you are is unknown: ${err.message}`);
  }
}

window.addEventListener("hashchange", route);
whoAmI();
route();
