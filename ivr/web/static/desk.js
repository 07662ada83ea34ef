// Agent desk: queue view and screen pops from the controller's websocket.
// Everything shown is built with textContent: caller data never becomes markup.
"use strict";

const REASONS = {
  asked_for_agent: "Asked for a person",
  cancellation: "Wants to cancel",
  cancel_first_year: "Wants to cancel in the first policy year",
  downgrade_accepted: "Accepted a downgrade offer",
  mis_selling: "Mis-selling complaint: handle with care, no sales pitch",
  verification_failed: "Could not be verified",
  verification_locked: "Verification locked after repeated failures",
  verification_trouble: "Trouble with verification",
  backend_unavailable: "Our systems were unavailable",
  controller_restart: "IVR restarted during the call",
  claim: "Claim question",
};
const CANCEL_REASONS = {
  family: "Family objects", expensive: "Too expensive", duplicate: "Has other cover",
  mis_selling: "Says it was mis-sold", other: "Other reason",
};
const OUTCOME_LABELS = {
  saved: "Saved", downgraded: "Downgraded", cancelled: "Cancelled", paid: "Paid", updated: "Updated", other: "Other",
};

const state = { agent: null, outcomes: [], queues: [], offset: 0, pops: new Map(), socket: null, retry: 0 };
window.__desk = { popReceivedAt: {}, messages: 0 };   // read by the browser tests

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const label = (code, table) => (code ? (table[code] || code.replace(/[_-]+/g, " ")) : "");
const money = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString(undefined,
  { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const date = (t) => new Date(t * 1000).toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" });
const serverNow = () => Date.now() / 1000 + state.offset;

function since(t) {
  const s = Math.max(0, Math.round(serverNow() - t));
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h ${m % 60}m` : `${m}:${String(s % 60).padStart(2, "0")}`;
}

// --- queue view ---------------------------------------------------------------

function renderQueues() {
  const box = document.getElementById("queues");
  box.replaceChildren(...state.queues.map((q) => {
    const rows = q.waiting.map((w) => el("li", { class: "waiting" + (w.ringing_you ? " ringing-you" : ""),
                                                  "data-ref": w.ref },
      el("span", { class: "wait", "data-since": w.since }, since(w.since)),
      el("span", { class: "prio", title: "priority" }, `P${w.priority}`),
      el("span", { class: "reason" }, label(w.reason, REASONS) || "—"),
      w.ringing_you ? el("span", { class: "badge ring" }, "ringing you")
        : (w.ringing ? el("span", { class: "badge" }, `ringing ${w.ringing}`) : null)));
    return el("section", { class: "queue", "data-queue": q.name },
      el("h3", {}, q.name.replace(/_/g, " "), el("span", { class: "count" + (q.waiting.length ? "" : " zero") }, String(q.waiting.length))),
      rows.length ? el("ul", {}, rows) : el("p", { class: "none" }, "Nobody waiting"));
  }));
}

function tick() {
  for (const node of document.querySelectorAll("[data-since]")) node.textContent = since(Number(node.dataset.since));
}

// --- screen pop -------------------------------------------------------------------

function section(title, ...content) {
  return el("section", { class: "block" }, el("h3", {}, title), ...content);
}

function renderPop(pop) {
  const c = pop.caller;
  const head = el("div", { class: "pop-head" },
    el("div", { class: "caller" },
      el("h2", { class: "name" }, c.name || "Unidentified caller"),
      el("span", { class: "badge " + (c.verified ? "ok" : "warn"), "data-field": "verified" },
        c.verified ? "Verified" : "Not verified")),
    el("div", { class: "facts" },
      c.ani ? el("span", {}, c.ani) : null,
      c.language ? el("span", {}, c.language.toUpperCase()) : null,
      el("span", {}, `Queue ${pop.queue.replace(/_/g, " ")}`),
      pop.answered_at ? el("span", {}, `waited ${Math.max(0, Math.round(pop.answered_at - pop.routed_at))} s`) : null,
      el("span", { class: "status", "data-field": "call-status" }, pop.call_status === "ended" ? "Call ended" : "On call")));

  const r = pop.routing;
  const why = el("div", { class: "why", "data-field": "routing" },
    el("strong", {}, label(r.reason, REASONS) || "Routed"),
    el("span", { class: "rule" }, `rule ${r.rule}`),
    r.priority !== null && r.priority !== undefined ? el("span", { class: "rule" }, `priority ${r.priority}`) : null,
    r.detail ? el("span", { class: "rule" }, r.detail) : null,
    r.preferred_agent ? el("span", { class: "rule" }, `prefers agent ${r.preferred_agent}`) : null);

  // A/B tests: what this caller heard may differ from the flow as written ("experiment: arm")
  const arms = Object.entries(pop.experiments || {});
  const experiments = arms.length ? el("div", { class: "experiments", "data-field": "experiments" },
    el("span", { class: "k" }, "A/B tests"),
    arms.map(([name, arm]) => el("div", { "data-experiment": name }, `${name}: ${arm}`))) : null;

  let cancel = null;
  if (pop.cancellation) {
    const k = pop.cancellation;
    const offer = k.downgrade ? [
      k.downgrade.lower_premium !== undefined ? `premium ${money(k.downgrade.lower_premium)}` : null,
      k.downgrade.lower_sum_assured !== undefined ? `sum assured ${money(k.downgrade.lower_sum_assured)}` : null,
    ].filter(Boolean).join(", ") : "";
    cancel = el("div", { class: "cancel", "data-field": "cancellation" },
      el("div", {}, el("span", { class: "k" }, "Stated reason"),
        el("strong", { "data-field": "cancel-reason" }, label(k.reason, CANCEL_REASONS) || "not given")),
      el("div", {}, el("span", { class: "k" }, "Downgrade offered"),
        el("span", { "data-field": "downgrade" }, offer || "none offered"),
        k.downgrade_answer ? el("span", { class: "badge " + (k.downgrade_answer === "accepted" ? "ok" : "warn") },
          k.downgrade_answer) : null));
  }

  const outcome = el("div", { class: "outcome", role: "group", "aria-label": "Outcome" },
    el("span", { class: "k" }, "Outcome"),
    ...state.outcomes.map((o) => el("button", {
      type: "button", "data-outcome": o, class: pop.outcome === o ? "chosen" : null,
      "aria-pressed": pop.outcome === o ? "true" : "false",
      onclick: () => sendOutcome(pop.call_id, o),
    }, OUTCOME_LABELS[o] || o)),
    el("span", { class: "saved-note", "data-field": "outcome" },
      pop.outcome ? `Recorded: ${OUTCOME_LABELS[pop.outcome] || pop.outcome}` : ""));

  const policies = pop.policies.length ? el("table", { class: "policies" },
    el("thead", {}, el("tr", {}, ["Policy", "Product", "Status", "Premium", "Sold via", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, pop.policies.map((p) => el("tr", { "data-policy": p.number },
      el("td", {}, p.number), el("td", {}, p.product || "—"), el("td", {}, p.status || "—"),
      el("td", { class: "num" }, money(p.premium)), el("td", {}, p.sales_channel || "—"),
      el("td", {}, p.first_year ? el("span", { class: "badge info" }, "first year") : null,
        p.orphan ? el("span", { class: "badge warn" }, "orphan") : null)))))
    : el("p", { class: "none" }, "No policy on file for this caller.");

  const path = el("ol", { class: "path" }, pop.path.map(renderTurn));
  const failed = pop.failed_at ? el("p", { class: "failed-at", "data-field": "failed-at" },
    `IVR trouble: ${TROUBLE[pop.failed_at.kind] || pop.failed_at.kind} at ${pop.failed_at.flow}.${pop.failed_at.node}`
    + (pop.failed_at.heard ? ` (heard “${said(pop.failed_at.heard)}”)` : "")) : null;

  const contacts = pop.contacts.length ? el("ul", { class: "contacts" }, pop.contacts.map((x) => el("li", {},
    el("span", { class: "when" }, date(x.at)), el("span", {}, x.summary || x.kind),
    x.outcome ? el("span", { class: "badge" }, x.outcome) : null, x.agent ? el("span", { class: "by" }, `agent ${x.agent}`) : null)))
    : el("p", { class: "none" }, "No earlier contact.");

  return el("article", { class: "pop" + (pop.outcome ? " done" : ""), "data-call": pop.call_id },
    head, why, experiments, cancel, outcome,
    el("div", { class: "cols" },
      section("Policies", policies),
      section("Recent contacts", contacts)),
    el("details", { class: "block", open: true }, el("summary", {}, `IVR path (${pop.path.length} steps)`), failed, path));
}

const TROUBLE = { noinput: "no answer", nomatch: "not understood", escape: "gave up", input: "unsure what was said",
                  backend: "system error", return: "verification failed" };
// "#123" is how the engine records keys; anything else is what the recogniser heard
const said = (heard) => (heard.startsWith("#") ? `keyed ${heard.slice(1)}` : heard);

function renderTurn(t) {
  const minor = ["start", "call", "return", "prompt"].includes(t.kind) && !t.failed;
  let what = null;
  if (t.heard) {
    what = t.heard.startsWith("#") ? el("span", { class: "said keys" }, said(t.heard))
      : el("q", { class: "said" }, t.heard);
  }
  const detail = t.kind === "start" ? null : t.detail;
  return el("li", { class: [t.failed ? "failed" : "", minor ? "minor" : ""].join(" ").trim() || null },
    el("span", { class: "where" }, `${t.flow}.${t.node}`),
    el("span", { class: "kind" }, t.kind),
    what,
    t.confidence !== null && t.confidence !== undefined ? el("span", { class: "conf" }, `${Math.round(t.confidence * 100)}%`) : null,
    t.matched ? el("span", { class: "matched" }, `→ ${t.matched}`) : null,
    detail ? el("span", { class: "detail" }, detail) : null);
}

function renderPops() {
  const box = document.getElementById("pops");
  const pops = [...state.pops.values()].sort((a, b) => (b.answered_at || 0) - (a.answered_at || 0));
  document.getElementById("no-pop").hidden = pops.length > 0;
  for (const node of box.querySelectorAll("article.pop")) node.remove();
  box.append(...pops.map(renderPop));
}

async function sendOutcome(callId, outcome) {
  const pop = state.pops.get(callId);
  const note = document.querySelector(`article[data-call="${CSS.escape(callId)}"] [data-field="outcome"]`);
  if (note) note.textContent = "Saving…";
  try {
    const res = await fetch(`/agent/api/calls/${encodeURIComponent(callId)}/outcome`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ outcome }),
      credentials: "same-origin",
    });
    if (res.status === 401) { location.reload(); return; }
    if (!res.ok) throw new Error((await res.json()).message || res.statusText);
    if (pop) { pop.outcome = outcome; renderPops(); }
  } catch (err) {
    if (note) note.textContent = `Not saved: ${err.message}. Click again.`;
  }
}

// --- connection ------------------------------------------------------------------

function setLink(text, s) {
  const link = document.getElementById("link");
  link.textContent = text;
  link.dataset.state = s;
}

function onMessage(msg) {
  window.__desk.messages += 1;
  if (msg.type === "hello") {
    state.agent = msg.agent;
    state.outcomes = msg.outcomes;
    document.getElementById("agent-name").textContent = `${msg.agent.name} (${msg.agent.id})`;
  } else if (msg.type === "queues") {
    state.offset = msg.now - Date.now() / 1000;
    state.queues = msg.queues;
    renderQueues();
  } else if (msg.type === "pop") {
    if (!state.pops.has(msg.pop.call_id)) window.__desk.popReceivedAt[msg.pop.call_id] = Date.now();
    state.pops.set(msg.pop.call_id, msg.pop);
    renderPops();
    if (document.hidden) document.title = "● Caller connected — Agent desk";
  } else if (msg.type === "outcome" || msg.type === "call") {
    const pop = state.pops.get(msg.call_id);
    if (!pop) return;
    if (msg.type === "outcome") pop.outcome = msg.outcome; else pop.call_status = msg.status;
    renderPops();
  }
}

function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/agent/ws`);
  state.socket = socket;
  socket.addEventListener("open", () => { state.retry = 0; setLink("live", "live"); });
  socket.addEventListener("message", (event) => { if (event.data !== "pong") onMessage(JSON.parse(event.data)); });
  socket.addEventListener("close", async () => {
    setLink("reconnecting…", "down");
    const res = await fetch("/agent/api/queues", { credentials: "same-origin" }).catch(() => null);
    if (res && res.status === 401) { location.reload(); return; }
    state.retry = Math.min(state.retry + 1, 6);
    setTimeout(connect, 500 * 2 ** state.retry * (0.5 + Math.random()));
  });
}

document.addEventListener("visibilitychange", () => { if (!document.hidden) document.title = "Agent desk"; });
setInterval(tick, 1000);
connect();
