// The agent workspace's one script: board drawing, drag and drop, the keyboard "Move to…"
// menu, live updates (server-sent events), the card view's actions, the new-request form
// and the admin forms. Hand-written, no dependencies, no build step. Every change goes
// through the agents' API with the session cookie and its CSRF token.

const dataEl = document.getElementById("page-data");
const DATA = dataEl ? JSON.parse(dataEl.textContent) : null;
const T = (DATA && DATA.t) || {};
// a viewer reads: no drag, no move dialog, no forms that change a card (the API refuses anyway)
const READ_ONLY = document.body.dataset.readonly === "1";
const PLURAL = new Intl.PluralRules(document.documentElement.lang || "en");

// "1 card", "3 cards"; in Russian "1 карточка", "3 карточки", "5 карточек"
export function countCards(n) {
  const form = PLURAL.select(n);
  const word = T[`card_${form}`] || T[form === "one" ? "card_one" : "card_many"] || T.cards;
  return `${n} ${word}`;
}
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";

// --- helpers -------------------------------------------------------------------------------

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ESC[c]);
const fmt = (key, vars = {}) =>
  (T[key] || key).replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : `{${k}}`));

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = CSRF;
  const r = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = null;
  try { json = await r.json(); } catch { json = null; }
  return { status: r.status, ok: r.ok, body: json };
}

function errorText(res) {
  const b = res.body || {};
  if (b.message) return b.message;
  if (Array.isArray(b.detail)) return b.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  if (typeof b.detail === "string") return b.detail;
  return `HTTP ${res.status}`;
}

function announce(msg) {
  const el = document.getElementById("announce");
  if (!el) return;
  el.textContent = "";
  // a fresh text node makes screen readers speak the same message twice in a row too
  setTimeout(() => { el.textContent = msg; }, 30);
}

let toastTimer = null;
function toast(msg, kind = "error") {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = msg;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 12000 : 4000);
}

export function duration(seconds) {
  let s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60);
  const [ud, uh, um] = (T.units || "d h m").split(" ");
  if (d) return `${d}${ud} ${h}${uh}`;
  if (h) return `${h}${uh} ${m}${um}`;
  return `${m}${um}`;
}

// the server's clock is the reference (cards' times are the server's)
const skew = DATA && DATA.now ? Date.parse(DATA.now) - Date.now() : 0;
const now = () => Date.now() + skew;

// --- the board -----------------------------------------------------------------------------

const PRIORITIES = ["low", "medium", "high", "critical"];

export function slaSignal(card, at) {
  // colour from the card's worst live SLA alert; time from its nearest open deadline
  const state = card.sla_state;
  const colour = state === "breached" ? "red" : state === "warning" ? "yellow" : "green";
  let nearest = null;
  for (const s of Object.values(card.sla || {})) {
    if (s.state === "met" || !s.deadline) continue;
    const d = Date.parse(s.deadline);
    if (nearest === null || d < nearest) nearest = d;
  }
  let text = T[colour === "red" ? "sla_breached" : colour === "yellow" ? "sla_warning" : "sla_ok"];
  if (nearest !== null) {
    const left = (nearest - at) / 1000;
    text = left >= 0 ? fmt("left", { t: duration(left) }) : fmt("overdue", { t: duration(left) });
  }
  return { colour: nearest !== null && nearest < at ? "red" : colour, text };
}

function briefFromApi(c) {
  const req = c.requester || {};
  return {
    id: c.id, number: c.number, title: c.title, version: c.version, service_id: c.service_id,
    column_id: c.column_id, lane_id: c.lane_id, priority: c.priority,
    assignee_id: c.assignee_id, requester: req.name || req.email || null,
    unread: !!c.unread_customer_reply, sla: c.sla || {}, sla_state: c.sla_state,
    entered: c.column_entered_at, board_id: c.board_id,
    kind: c.kind, type: c.type, priority_key: c.priority_key, labels: c.labels || [],
    blocked: !!c.blocked,
    blockers: (c.blockers || []).filter((b) => !b.resolved_at).map((b) => b.card_number || b.reason),
    rating: c.rating ? c.rating.score : null, due_date: c.due_date,
    checklist: [(c.checklist || []).filter((i) => i.done).length, (c.checklist || []).length],
  };
}

// Colours come from the board's configuration: set through the CSSOM (the page's CSP
// allows no inline style attributes).
export function paintColours(scope) {
  for (const el of scope.querySelectorAll("[data-color]")) {
    if (/^#[0-9a-fA-F]{6}$/.test(el.dataset.color)) el.style.setProperty("--c", el.dataset.color);
  }
}

// What a tile says beyond its number and title: type, labels, blockers, due date,
// checklist progress (done/total), rating.
function tileExtras(c, board) {
  const type = (board.card_types || []).find((x) => x.id === c.type);
  const bits = [];
  if (type) bits.push(`<span class="chip type" data-color="${esc(type.color)}">${esc(type.name)}</span>`);
  for (const l of c.labels || []) bits.push(`<span class="chip label" data-color="${esc(l.color)}">${esc(l.name)}</span>`);
  if (c.blocked) bits.push(`<span class="chip blocked" title="${esc((c.blockers || []).join("; "))}">⛔ ${esc(T.blocked)}${c.blockers && c.blockers.length ? ": " + esc(c.blockers.join("; ")) : ""}</span>`);
  if (c.due_date) bits.push(`<span class="chip due">${esc(fmt("due_short", { d: c.due_date }))}</span>`);
  if (c.checklist && c.checklist[1]) bits.push(`<span class="chip checklist" title="${esc(T.checklist || "")}">☑ ${c.checklist[0]}/${c.checklist[1]}</span>`);
  if (c.rating) bits.push(`<span class="chip rating" aria-label="${esc(T.rating)} ${esc(c.rating)}/5">★${esc(c.rating)}</span>`);
  return bits.length ? `<p class="chips">${bits.join("")}</p>` : "";
}

function initBoard() {
  const root = document.getElementById("board");
  const board = DATA.board;
  const cards = new Map(DATA.cards.map((c) => [c.id, c]));
  const columns = new Map(board.columns.map((c) => [c.id, c]));
  const collapsedKey = `desk.collapsed.${board.id}`;
  const collapsed = new Set(JSON.parse(localStorage.getItem(collapsedKey) || "[]"));
  root.style.setProperty("--columns", board.columns.length);

  function timeInColumn(card, at) {
    const secs = (at - Date.parse(card.entered)) / 1000;
    const limit = columns.get(card.column_id)?.time_limit_minutes;
    return { text: fmt("in_column", { t: duration(Math.max(0, secs)) }),
             stale: !!limit && secs > limit * 60, limit };
  }

  function tileHtml(c, at) {
    const sla = slaSignal(c, at);
    const tic = timeInColumn(c, at);
    const service = DATA.services[c.service_id] || c.service_id || "";
    const assignee = c.assignee_id ? (DATA.agents[c.assignee_id] || c.assignee_id) : T.unassigned;
    const prio = PRIORITIES.includes(c.priority) ? c.priority : "medium";
    const own = (board.priorities || []).find((p) => p.id === (c.priority_key || c.priority));
    return `<article class="tile prio-${prio}${tic.stale ? " stale" : ""}${c.blocked ? " is-blocked" : ""}" draggable="${READ_ONLY ? "false" : "true"}" tabindex="0"`
      + (own ? ` data-color="${esc(own.color)}"` : "")
      + ` data-id="${esc(c.id)}" role="listitem" aria-roledescription="card"`
      + ` aria-label="${esc(c.number)} ${esc(c.title)}">`
      + `<div class="tile-top"><a class="num" href="/cards/${esc(c.number)}">${esc(c.number)}</a>`
      + `<span class="prio-label">${esc(own ? own.name : (T[prio] || prio))}</span>`
      + (c.unread ? `<span class="badge unread">${esc(T.new_reply)}</span>` : "")
      + `</div><p class="title">${esc(c.title)}</p>` + tileExtras(c, board)
      + `<p class="sub">${esc(service)}${c.requester ? " · " + esc(c.requester) : ""}</p>`
      + `<p class="sub">${esc(T.assignee)}: ${esc(assignee)}</p>`
      + `<p class="signals"><span class="sla sla-${sla.colour}" data-sla>${esc(sla.text)}</span>`
      + `<span class="tic${tic.stale ? " stale" : ""}" data-tic title="${tic.stale ? esc(fmt("stale", { m: tic.limit })) : ""}">`
      + `${esc(tic.text)}${tic.stale ? " ⚠" : ""}</span></p>`
      + `<button type="button" class="move-btn" data-move aria-label="${esc(T.move_to)} ${esc(c.number)}">⇄</button>`
      + `</article>`;
  }

  function render() {
    const at = now();
    const byCell = new Map();
    for (const c of cards.values()) {
      const key = `${c.lane_id}|${c.column_id}`;
      if (!byCell.has(key)) byCell.set(key, []);
      byCell.get(key).push(c);
    }
    const counts = new Map();
    for (const c of cards.values()) counts.set(c.column_id, (counts.get(c.column_id) || 0) + 1);
    const parts = ['<div class="col-heads" role="presentation">'];
    for (const col of board.columns) {
      const n = counts.get(col.id) || 0;
      const over = col.wip_limit && n > col.wip_limit;
      parts.push(`<div class="col-head${over ? " over" : ""}"><h2>${esc(col.name)}</h2>`
        + `<span class="count">${n}${col.wip_limit ? " / " + col.wip_limit : ""}</span>`
        + (col.time_limit_minutes ? `<span class="limit">${esc(fmt("limit", { m: col.time_limit_minutes }))}</span>` : "")
        + "</div>");
    }
    parts.push("</div>");
    for (const lane of board.lanes) {
      const closed = collapsed.has(lane.id);
      let laneCount = 0;
      for (const col of board.columns) laneCount += (byCell.get(`${lane.id}|${col.id}`) || []).length;
      parts.push(`<section class="lane${closed ? " collapsed" : ""}" data-lane="${esc(lane.id)}" aria-label="${esc(lane.name)}">`
        + `<h2 class="lane-head"><button type="button" class="lane-toggle" aria-expanded="${!closed}"`
        + ` aria-controls="lane-${esc(lane.id)}">${closed ? "▸" : "▾"} ${esc(lane.name)}`
        + ` <span class="count">${esc(countCards(laneCount))}</span></button></h2>`
        + `<div class="lane-body" id="lane-${esc(lane.id)}"${closed ? " hidden" : ""}>`);
      for (const col of board.columns) {
        const list = byCell.get(`${lane.id}|${col.id}`) || [];
        parts.push(`<div class="cell" data-column="${esc(col.id)}" data-lane="${esc(lane.id)}"`
          + ` role="list" aria-label="${esc(lane.name)} · ${esc(col.name)}">`);
        if (!closed) for (const c of list) parts.push(tileHtml(c, at));
        parts.push("</div>");
      }
      parts.push("</div></section>");
    }
    root.innerHTML = parts.join("");
    paintColours(root);
    root.setAttribute("aria-busy", "false");
  }

  function refreshTimes() {
    const at = now();
    for (const el of root.querySelectorAll(".tile")) {
      const c = cards.get(el.dataset.id);
      if (!c) continue;
      const sla = slaSignal(c, at);
      const tic = timeInColumn(c, at);
      const s = el.querySelector("[data-sla]");
      s.className = `sla sla-${sla.colour}`; s.textContent = sla.text;
      const t = el.querySelector("[data-tic]");
      t.className = `tic${tic.stale ? " stale" : ""}`;
      t.textContent = tic.text + (tic.stale ? " ⚠" : "");
      el.classList.toggle("stale", tic.stale);
    }
  }

  function focusCard(id) {
    root.querySelector(`.tile[data-id="${CSS.escape(id)}"]`)?.focus();
  }

  async function move(id, column, lane) {
    const card = cards.get(id);
    if (!card || (card.column_id === column && card.lane_id === lane)) return;
    const before = { ...card };
    Object.assign(card, { column_id: column, lane_id: lane, entered: new Date(now()).toISOString() });
    render(); focusCard(id);
    const res = await api("POST", `/v1/cards/${encodeURIComponent(id)}/move`,
      { column_id: column, lane_id: lane, version: before.version });
    if (res.ok) {
      cards.set(id, { ...card, ...briefFromApi(res.body) });
      render(); focusCard(id);
      announce(fmt("moved", { number: card.number, column: columns.get(column)?.name || column }));
      return;
    }
    // refused: show the card as it really is now, and say why
    const fresh = await api("GET", `/v1/cards/${encodeURIComponent(id)}`);
    if (fresh.ok) cards.set(id, briefFromApi(fresh.body)); else cards.set(id, before);
    render(); focusCard(id);
    const code = res.body && res.body.error;
    if (res.status === 409 && code === "stale_version") toast(fmt("conflict", { number: card.number }));
    else if (res.status === 409) toast(fmt("wip", { message: errorText(res) }));
    else toast(fmt("error", { message: errorText(res) }));
  }

  // drag and drop (HTML5)
  let dragged = null;
  root.addEventListener("dragstart", (e) => {
    const tile = e.target.closest?.(".tile");
    if (!tile || READ_ONLY) return;
    dragged = tile.dataset.id;
    e.dataTransfer.setData("text/plain", dragged);
    e.dataTransfer.effectAllowed = "move";
    tile.classList.add("dragging");
  });
  root.addEventListener("dragend", (e) => {
    e.target.closest?.(".tile")?.classList.remove("dragging");
    for (const el of root.querySelectorAll(".drop-target")) el.classList.remove("drop-target");
  });
  root.addEventListener("dragover", (e) => {
    const cell = e.target.closest?.(".cell");
    if (!cell || !dragged) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "move";
    if (!cell.classList.contains("drop-target")) {
      for (const el of root.querySelectorAll(".drop-target")) el.classList.remove("drop-target");
      cell.classList.add("drop-target");
    }
  });
  root.addEventListener("drop", (e) => {
    const cell = e.target.closest?.(".cell");
    if (!cell) return;
    e.preventDefault();
    const id = e.dataTransfer.getData("text/plain") || dragged;
    dragged = null;
    cell.classList.remove("drop-target");
    if (id) move(id, cell.dataset.column, cell.dataset.lane);
  });

  // keyboard: Enter/Space on a card (or its ⇄ button) opens "Move to…"
  const dialog = document.getElementById("move-dialog");
  let moving = null;
  function openMove(id) {
    const c = cards.get(id);
    if (!c) return;
    moving = id;
    dialog.querySelector("#move-column").value = c.column_id;
    dialog.querySelector("#move-lane").value = c.lane_id;
    dialog.showModal();
    dialog.querySelector("#move-column").focus();
  }
  dialog.addEventListener("close", () => {
    const id = moving; moving = null;
    if (!id) return;
    if (dialog.returnValue === "move") {
      move(id, dialog.querySelector("#move-column").value, dialog.querySelector("#move-lane").value);
    } else focusCard(id);
  });
  root.addEventListener("click", (e) => {
    const btn = e.target.closest("[data-move]");
    if (btn) { openMove(btn.closest(".tile").dataset.id); return; }
    const toggle = e.target.closest(".lane-toggle");
    if (toggle) {
      const lane = toggle.closest(".lane").dataset.lane;
      if (collapsed.has(lane)) collapsed.delete(lane); else collapsed.add(lane);
      localStorage.setItem(collapsedKey, JSON.stringify([...collapsed]));
      render();
      root.querySelector(`.lane[data-lane="${CSS.escape(lane)}"] .lane-toggle`)?.focus();
    }
  });
  root.addEventListener("keydown", (e) => {
    const tile = e.target.classList?.contains("tile") ? e.target : null;
    if (!tile) return;
    if (READ_ONLY) return;
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openMove(tile.dataset.id); }
  });

  // live updates
  const liveState = document.getElementById("live-state");
  function connect() {
    const es = new EventSource(`/v1/live?board=${encodeURIComponent(board.id)}`);
    let connected = false;
    es.addEventListener("hello", () => {
      // after a reconnect (a replica restarted) changes may have been missed: re-read all
      if (connected) resync();
      connected = true;
      liveState.textContent = T.live_on; liveState.classList.add("on");
      document.body.dataset.live = "on";
    });
    es.addEventListener("resync", () => location.reload());
    es.addEventListener("change", async (e) => {
      const ev = JSON.parse(e.data);
      if (!ev.card_id) return;
      const known = cards.get(ev.card_id);
      if (known && ev.version && known.version >= ev.version) return; // our own change
      const res = await api("GET", `/v1/cards/${encodeURIComponent(ev.card_id)}`);
      const focused = document.activeElement?.closest?.(".tile")?.dataset.id;
      if (res.ok && res.body.board_id === board.id) {
        cards.set(ev.card_id, briefFromApi(res.body));
        announce(fmt(known ? "live_change" : "live_new", { number: res.body.number }));
      } else if (res.status === 404) cards.delete(ev.card_id);
      else return;
      render();
      if (focused) focusCard(focused);
    });
    es.onerror = () => {
      liveState.textContent = T.live_off; liveState.classList.remove("on");
      document.body.dataset.live = "off";
    };
  }

  async function resync() {
    const params = new URLSearchParams(location.search);
    const query = new URLSearchParams({ board: board.id, limit: "200" });
    for (const k of ["service", "priority", "sla", "assignee", "q"]) if (params.get(k)) query.set(k, params.get(k));
    const fresh = new Map();
    for (let cursor = null, n = 0; n < 10; n++) {
      if (cursor) query.set("cursor", cursor);
      const res = await api("GET", `/v1/cards?${query}`);
      if (!res.ok) return;
      for (const c of res.body.items) fresh.set(c.id, briefFromApi(c));
      cursor = res.body.next_cursor;
      if (!cursor) break;
    }
    cards.clear();
    for (const [id, c] of fresh) cards.set(id, c);
    render();
  }

  render();
  connect();
  setInterval(refreshTimes, 30_000);
  window.deskBoard = { cards, move, render };
  window.__boardReadyAt = performance.now();
  document.body.dataset.ready = "1";
}

// --- the card view -------------------------------------------------------------------------

function initCard() {
  const card = DATA.card;
  const base = `/v1/cards/${encodeURIComponent(card.id)}`;
  const form = document.getElementById("reply-form");
  const canned = document.getElementById("canned");
  const preview = document.getElementById("canned-preview");
  const byId = new Map(DATA.canned.map((c) => [c.id, c]));

  function fill(text) {
    const req = card.requester || {};
    const vars = { number: card.number, title: card.title, customer_name: req.name || "",
                   customer_email: req.email || "", agent_name: DATA.agent_name || "" };
    return text.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m));
  }
  canned?.addEventListener("change", () => {
    const c = byId.get(canned.value);
    preview.hidden = !c;
    preview.textContent = c ? fill(c.text) : "";
  });
  function syncKind() {
    const kind = form.querySelector('input[name="visibility"]:checked')?.value;
    form.dataset.kind = kind;
  }
  form.addEventListener("change", syncKind);
  syncKind();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { visibility: form.querySelector('input[name="visibility"]:checked').value,
                   text: form.querySelector("#reply-text").value || null };
    if (canned && canned.value) body.canned_response_id = canned.value;
    const send = document.getElementById("reply-send");
    send.disabled = true;
    try {
      body.attachments = [];
      for (const file of document.getElementById("reply-files").files) {
        const data = new FormData();
        data.append("file", file);
        const up = await fetch("/v1/attachments", { method: "POST", body: data,
          credentials: "same-origin", headers: { "X-CSRF-Token": CSRF } });
        let json = null;
        try { json = await up.json(); } catch { json = null; }
        if (!up.ok) { toast(fmt("error", { message: errorText({ status: up.status, body: json }) })); return; }
        body.attachments.push(json);
      }
    } finally { send.disabled = false; }
    const res = await api("POST", `${base}/comments`, body);
    if (res.ok) location.reload();
    else toast(fmt("error", { message: errorText(res) }));
  });

  async function refresh() {
    const res = await api("GET", base);
    if (!res.ok) return;
    card.version = res.body.version;
    card.checklist = res.body.checklist;
    document.getElementById("card-version").textContent = card.version;
  }
  async function edited(res) {
    if (res.ok) { location.reload(); return; }
    if (res.status === 409 && res.body?.error === "stale_version") {
      await refresh();
      toast(fmt("conflict", { number: card.number }));
    } else toast(fmt("error", { message: errorText(res) }));
  }
  // who is responsible is a deliberate choice: the latest one wins (no version check)
  document.getElementById("edit-assignee").addEventListener("change", async (e) => {
    edited(await api("POST", `${base}/assign`, { assignee_id: e.target.value || null }));
  });
  // others' changes (and SLA signals) keep this page's version current, so edits stay valid
  const live = new EventSource(`/v1/live?board=${encodeURIComponent(card.board_id)}`);
  live.addEventListener("change", (e) => {
    const ev = JSON.parse(e.data);
    if (ev.card_id !== card.id) return;
    refresh();
    announce(fmt("live_change", { number: card.number }));
  });
  // title, tags and due date: one save, only what changed, with the card's version
  document.getElementById("card-details").addEventListener("submit", async (e) => {
    e.preventDefault();
    const title = document.getElementById("edit-title").value.trim();
    const tags = [...new Set(document.getElementById("edit-tags").value.split(",")
      .map((x) => x.trim()).filter(Boolean))];
    const due = document.getElementById("edit-due").value || null;
    const body = { version: card.version };
    if (title && title !== card.title) body.title = title;
    if (JSON.stringify(tags) !== JSON.stringify(card.tags || [])) body.tags = tags;
    if (due !== (card.due_date || null)) body.due_date = due;
    if (Object.keys(body).length === 1) { announce(T.saved); return; }
    edited(await api("PATCH", base, body));
  });
  document.getElementById("edit-priority").addEventListener("change", async (e) => {
    edited(await api("PATCH", base, { version: card.version, priority_key: e.target.value }));
  });

  document.getElementById("mark-read")?.addEventListener("click", async () => {
    const res = await api("POST", `${base}/read`);
    if (res.ok) location.reload(); else toast(fmt("error", { message: errorText(res) }));
  });

  const list = document.getElementById("checklist");
  function drawChecklist() {
    list.innerHTML = card.checklist.map((item, i) =>
      `<li><label><input type="checkbox" data-i="${i}"${item.done ? " checked" : ""}${READ_ONLY ? " disabled" : ""}> ${esc(item.text)}</label></li>`).join("");
  }
  // `change` maps the current list to the wanted one, so after a conflict (someone else
  // changed the card meanwhile) the same intent is re-applied to the fresh list once.
  async function saveChecklist(change, retried = false) {
    const res = await api("PATCH", base, { version: card.version, checklist: change(card.checklist) });
    if (res.ok) {
      card.version = res.body.version; card.checklist = res.body.checklist;
      document.getElementById("card-version").textContent = card.version;
      announce(T.saved);
    } else if (res.status === 409 && !retried) {
      await refresh();
      return saveChecklist(change, true);
    } else if (res.status === 409) toast(fmt("conflict", { number: card.number }));
    else toast(fmt("error", { message: errorText(res) }));
    drawChecklist();
  }
  list.addEventListener("change", (e) => {
    const i = Number(e.target.dataset.i);
    const done = e.target.checked;
    saveChecklist((items) => items.map((it, j) => (j === i ? { ...it, done } : it)));
  });
  document.getElementById("checklist-add").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = document.getElementById("check-new");
    const text = input.value.trim();
    if (!text) return;
    saveChecklist((items) => [...items, { text, done: false }]);
    input.value = "";
  });
  drawChecklist();

  document.getElementById("link-add").addEventListener("submit", async (e) => {
    e.preventDefault();
    const child = document.getElementById("link-child").value.trim();
    if (!child) return;
    const res = await api("POST", `${base}/links`, { child });
    if (res.ok) location.reload(); else toast(fmt("error", { message: errorText(res) }));
  });

  // running SLA clocks count down in place
  const clocks = [...document.querySelectorAll(".clock[data-left]")];
  const started = Date.now();
  if (clocks.length) setInterval(() => {
    for (const el of clocks) {
      const left = Number(el.dataset.left) - (Date.now() - started) / 1000;
      el.textContent = left >= 0 ? fmt("left", { t: duration(left) }) : fmt("overdue", { t: duration(left) });
      el.classList.toggle("over", left < 0);
    }
  }, 1000);
  document.body.dataset.ready = "1";
}

// --- manual request (phone) ----------------------------------------------------------------

export function fieldApplies(field, values) {
  if (!field.condition) return true;
  let other = values[field.condition.field];
  if (Array.isArray(other)) return other.some((v) => field.condition.in.includes(String(v)));
  if (typeof other === "boolean") other = other ? "true" : "false";
  return other !== undefined && other !== null && other !== "" && field.condition.in.includes(String(other));
}

function label(l) { return (l && ((DATA.lang === "ru" && l.ru) || l.en)) || ""; }

function fieldInput(f, id) {
  const req = f.required ? " required" : "";
  const opts = (f.options || []).map((o) => `<option value="${esc(o.value)}">${esc(label(o.label))}</option>`).join("");
  switch (f.type) {
    case "textarea": return `<textarea id="${id}" data-key="${esc(f.key)}"${req}></textarea>`;
    case "number": return `<input id="${id}" type="number" step="any" data-key="${esc(f.key)}"${req}>`;
    case "date": return `<input id="${id}" type="date" data-key="${esc(f.key)}"${req}>`;
    case "email": return `<input id="${id}" type="email" data-key="${esc(f.key)}"${req}>`;
    case "checkbox": return `<input id="${id}" type="checkbox" data-key="${esc(f.key)}">`;
    case "select": return `<select id="${id}" data-key="${esc(f.key)}"${req}><option value=""></option>${opts}</select>`;
    case "multiselect": return `<select id="${id}" multiple data-key="${esc(f.key)}"${req}>${opts}</select>`;
    default: return `<input id="${id}" data-key="${esc(f.key)}"${req}>`;
  }
}

function readField(el) {
  if (el.type === "checkbox") return el.checked;
  if (el.multiple) return [...el.selectedOptions].map((o) => o.value);
  return el.value;
}

function initNew() {
  const form = document.getElementById("new-card");
  const box = document.getElementById("nc-fields");
  const select = document.getElementById("nc-service");
  const services = new Map(DATA.services.map((s) => [s.id, s]));
  const values = {};

  function draw() {
    const svc = services.get(select.value);
    const fields = (svc && svc.fields) || [];
    const seen = {};
    const parts = [`<legend>${esc(T.fields)}</legend>`];
    for (const f of fields) {
      if (!fieldApplies(f, seen)) continue;
      if (f.key in values) seen[f.key] = values[f.key];
      const id = `nf-${f.key}`;
      parts.push(`<div class="field"><label for="${id}">${esc(label(f.label))}${f.required ? " *" : ""}</label>${fieldInput(f, id)}</div>`);
    }
    box.innerHTML = parts.join("");
    for (const el of box.querySelectorAll("[data-key]")) {
      const v = values[el.dataset.key];
      if (v === undefined) continue;
      if (el.type === "checkbox") el.checked = !!v;
      else if (el.multiple) for (const o of el.options) o.selected = v.includes(o.value);
      else el.value = v;
    }
    box.hidden = parts.length === 1;
  }
  box.addEventListener("change", (e) => {
    const el = e.target.closest("[data-key]");
    if (!el) return;
    values[el.dataset.key] = readField(el);
    const focus = el.id;
    draw();
    document.getElementById(focus)?.focus();
  });
  select.addEventListener("change", () => { for (const k of Object.keys(values)) delete values[k]; draw(); });
  draw();

  // customer lookup: requesters of earlier cards whose name or e-mail has this word
  const email = document.getElementById("nc-email");
  const name = document.getElementById("nc-name");
  const people = new Map();
  let timer = null;
  email.addEventListener("input", () => {
    clearTimeout(timer);
    const known = people.get(email.value);
    if (known && !name.value) name.value = known;
    const q = email.value.trim();
    if (q.length < 3) return;
    timer = setTimeout(async () => {
      const res = await api("GET", `/v1/cards?limit=50&q=${encodeURIComponent(q)}`);
      if (!res.ok) return;
      const dl = document.getElementById("nc-people");
      for (const c of res.body.items) if (c.requester?.email) people.set(c.requester.email, c.requester.name || "");
      dl.innerHTML = [...people].map(([e, n]) => `<option value="${esc(e)}">${esc(n)}</option>`).join("");
    }, 250);
  });
  email.addEventListener("change", () => { const n = people.get(email.value); if (n && !name.value) name.value = n; });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const fields = {};
    for (const el of box.querySelectorAll("[data-key]")) {
      const v = readField(el);
      if (v === "" || (Array.isArray(v) && !v.length)) continue;
      fields[el.dataset.key] = v;
    }
    const body = {
      service_id: select.value,
      requester: { email: email.value.trim(), name: name.value.trim() || null },
      title: document.getElementById("nc-title").value, text: document.getElementById("nc-text").value,
      fields,
    };
    const prio = document.getElementById("nc-priority").value;
    if (prio) body.priority = prio;
    const res = await api("POST", "/v1/cards", body);
    if (res.ok) { announce(fmt("created_card", { number: res.body.number })); location.href = `/cards/${res.body.number}`; }
    else toast(fmt("error", { message: errorText(res) }));
  });
  document.body.dataset.ready = "1";
}

// --- admin ---------------------------------------------------------------------------------

const CATEGORIES = ["queued", "in_progress", "waiting_for_customer", "paused", "done"];
const FIELD_TYPES = ["text", "textarea", "number", "select", "multiselect", "checkbox", "date", "email"];
const split = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);

// A refusal's fields (FastAPI's `detail` list) marked beside their inputs (aria-invalid,
// described by the reason); what no input shows is returned for the form's result line.
let fieldErrorN = 0;
function clearFieldErrors(form) {
  form.querySelectorAll(".field-error").forEach((x) => x.remove());
  form.querySelectorAll("[aria-invalid]").forEach((x) => {
    x.removeAttribute("aria-invalid");
    x.removeAttribute("aria-describedby");
  });
}
function refusal(form, res, inputFor) {
  if (res.status !== 422 || !Array.isArray(res.body?.detail)) return errorText(res);
  const unplaced = [];
  for (const d of res.body.detail) {
    const input = inputFor((d.loc || []).filter((p, i) => !(i === 0 && p === "body")));
    if (!input) { unplaced.push(`${(d.loc || []).slice(1).join(".")}: ${d.msg}`); continue; }
    const note = document.createElement("span");
    note.className = "field-error";
    note.id = `field-error-${++fieldErrorN}`;
    note.textContent = d.msg.replace(/^Value error, /, "");
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", note.id);
    (input.closest("label") || input).after(note);
  }
  form.querySelector("[aria-invalid=true]")?.focus();
  return unplaced.length ? unplaced.join("; ") : errorText(res);
}

function initAdmin() {
  const form = document.getElementById("service-form");
  const rows = document.getElementById("field-rows");
  const el = (name) => form.elements[name];
  const boards = new Map(DATA.boards.map((b) => [b.id, b]));

  function fillTargets(target = {}) {
    el("board").innerHTML = DATA.boards.map((b) => `<option value="${esc(b.id)}">${esc(b.name)}</option>`).join("");
    if (target.board_id) el("board").value = target.board_id;
    const b = boards.get(el("board").value);
    el("column").innerHTML = (b?.columns || []).map((c) => `<option value="${esc(c.id)}">${esc(c.name)}</option>`).join("");
    el("lane").innerHTML = (b?.lanes || []).map((l) => `<option value="${esc(l.id)}">${esc(l.name)}</option>`).join("");
    if (target.column_id) el("column").value = target.column_id;
    if (target.lane_id) el("lane").value = target.lane_id;
  }
  el("board").addEventListener("change", () => fillTargets({ board_id: el("board").value }));

  let rowN = 0;
  function addRow(f = {}) {
    const n = rowN++;
    const div = document.createElement("div");
    div.className = "field-row";
    div.dataset.row = n;
    const opts = (f.options || []).map((o) => `${o.value}=${o.label.en}`).join(", ");
    div.innerHTML = `<label>${esc(T.key)} <input name="f_key" value="${esc(f.key || "")}" pattern="[a-z][a-z0-9_]{0,39}"></label>`
      + `<label>${esc(T.label_en)} <input name="f_label_en" value="${esc(f.label?.en || "")}"></label>`
      + `<label>${esc(T.label_ru)} <input name="f_label_ru" value="${esc(f.label?.ru || "")}"></label>`
      + `<label>${esc(T.type)} <select name="f_type">${FIELD_TYPES.map((t) => `<option${t === (f.type || "text") ? " selected" : ""}>${t}</option>`).join("")}</select></label>`
      + `<label class="check"><input type="checkbox" name="f_required"${f.required ? " checked" : ""}> ${esc(T.required)}</label>`
      + `<label class="check"><input type="checkbox" name="f_customer"${f.show_to_customer === false ? "" : " checked"}> ${esc(T.show_to_customer)}</label>`
      + `<label class="wide">${esc(T.options)} <input name="f_options" value="${esc(opts)}"></label>`
      + `<label>${esc(T.condition_field)} <input name="f_cond_field" value="${esc(f.condition?.field || "")}"></label>`
      + `<label>${esc(T.condition_in)} <input name="f_cond_in" value="${esc((f.condition?.in || []).join(", "))}"></label>`
      + `<button type="button" class="remove-field">${esc(T.remove)}</button>`;
    rows.appendChild(div);
    return div;
  }
  rows.addEventListener("click", (e) => {
    if (e.target.classList.contains("remove-field")) { e.target.closest(".field-row").remove(); showJson(); }
  });
  document.getElementById("add-field").addEventListener("click", () => {
    addRow().querySelector('[name="f_key"]').focus();
  });

  function build() {
    const localized = (en, ru) => (ru ? { en, ru } : { en });
    const fields = [...rows.querySelectorAll(".field-row")].map((r) => {
      const v = (n) => r.querySelector(`[name="${n}"]`);
      const f = { key: v("f_key").value.trim(), label: localized(v("f_label_en").value.trim() || v("f_key").value.trim(), v("f_label_ru").value.trim()),
                  type: v("f_type").value, required: v("f_required").checked,
                  show_to_customer: v("f_customer").checked };
      const opts = split(v("f_options").value);
      if (opts.length) f.options = opts.map((o) => { const [val, lab] = o.split("="); return { value: val.trim(), label: { en: (lab || val).trim() } }; });
      if (v("f_cond_field").value.trim()) f.condition = { field: v("f_cond_field").value.trim(), in: split(v("f_cond_in").value) };
      return f;
    });
    const statusNames = {};
    for (const c of CATEGORIES) {
      const en = el(`status_en_${c}`).value.trim();
      if (en) statusNames[c] = localized(en, el(`status_ru_${c}`).value.trim());
    }
    const svc = {
      id: el("id").value.trim(), name: localized(el("name_en").value.trim(), el("name_ru").value.trim()),
      target: { board_id: el("board").value, column_id: el("column").value, lane_id: el("lane").value },
      access: { domains: split(el("domains").value), addresses: split(el("addresses").value),
                groups: split(el("groups").value) },
      order: Number(el("order").value || 0),
      fields, default_priority: el("default_priority").value, reply_default: el("reply_default").value,
      notify_on: [...form.querySelectorAll('[name="notify_on"]:checked')].map((x) => x.value),
      assignment: { kind: el("assignment").value, agents: split(el("assign_agents").value) },
      language: el("language").value,
      answer_in_customer_language: el("answer_in_customer_language").checked,
    };
    if (Object.keys(statusNames).length) svc.status_names = statusNames;
    if (el("sla_policy").value.trim()) svc.sla_policy = el("sla_policy").value.trim();
    if (el("auto_close_after_days").value) svc.auto_close_after_days = Number(el("auto_close_after_days").value);
    if (el("icon").value.trim()) svc.icon = el("icon").value.trim();
    if (el("group_en").value.trim()) svc.group = localized(el("group_en").value.trim(), el("group_ru").value.trim());
    const kept = DATA.editing || {};
    for (const k of ["description", "allow_due_date", "auto_reply", "active"]) if (k in kept) svc[k] = kept[k];
    return svc;
  }
  function showJson() { document.getElementById("service-json").textContent = JSON.stringify(build(), null, 2); }
  form.addEventListener("input", showJson);
  form.addEventListener("change", showJson);

  const s = DATA.editing;
  fillTargets(s ? s.target : {});
  if (s) {
    el("id").value = s.id; el("name_en").value = s.name.en; el("name_ru").value = s.name.ru || "";
    el("domains").value = (s.access?.domains || []).join(", ");
    el("addresses").value = (s.access?.addresses || []).join(", ");
    el("groups").value = (s.access?.groups || []).join(", ");
    el("icon").value = s.icon || ""; el("order").value = s.order || 0;
    el("group_en").value = s.group?.en || ""; el("group_ru").value = s.group?.ru || "";
    el("sla_policy").value = s.sla_policy || ""; el("default_priority").value = s.default_priority;
    el("reply_default").value = s.reply_default; el("auto_close_after_days").value = s.auto_close_after_days || "";
    el("assignment").value = s.assignment?.kind || "none"; el("assign_agents").value = (s.assignment?.agents || []).join(", ");
    el("language").value = s.language || "en";
    el("answer_in_customer_language").checked = Boolean(s.answer_in_customer_language);
    for (const box of form.querySelectorAll('[name="notify_on"]')) box.checked = (s.notify_on || []).includes(box.value);
    for (const c of CATEGORIES) {
      el(`status_en_${c}`).value = s.status_names?.[c]?.en || "";
      el(`status_ru_${c}`).value = s.status_names?.[c]?.ru || "";
    }
    for (const f of s.fields || []) addRow(f);
  }
  showJson();
  const result = document.getElementById("service-result");
  // a refused field of the service's JSON -> the editor's input for it
  const INPUTS = { "name.en": "name_en", "name.ru": "name_ru", "group.en": "group_en",
                   "group.ru": "group_ru", "target.board_id": "board", "target.column_id": "column",
                   "target.lane_id": "lane", "access.domains": "domains",
                   "access.addresses": "addresses", "access.groups": "groups" };
  function inputFor(path) {
    if (path[0] === "fields" && Number.isInteger(path[1])) {
      const row = rows.querySelectorAll(".field-row")[path[1]];
      const name = { key: "f_key", label: "f_label_en", type: "f_type", options: "f_options",
                     condition: "f_cond_field" }[path[2]] || "f_key";
      return row?.querySelector(`[name="${name}"]`);
    }
    for (let n = path.length; n > 0; n--) {
      const key = path.slice(0, n).join(".");
      const input = el(INPUTS[key] || key);
      if (input && input.tagName) return input;
    }
    return null;
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    const svc = build();
    const res = await api("PUT", `/v1/services/${encodeURIComponent(svc.id)}`, svc);
    if (res.ok) { result.textContent = `${T.saved}: ${svc.id} r${res.body.revision}`; result.className = "ok"; return; }
    result.textContent = fmt("error", { message: refusal(form, res, inputFor) });
    result.className = "error";
  });

  for (const bf of document.querySelectorAll(".board-form")) {
    const b = boards.get(bf.dataset.board);
    const cols = bf.querySelector(".col-rows");
    const lanes = bf.querySelector(".lane-rows");
    const num = (v) => (v === "" || v === null || v === undefined ? null : Number(v));
    function colRow(c = {}) {
      const div = document.createElement("div");
      div.className = "field-row col-row";
      div.innerHTML = `<label>${esc(T.id)} <input name="c_id" value="${esc(c.id || "")}" required pattern="[a-z0-9][a-z0-9-]{0,62}"></label>`
        + `<label>${esc(T.name)} <input name="c_name" value="${esc(c.name || "")}" required></label>`
        + `<label>${esc(T.category)} <select name="c_category">${CATEGORIES.map((k) => `<option${k === (c.category || "queued") ? " selected" : ""}>${k}</option>`).join("")}</select></label>`
        + `<label>${esc(T.wip_limit)} <input name="c_wip" type="number" min="1" value="${esc(c.wip_limit ?? "")}"></label>`
        + `<label>${esc(T.time_limit)} <input name="c_time" type="number" min="1" value="${esc(c.time_limit_minutes ?? "")}"></label>`
        + `<button type="button" class="remove-row">${esc(T.remove)}</button>`;
      cols.appendChild(div);
      return div;
    }
    function laneRow(l = {}) {
      const div = document.createElement("div");
      div.className = "field-row lane-row";
      div.innerHTML = `<label>${esc(T.id)} <input name="l_id" value="${esc(l.id || "")}" required pattern="[a-z0-9][a-z0-9-]{0,62}"></label>`
        + `<label>${esc(T.name)} <input name="l_name" value="${esc(l.name || "")}" required></label>`
        + `<button type="button" class="remove-row">${esc(T.remove)}</button>`;
      lanes.appendChild(div);
      return div;
    }
    function buildBoard() {
      const v = (row, n) => row.querySelector(`[name="${n}"]`).value.trim();
      return {
        name: bf.elements.name.value.trim(), space: b.space ?? null,
        columns: [...cols.children].map((r) => ({
          id: v(r, "c_id"), name: v(r, "c_name"), category: v(r, "c_category"),
          wip_limit: num(v(r, "c_wip")), time_limit_minutes: num(v(r, "c_time")) })),
        lanes: [...lanes.children].map((r) => ({ id: v(r, "l_id"), name: v(r, "l_name") })),
        members: split(bf.elements.members.value),
      };
    }
    const showBoard = () => { bf.querySelector(".board-json").textContent = JSON.stringify(buildBoard(), null, 2); };
    bf.elements.name.value = b.name;
    bf.elements.members.value = (b.members || []).join(", ");
    for (const c of b.columns) colRow(c);
    for (const l of b.lanes) laneRow(l);
    showBoard();
    bf.addEventListener("input", showBoard);
    bf.addEventListener("click", (e) => {
      if (e.target.classList.contains("remove-row")) { e.target.closest(".field-row").remove(); showBoard(); }
      if (e.target.classList.contains("add-column")) { colRow().querySelector("input").focus(); showBoard(); }
      if (e.target.classList.contains("add-lane")) { laneRow().querySelector("input").focus(); showBoard(); }
    });
    bf.addEventListener("submit", async (e) => {
      e.preventDefault();
      const out = bf.querySelector(".result");
      clearFieldErrors(bf);
      const res = await api("PUT", `/v1/boards/${encodeURIComponent(b.id)}`, buildBoard());
      // "columns.1.wip_limit" -> that column row's input; "name" -> the board's name
      const inputFor = ([list, n, key]) => {
        if (list === "name" || list === "members") return bf.elements[list];
        const rows = list === "columns" ? cols : list === "lanes" ? lanes : null;
        const row = rows?.children[n];
        const names = { id: "id", name: "name", category: "category", wip_limit: "wip",
                        time_limit_minutes: "time" };
        return row?.querySelector(`[name="${list === "columns" ? "c" : "l"}_${names[key] || "id"}"]`) || null;
      };
      out.textContent = res.ok ? T.saved : fmt("error", { message: refusal(bf, res, inputFor) });
      out.className = `result ${res.ok ? "ok" : "error"}`;
    });
  }

  const af = document.getElementById("agent-form");
  af.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: af.elements.name.value.trim(), role: af.elements.role.value,
                   boards: split(af.elements.boards.value) };
    if (af.elements.id.value.trim()) body.id = af.elements.id.value.trim();
    if (af.elements.email.value.trim()) body.email = af.elements.email.value.trim();
    clearFieldErrors(af);
    const res = await api("POST", "/v1/agents", body);
    const out = document.getElementById("agent-result");
    if (res.ok) out.innerHTML = `${esc(T.token_once)} <code id="new-token">${esc(res.body.token)}</code>`;
    else out.textContent = fmt("error", { message: refusal(af, res, ([k]) => af.elements[k] || null) });
  });
  document.addEventListener("click", async (e) => {
    const b = e.target.closest(".deactivate");
    if (!b) return;
    const res = await api("PATCH", `/v1/agents/${encodeURIComponent(b.dataset.agent)}`, { active: false });
    if (res.ok) location.reload(); else toast(fmt("error", { message: errorText(res) }));
  });
  document.body.dataset.ready = "1";
}

const page = document.body.dataset.page;
if (page === "board") initBoard();
else if (page === "card") initCard();
else if (page === "new") initNew();
else if (page === "admin") initAdmin();

// Knowledge base on the card page: find a published article and put the link customers
// read it by into the reply (boards.kb). Hits are drawn with textContent only.
function initArticleLinks() {
  const input = document.getElementById("kb-insert-q");
  const hits = document.getElementById("kb-insert-hits");
  const reply = document.getElementById("reply-text");
  if (!input || !hits || !reply) return;
  let timer = null;
  let asked = "";
  const clear = () => { while (hits.firstChild) hits.removeChild(hits.firstChild); };
  async function search() {
    const q = input.value.trim();
    if (q === asked) return;
    asked = q;
    if (q.length < 2) { clear(); return; }
    const res = await api("GET", `/v1/kb/articles?status=published&limit=5&q=${encodeURIComponent(q)}`);
    if (q !== asked) return;
    clear();
    for (const a of (res.ok && res.body.items) || []) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "kb-insert-hit";
      b.textContent = a.title;
      b.addEventListener("click", () => {
        const at = reply.selectionStart ?? reply.value.length;
        const text = `${a.title}: ${a.url}`;
        const before = reply.value.slice(0, at);
        const sep = before && !before.endsWith("\n") && !before.endsWith(" ") ? " " : "";
        reply.value = before + sep + text + reply.value.slice(at);
        reply.focus();
        clear();
        input.value = "";
        asked = "";
      });
      li.appendChild(b);
      hits.appendChild(li);
    }
  }
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 200); });
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); search(); } });
}
if (page === "card") initArticleLinks();
