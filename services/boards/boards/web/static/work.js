// The work behind a request: new task cards on the board page; type, labels, blockers,
// participants, following, child cards, moves to other boards and a request's new author
// on the card page. Every change goes through the agents' API (app.js's `api`).

import { api, paintColours } from "./app.js";

const DATA = JSON.parse(document.getElementById("page-data")?.textContent || "null") || {};
const T = DATA.t || {};
const fmt = (key, vars = {}) =>
  (T[key] || key).replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : `{${k}}`));

function say(message, kind = "error") {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = message;
  el.className = `toast ${kind}`;
  el.hidden = false;
}

function failed(res) {
  const b = res.body || {};
  let message = b.message || `HTTP ${res.status}`;
  if (Array.isArray(b.detail)) message = b.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  say(fmt("error", { message }));
}

// the server's field messages (English) in the page's language: exact, or by their start
function fieldError(message) {
  const table = DATA.field_errors || {};
  if (table[message]) return table[message];
  const prefix = Object.keys(table).find((k) => k.endsWith(": ") && message.startsWith(k));
  return prefix ? table[prefix] + message.slice(prefix.length) : message;
}

const value = (id) => document.getElementById(id)?.value.trim() || "";

// --- the board: a new task -------------------------------------------------------------------

function initTaskDialog() {
  const dialog = document.getElementById("task-dialog");
  const form = document.getElementById("task-form");
  document.getElementById("new-task").addEventListener("click", () => {
    dialog.showModal();
    document.getElementById("task-title").focus();
  });
  form.addEventListener("submit", async (e) => {
    if (e.submitter?.value !== "create") return;
    e.preventDefault();
    if (!form.reportValidity()) return;
    const body = { board_id: DATA.board.id, title: value("task-title"), type: value("task-type") || null,
                   priority_key: value("task-priority") || null,
                   assignee_id: value("task-assignee") || null, due_date: value("task-due") || null,
                   text: value("task-text") || null };
    const res = await api("POST", "/v1/tasks", body);
    if (!res.ok) { failed(res); return; }
    dialog.close();
    sessionStorage.setItem("desk.created", res.body.number);
    location.reload();
  });
  const created = sessionStorage.getItem("desk.created");
  if (created) {
    sessionStorage.removeItem("desk.created");
    say(fmt("task_created", { number: created }), "info");
  }
}

// --- the card page -----------------------------------------------------------------------------

function initWork() {
  const card = DATA.card;
  const base = `/v1/cards/${encodeURIComponent(card.id)}`;
  paintColours(document);
  const version = () => Number(document.getElementById("card-version")?.textContent) || card.version;
  async function done(res) {
    if (res.ok) location.reload(); else failed(res);
  }
  const on = (id, fn) => document.getElementById(id)?.addEventListener("submit", (e) => {
    e.preventDefault();
    fn(e.target);
  });

  on("type-form", async () => done(await api("PATCH", base, { version: version(), type: value("edit-type") })));
  on("label-add", async () => {
    const labels = [...(card.labels || []), { name: value("label-name"), color: value("label-colour") || "#607d8b" }];
    done(await api("PATCH", base, { version: version(), labels }));
  });
  for (const btn of document.querySelectorAll(".label-remove")) {
    btn.addEventListener("click", async () => {
      const labels = (card.labels || []).filter((_, i) => i !== Number(btn.dataset.index));
      done(await api("PATCH", base, { version: version(), labels }));
    });
  }
  // labels chosen from the board's list (a renamed label shows its new name everywhere)
  on("label-choose", async (form) => {
    const label_ids = [...form.querySelectorAll('input[name="label"]:checked')].map((x) => x.value);
    done(await api("PATCH", base, { version: version(), label_ids }));
  });
  // the board's typed fields: each input matches its type; the server checks each by type
  // and names the ones it refuses, shown beside them
  on("custom-fields", async (form) => {
    const fields = {};
    for (const box of form.querySelectorAll(".typed-field")) {
      const input = box.querySelector("[name]");
      fields[box.dataset.key] = box.dataset.type === "checkbox" ? input.checked
        : (input.value.trim() === "" ? null : input.value.trim());
    }
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    const res = await api("PATCH", base, { version: version(), fields });
    if (res.ok) { location.reload(); return; }
    const wrong = res.body?.details?.fields;
    if (res.status === 422 && wrong) {
      for (const [key, message] of Object.entries(wrong)) {
        const p = form.querySelector(`.field-error[data-for="${CSS.escape(key)}"]`);
        if (p) p.textContent = fieldError(message);
      }
      return;
    }
    failed(res);
  });
  // a custom field: set (empty value removes it); a request's are checked by its service's form
  on("field-set", async () => done(await api("PATCH", base, {
    version: version(), fields: { [value("field-key")]: value("field-value") || null } })));
  on("block-form", async () => {
    const blocker = value("block-card");
    done(await api("POST", `${base}/blockers`, blocker ? { blocked_by: blocker }
      : { reason: value("block-reason") || null }));
  });
  for (const btn of document.querySelectorAll(".unblock")) {
    btn.addEventListener("click", async () => done(await api("DELETE", `${base}/blockers/${encodeURIComponent(btn.dataset.id)}`)));
  }
  on("participants-form", async (form) => {
    const members = [...form.querySelectorAll('input[name="member"]:checked')].map((x) => x.value);
    done(await api("PUT", `${base}/participants`, { members }));
  });
  document.getElementById("follow")?.addEventListener("click", async (e) => {
    const following = e.target.getAttribute("aria-pressed") !== "true";
    done(await api("PUT", `${base}/following`, { following }));
  });
  on("child-form", async () => {
    const res = await api("POST", `${base}/children`, { board_id: value("child-board"), title: value("child-title") });
    done(res);
  });
  on("transfer-form", async () => done(await api("POST", `${base}/transfer`, {
    board_id: value("transfer-board"), version: version() })));
  on("requester-form", async () => done(await api("PUT", `${base}/requester`, {
    requester: { email: value("requester-email"), name: value("requester-name") || null },
    version: version() })));
}

// --- a board's settings: its label list and typed custom fields (admins) ------------------

function initBoardSettings() {
  const board = DATA.board;
  paintColours(document);
  for (const [button, rows, template] of [["label-new", "label-rows", "label-row-template"],
                                          ["field-new", "field-rows", "field-row-template"]]) {
    document.getElementById(button).addEventListener("click", () => {
      const row = document.getElementById(template).content.firstElementChild.cloneNode(true);
      document.getElementById(rows).append(row);
      row.querySelector("input").focus();
    });
  }
  document.addEventListener("click", (e) => {
    if (e.target.classList?.contains("row-remove")) e.target.closest("tr").remove();
  });
  const list = (text) => text.split(",").map((x) => x.trim()).filter(Boolean);
  // each form says itself whether it was saved (cleared as it is sent)
  const sending = (form) => {
    for (const p of form.querySelectorAll(".field-error, .form-error, .form-status")) p.textContent = "";
  };
  function shown(form, res) {
    if (res.ok) { form.querySelector(".form-status").textContent = T.saved || "Saved"; return true; }
    const wrong = res.body?.details?.fields;
    if (res.status === 422 && wrong && typeof wrong === "object") {
      for (const [key, message] of Object.entries(wrong)) {
        const row = [...form.querySelectorAll(".field-row")].find((r) => r.querySelector('[name="key"]').value.trim() === key);
        const p = row?.querySelector(".field-error") || form.querySelector(".form-error");
        p.textContent = row ? fieldError(message) : `${key}: ${fieldError(message)}`;
      }
      return false;
    }
    const p = form.querySelector(".form-error");
    p.textContent = res.body?.message || (Array.isArray(res.body?.detail)
      ? res.body.detail.map((d) => d.msg).join("; ") : `HTTP ${res.status}`);
    return false;
  }
  document.getElementById("labels-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    sending(e.target);
    const labels = [...e.target.querySelectorAll(".label-row")].map((row) => ({
      ...(row.dataset.id ? { id: row.dataset.id } : {}),
      name: row.querySelector('[name="name"]').value.trim(),
      color: row.querySelector('[name="color"]').value })).filter((l) => l.name);
    const res = await api("PUT", `/v1/boards/${encodeURIComponent(board.id)}/labels`, { labels });
    if (shown(e.target, res)) {
      // new labels got their ids: keep them so a rename after this keeps them too
      const rows = [...e.target.querySelectorAll(".label-row")].filter((r) => r.querySelector('[name="name"]').value.trim());
      res.body.labels.forEach((l, i) => { if (rows[i]) rows[i].dataset.id = l.id; });
    }
  });
  document.getElementById("fields-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    sending(e.target);
    const fields = [...e.target.querySelectorAll(".field-row")].map((row) => {
      const get = (name) => row.querySelector(`[name="${name}"]`);
      const type = get("type").value;
      const ru = get("label_ru").value.trim();
      const types = list(get("card_types").value);
      return { key: get("key").value.trim(), type, required: get("required").checked,
               label: { en: get("label_en").value.trim() || get("key").value.trim(), ...(ru ? { ru } : {}) },
               options: type === "select" ? list(get("options").value).map((v) => ({ value: v, label: { en: v } })) : [],
               card_types: types.length ? types : null };
    }).filter((f) => f.key);
    shown(e.target, await api("PUT", `/v1/boards/${encodeURIComponent(board.id)}/fields`, { fields }));
  });
  initSlaTargets(shown, sending);
}

// SLA targets per board priority: a policy's `priority_targets` for this board's priority ids
// (sla's own API, through the admin pages' proxy); an empty cell falls back to the level's
async function initSlaTargets(shown, sending) {
  const form = document.getElementById("sla-form");
  const res = await api("GET", "/v1/admin/sla");
  if (!res.ok) { document.getElementById("sla-unavailable").hidden = false; return; }
  const policies = new Map(res.body.policies.map((p) => [p.name, p]));
  const select = document.getElementById("sla-policy");
  for (const name of policies.keys()) select.append(new Option(name, name));
  const rows = () => [...form.querySelectorAll(".sla-row")];
  function fill() {
    const policy = policies.get(select.value);
    for (const row of rows()) {
      const own = (policy.priority_targets || {})[row.dataset.priority] || {};
      const level = (policy.priority_overrides || {})[row.dataset.level] || {};
      for (const input of row.querySelectorAll("input")) {
        input.value = own[input.name] ?? "";
        input.placeholder = level[input.name] ?? policy.targets[input.name] ?? "";
      }
    }
  }
  select.addEventListener("change", fill);
  fill();
  form.hidden = false;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    sending(form);
    const policy = policies.get(select.value);
    const targets = { ...(policy.priority_targets || {}) };
    for (const row of rows()) {
      const own = {};
      for (const input of row.querySelectorAll("input")) {
        if (input.value.trim() !== "") own[input.name] = Number(input.value);
      }
      if (Object.keys(own).length) targets[row.dataset.priority] = own;
      else delete targets[row.dataset.priority];
    }
    const saved = await api("PUT", `/v1/admin/sla/policies/${encodeURIComponent(policy.name)}`,
                            { ...policy, priority_targets: targets });
    if (saved.ok) policies.set(policy.name, saved.body);
    if (!shown(form, saved) && saved.body?.details?.fields) {
      form.querySelector(".form-error").textContent = Object.entries(saved.body.details.fields)
        .map(([k, m]) => `${k}: ${fieldError(m)}`).join("; ");
    }
  });
}

const page = document.body.dataset.page;
if (page === "board-settings") initBoardSettings();
if (page === "board" && document.getElementById("task-dialog")) initTaskDialog();
if (page === "card" && document.getElementById("work")) initWork();
