// The fsredis console: a page over the sidecar's own HTTP API (see /openapi.json).
// Views by the address's hash: #/entities, #/entity/<id>, #/lineage/<id>/<feature>, #/registry,
// #/health. Stored values are shown as text (textContent), never parsed as HTML.
"use strict";

const state = { config: null, registry: null, token: sessionStorage.getItem("fsredis-token") || "" };
const SVG = "http://www.w3.org/2000/svg";

// ---- HTTP -------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, error, fallback) {
    super(error.message || fallback);
    this.status = status;
    this.code = error.code || "HTTP" + status;
    this.rule = error.rule;
  }
}

// Integers past 2^53 stay exact: kept as their JSON text (JSON.rawJSON, which JSON.stringify
// writes back as is), where the browser has it.
function exact(key, value, context) {
  if (typeof value === "number" && !Number.isSafeInteger(value) && Number.isInteger(value)
      && context && /^-?\d+$/.test(context.source) && JSON.rawJSON) {
    return JSON.rawJSON(context.source);
  }
  return value;
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch(path, {
    method: options.method || "GET", headers,
    body: options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body),
  });
  const text = await response.text();
  let body = text;
  try { body = JSON.parse(text, exact); } catch (_) { /* /metrics is text */ }
  if (!response.ok) {
    throw new ApiError(response.status, (body && body.error) || {}, response.statusText);
  }
  return body;
}

const enc = encodeURIComponent;

function canWrite() {
  return Boolean(state.config.writes && state.token);
}

// ---- DOM --------------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : String(child));
  return el;
}

function table(columns, rows, attrs) {
  return h("table", attrs,
    h("thead", null, h("tr", null, columns.map((c) => h("th", null, c)))),
    h("tbody", null, rows.map((row) => h("tr", null, row.map((cell) => h("td", null, cell))))));
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined && v !== null)
    .flatMap(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

function problem(error) {
  const code = error instanceof ApiError ? error.code + ": " : "";
  return h("p", { class: "error", role: "alert" }, code + error.message);
}

function show(...children) {
  const view = document.getElementById("view");
  view.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

// ---- values -----------------------------------------------------------------------------------

function when(seconds) {
  return seconds === undefined || seconds === null ? "" : new Date(seconds * 1000).toISOString();
}

function isVector(value) {
  return Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === "number");
}

function norm(vector) {
  return Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
}

function cosine(a, b) {
  if (!isVector(a) || !isVector(b) || a.length !== b.length) return null;
  const na = norm(a), nb = norm(b);
  if (na === 0 || nb === 0) return null;
  return a.reduce((sum, x, i) => sum + x * b[i], 0) / (na * nb);
}

function fixed(x, digits = 4) {
  return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
}

function definitionOf(entity, feature) {
  const group = entity.includes(":") ? entity.slice(0, entity.indexOf(":")) : null;
  const groups = (state.registry && state.registry.groups) || {};
  return (group && groups[group] && groups[group][feature]) || null;
}

function text(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function display(value, definition) {
  if (isVector(value) && (value.length > 8 || (definition && definition.dtype === "embedding"))) {
    const head = value.slice(0, 4).map((x) => fixed(x)).join(", ");
    return h("span", { class: "value" }, `${value.length} dims, norm ${fixed(norm(value))}: [${head}${value.length > 4 ? ", …" : ""}]`);
  }
  return h("span", { class: "value" }, text(value));
}

// ---- the plot ---------------------------------------------------------------------------------

// A line over versions: points [{x: version, y: number, label}], oldest first.
function plot(points, title) {
  const width = 720, height = 220, left = 64, right = 16, top = 24, bottom = 32;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const px = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const py = (y) => height - bottom - ((y - y0) / (y1 - y0)) * (height - top - bottom);
  const svg = s("svg", { class: "plot", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
                         "aria-label": title, "data-points": points.length });
  svg.append(
    s("text", { x: left, y: 14 }, title),
    s("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }),
    s("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }),
    s("text", { x: left - 6, y: py(y1) + 4, "text-anchor": "end" }, fixed(y1, 3)),
    s("text", { x: left - 6, y: py(y0) + 4, "text-anchor": "end" }, fixed(y0, 3)),
    s("text", { x: px(xs[0]), y: height - 12, "text-anchor": "middle" }, "v" + xs[0]),
    s("text", { x: px(xs[xs.length - 1]), y: height - 12, "text-anchor": "middle" }, "v" + xs[xs.length - 1]),
    s("polyline", { class: "series", points: points.map((p) => `${px(p.x)},${py(p.y)}`).join(" ") }),
  );
  for (const p of points) {
    svg.append(s("circle", { class: "dot", cx: px(p.x), cy: py(p.y), r: 4 }, s("title", null, p.label)));
  }
  return svg;
}

// ---- views ------------------------------------------------------------------------------------

async function entitiesView(params) {
  const groups = Object.keys((state.registry && state.registry.groups) || {}).sort();
  const type = params.get("type") || "", match = params.get("match") || "";
  const open = h("form", { class: "inline", id: "open-entity", onsubmit: (e) => {
    e.preventDefault();
    const id = e.target.elements.entity.value.trim();
    if (id) location.hash = "#/entity/" + enc(id);
  } }, h("input", { name: "entity", placeholder: "entity id, e.g. product:123", size: 32, "aria-label": "entity id" }),
     h("button", { type: "submit" }, "Open"));
  const search = h("form", { class: "inline", id: "list-entities", onsubmit: (e) => {
    e.preventDefault();
    const query = new URLSearchParams();
    if (e.target.elements.type.value) query.set("type", e.target.elements.type.value);
    if (e.target.elements.match.value) query.set("match", e.target.elements.match.value);
    location.hash = "#/entities?" + query;
  } }, h("select", { name: "type", "aria-label": "entity type" }, h("option", { value: "" }, "every type"),
         groups.map((g) => h("option", { value: g, selected: g === type }, g))),
     h("input", { name: "match", value: match, placeholder: "id glob, e.g. 12*", "aria-label": "id glob" }),
     h("button", { type: "submit", class: "secondary" }, "List"));
  const query = new URLSearchParams({ limit: "200" });
  if (type) query.set("type", type);
  if (match) query.set("match", match);
  let listing;
  try {
    const found = await api("/v1/entities?" + query);
    listing = found.entities.length
      ? [h("ul", { class: "entities", id: "entity-list" }, found.entities.map((id) => h("li", null, h("a", { href: "#/entity/" + enc(id) }, id)))),
         found.complete ? null : h("p", { class: "muted" }, "The first 200 found; narrow the list with a type or a glob.")]
      : h("p", { class: "muted" }, "No entity found.");
  } catch (error) {
    listing = problem(error);
  }
  show(h("h1", null, "Entities"), open, search, listing);
}

async function entityView(entity) {
  let features;
  try {
    features = (await api("/v1/features/" + enc(entity))).features;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404 && error.rule === "entity")) {
      return show(h("h1", null, entity), problem(error));
    }
    features = {};
  }
  const names = Object.keys(features).sort();
  const rows = names.map((name) => {
    const definition = definitionOf(entity, name);
    return [h("a", { href: `#/lineage/${enc(entity)}/${enc(name)}` }, name), display(features[name], definition),
            definition ? definition.dtype : h("span", { class: "muted" }, "not registered")];
  });
  show(h("h1", null, entity),
    names.length ? table(["feature", "current value", "dtype"], rows, { id: "features" })
      : h("p", { class: "muted", id: "features" }, "No live feature: never written, deleted or expired."),
    canWrite() ? correction(entity) : null);
}

function correction(entity) {
  const outcome = h("div", { id: "put-outcome" });
  const form = h("form", { class: "inline", id: "put-form", onsubmit: async (e) => {
    e.preventDefault();
    const name = e.target.elements.feature.value.trim();
    const typed = e.target.elements.value.value.trim();
    try {
      JSON.parse(typed);
    } catch (_) {
      return outcome.replaceChildren(problem(new Error("the value is not JSON (a string needs quotes)")));
    }
    // The value goes as typed (parsing and writing it again would round integers past 2^53).
    const body = `{"features": {${JSON.stringify(name)}: ${typed}}, "source": "console"}`;
    try {
      const written = await api("/v1/features/" + enc(entity), { method: "PUT", body });
      outcome.replaceChildren(h("p", { class: "notice" }, `${name}: version ${written.versions[name]} written`));
      setTimeout(() => entityView(entity), 600);
    } catch (error) {
      outcome.replaceChildren(problem(error));
    }
  } }, h("input", { name: "feature", placeholder: "feature", required: true, "aria-label": "feature" }),
     h("input", { name: "value", placeholder: "JSON value, e.g. 12.5", required: true, size: 32, "aria-label": "value" }),
     h("button", { type: "submit" }, "Write a new version"));
  return [h("h2", null, "Correct a value"), h("p", { class: "muted" }, "Written through the same checks as every write; the old value stays in the lineage."), form, outcome];
}

async function lineageView(entity, feature) {
  let lineage;
  try {
    lineage = await api(`/v1/lineage/${enc(entity)}/${enc(feature)}`);
  } catch (error) {
    return show(h("h1", null, `${entity} · ${feature}`), problem(error));
  }
  const versions = lineage.versions;  // newest first
  const oldestFirst = versions.slice().reverse();
  const vectors = versions.every((v) => isVector(v.value));
  const previous = new Map(oldestFirst.map((v, i) => [v.version, i > 0 ? oldestFirst[i - 1] : null]));
  const plots = [];
  if (vectors) {
    plots.push(plot(oldestFirst.map((v) => ({ x: v.version, y: norm(v.value), label: `v${v.version}: norm ${fixed(norm(v.value))}` })), "norm over versions"));
    const turns = oldestFirst.slice(1).map((v) => ({ x: v.version, y: cosine(previous.get(v.version).value, v.value) }))
      .filter((p) => p.y !== null).map((p) => ({ ...p, label: `v${p.x}: cosine ${fixed(p.y)} to the version before` }));
    if (turns.length) plots.push(plot(turns, "cosine to the previous version"));
  } else {
    const numeric = oldestFirst.filter((v) => typeof v.value === "number" || typeof v.value === "boolean");
    if (numeric.length) {
      plots.push(plot(numeric.map((v) => ({ x: v.version, y: Number(v.value), label: `v${v.version}: ${v.value} at ${when(v.timestamp)}` })), "value over versions"));
    }
  }
  const outcome = h("div", { id: "rollback-outcome" });
  const items = versions.map((v) => {
    const before = previous.get(v.version);
    const extra = Object.entries(v).filter(([k]) => !KNOWN_VERSION_FIELDS.has(k)).map(([k, x]) => [k, text(x)]);
    return h("li", { class: [v.current ? "current" : "", v.expired ? "expired" : ""].join(" ").trim() || null, "data-version": v.version },
      h("span", { class: "version" }, "v" + v.version), v.current ? h("span", { class: "pill ok" }, "current") : null,
      v.expired ? h("span", { class: "pill bad" }, "expired") : null,
      facts([
        ["value", display(v.value, definitionOf(entity, feature))],
        vectors ? ["norm", fixed(norm(v.value))] : null,
        vectors && before ? ["cosine to v" + before.version, fixed(cosine(before.value, v.value))] : null,
        ["written", when(v.timestamp)],
        v.event_time !== v.timestamp ? ["event time", when(v.event_time)] : null,
        ["expires", v.expires_at ? when(v.expires_at) : "never"],
        ["source", v.source === undefined ? undefined : text(v.source)],
        ["write id", v.write_id === undefined ? undefined : text(v.write_id)],
        ...extra,
      ].filter(Boolean)),
      canWrite() && !v.current ? h("button", { class: "secondary rollback", "data-version": v.version, onclick: () => rollback(entity, feature, v.version, outcome) }, `Roll back to v${v.version}`) : null);
  });
  show(h("h1", null, h("a", { href: "#/entity/" + enc(entity) }, entity), " · ", feature),
    facts([["current version", lineage.current_version], ["versions kept", versions.length], ["expires", lineage.expires_at ? when(lineage.expires_at) : "never"]]),
    h("div", { id: "plots" }, plots), outcome, h("h2", null, "Timeline (newest first)"), h("ol", { class: "timeline", id: "timeline" }, items));
}

const KNOWN_VERSION_FIELDS = new Set(["version", "value", "timestamp", "event_time", "expires_at", "expired", "current", "source", "write_id"]);

async function rollback(entity, feature, version, outcome) {
  if (!confirm(`Write v${version}'s value of ${feature} again, as a new version?`)) return;
  try {
    const done = await api(`/v1/rollback/${enc(entity)}/${enc(feature)}`, { method: "POST", body: { version } });
    await lineageView(entity, feature);
    document.getElementById("rollback-outcome").replaceChildren(h("p", { class: "notice" }, `rolled back: v${done.version} has v${version}'s value`));
  } catch (error) {
    outcome.replaceChildren(problem(error));
  }
}

async function registryView() {
  let registry, history;
  try {
    [registry, history] = await Promise.all([api("/v1/registry"), api("/v1/registry/history?limit=50")]);
  } catch (error) {
    return show(h("h1", null, "Registry"), problem(error));
  }
  state.registry = registry;
  const groups = Object.keys(registry.groups || {}).sort();
  const order = ["dtype", "dim", "precision", "item", "min", "max", "allowed", "nullable", "ttl", "owner", "tags", "description"];
  const sections = groups.map((group) => {
    const features = registry.groups[group];
    const keys = new Set(Object.values(features).flatMap((d) => Object.keys(d)));
    const columns = order.filter((k) => keys.has(k)).concat([...keys].filter((k) => !order.includes(k)).sort());
    const rows = Object.keys(features).sort().map((name) => [name, ...columns.map((k) => {
      const v = features[name][k];
      return v === undefined ? "" : text(v);
    })]);
    return [h("h2", null, group), table(["feature", ...columns], rows, { class: "group", "data-group": group })];
  });
  const changes = history.history.map((entry) => h("li", null,
    h("span", { class: "version" }, "v" + entry.version), `${when(entry.at)} by ${entry.by}`,
    h("ul", null, entry.changes.map((c) => h("li", null, `${c.kind} ${c.group}:${c.feature}`,
      c.before ? h("span", { class: "value" }, " was " + JSON.stringify(c.before)) : null,
      c.after ? h("span", { class: "value" }, " now " + JSON.stringify(c.after)) : null,
      c.breaking ? h("span", { class: "pill bad" }, "breaking") : null)))));
  show(h("h1", null, "Registry"),
    facts([["version", registry.version], ["strict", registry.strict ? "yes: unregistered features are refused" : "no"]]),
    groups.length ? sections : h("p", { class: "muted" }, "No feature is registered: every write is accepted as it comes."),
    h("h2", null, "History of changes"),
    changes.length ? h("ol", { class: "timeline", id: "registry-history" }, changes) : h("p", { class: "muted" }, "No change yet."));
}

// Prometheus text exposition -> [{name, labels, value}]
function samples(text) {
  const found = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const pair of (m[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    found.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return found;
}

function quantile(buckets, q) {
  const sorted = buckets.slice().sort((a, b) => a.le - b.le);
  const total = sorted.length ? sorted[sorted.length - 1].count : 0;
  if (!total) return null;
  const wanted = total * q;
  const hit = sorted.find((b) => b.count >= wanted);
  return hit ? hit.le : null;
}

async function healthView() {
  let ready, metrics;
  try {
    ready = await api("/readyz").catch((error) => { if (error.status === 503) return null; throw error; });
    metrics = samples(await api("/metrics"));
  } catch (error) {
    return show(h("h1", null, "Health"), problem(error));
  }
  const sum = (name, test = () => true) => metrics.filter((m) => m.name === name && test(m.labels)).reduce((t, m) => t + m.value, 0);
  const requests = sum("fsredis_http_requests_total");
  const failed = sum("fsredis_http_requests_total", (l) => l.status.startsWith("5"));
  const asked = sum("fsredis_features_requested_total"), found = sum("fsredis_features_found_total");
  const cards = [
    ["Redis", sum("fsredis_redis_up") >= 1 ? "up" : "down"],
    ["requests", requests], ["5xx answers", failed],
    ["hit rate", asked ? (100 * found / asked).toFixed(1) + "%" : "–"],
    ["pool in use", `${sum("fsredis_redis_pool_in_use")} / ${sum("fsredis_redis_pool_size")}`],
    ["drained entries", sum("fsredis_drain_entries_total")],
  ].map(([label, figure]) => h("div", { class: "card" }, h("div", { class: "muted" }, label), h("div", { class: "figure" }, figure)));
  const routes = new Map();
  for (const m of metrics.filter((x) => x.name === "fsredis_http_request_duration_seconds_bucket")) {
    const key = `${m.labels.method} ${m.labels.route}`;
    if (!routes.has(key)) routes.set(key, []);
    routes.get(key).push({ le: m.labels.le === "+Inf" ? Infinity : Number(m.labels.le), count: m.value });
  }
  const ms = (x) => (x === null ? "–" : x === Infinity ? "> top bucket" : "≤ " + (x * 1000).toFixed(1) + " ms");
  const latency = [...routes.entries()].sort().map(([route, buckets]) => {
    const count = Math.max(...buckets.map((b) => b.count));
    return [route, count, ms(quantile(buckets, 0.5)), ms(quantile(buckets, 0.99))];
  }).filter((row) => row[1] > 0);
  const info = ready;
  show(h("h1", null, "Health"),
    h("p", { class: ready ? "notice" : "error", id: "readiness" }, ready ? "Ready: Redis answers and runs this build's library." : "Not ready: see /readyz."),
    info ? facts([["library version", info.library_version], ["registry version", info.registry_version], ["checked", `${info.checked_seconds_ago} s ago`]]) : null,
    h("div", { class: "cards", id: "cards" }, cards),
    h("h2", null, "Latency by route (since this sidecar started)"),
    latency.length ? table(["route", "requests", "p50", "p99"], latency, { id: "latency" }) : h("p", { class: "muted" }, "No request yet."),
    h("p", { class: "muted" }, "All figures come from /metrics, summed over the sidecar's workers."));
}

// ---- the frame --------------------------------------------------------------------------------

async function route() {
  status();
  try {
    const [path, query] = (location.hash.slice(1) || "/entities").split("?");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);  // (URIError for a stray %)
    for (const link of document.querySelectorAll("nav a")) {
      link.classList.toggle("active", link.dataset.view === parts[0] || (link.dataset.view === "entities" && parts[0] !== "registry" && parts[0] !== "health"));
    }
    if (!state.registry && parts[0] !== "registry") {
      state.registry = await api("/v1/registry").catch(() => null);
    }
    if (parts[0] === "entity" && parts[1]) await entityView(parts[1]);
    else if (parts[0] === "lineage" && parts[2]) await lineageView(parts[1], parts[2]);
    else if (parts[0] === "registry") await registryView();
    else if (parts[0] === "health") await healthView();
    else await entitiesView(new URLSearchParams(query || ""));
  } catch (error) {
    show(problem(error));
  }
}

async function status() {
  const pill = document.getElementById("status");
  try {
    const ready = await api("/readyz");
    pill.textContent = "ready · library " + ready.library_version;
    pill.className = "pill ok";
  } catch (error) {
    pill.textContent = error.status === 503 ? "not ready" : "unreachable";
    pill.className = "pill bad";
  }
}

function showMode() {
  const mode = document.getElementById("mode"), form = document.getElementById("token-form");
  const lock = document.getElementById("lock");
  form.querySelector("button").textContent = state.config.reads_need_token ? "Unlock" : "Unlock writes";
  if (!state.config.writes) {
    mode.textContent = "read-only (the sidecar has no write token)";
    form.hidden = lock.hidden = true;
  } else if (state.token) {
    mode.textContent = "writes unlocked";
    mode.className = "pill ok";
    form.hidden = true;
    lock.hidden = false;
  } else {
    mode.textContent = state.config.reads_need_token ? "locked: reads need the token" : "read-only";
    mode.className = "pill";
    form.hidden = false;
    lock.hidden = true;
  }
}

async function relock() {
  state.token = "";
  sessionStorage.removeItem("fsredis-token");
  showMode();
  await route();
}

async function settings(token) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  return fetch("config.json", { headers }).then((r) => r.json());
}

async function unlock(event) {
  event.preventDefault();
  const given = document.getElementById("token").value.trim();
  if (!given) return;
  if (!(await settings(given)).unlocked) {
    document.getElementById("view").prepend(problem(new Error("that token is not valid")));
    return;
  }
  state.token = given;
  sessionStorage.setItem("fsredis-token", given);
  showMode();
  await route();
}

async function start() {
  state.config = await settings(state.token);
  if (state.token && !state.config.unlocked) {  // a token kept from before that is no longer the one
    state.token = "";
    sessionStorage.removeItem("fsredis-token");
  }
  document.getElementById("token-form").addEventListener("submit", unlock);
  document.getElementById("lock").addEventListener("click", relock);
  showMode();
  window.addEventListener("hashchange", route);
  await route();
  setInterval(status, 2000);
}

start();
