// The admin pages' forms (SLA, notifications, portal access): each form becomes the JSON
// its area's `/v1/admin/...` endpoint takes, a refusal is shown beside the field it names,
// a success reloads the page with the change announced. Hand-written, no dependencies.

const dataEl = document.getElementById("page-data");
const DATA = dataEl ? JSON.parse(dataEl.textContent) : {};
const T = DATA.t || {};
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const STATUS = document.getElementById("admin-status");
const FLASH = "desk-admin-flash";

const fmt = (key, vars = {}) =>
  (T[key] || key).replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : `{${k}}`));

async function call(method, path, body) {
  const headers = { Accept: "application/json", "X-CSRF-Token": CSRF };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, credentials: "same-origin",
                                body: body === undefined ? undefined : JSON.stringify(body) });
  let json = null;
  try { json = await r.json(); } catch { json = null; }
  return { ok: r.ok, status: r.status, body: json };
}

// --- field errors ----------------------------------------------------------------------------

class FieldErrors extends Error {
  constructor(fields) { super("invalid"); this.fields = fields; }
}

function fieldsOf(res) {
  const b = res.body || {};
  if (b.details && b.details.fields) return b.details.fields;
  if (Array.isArray(b.detail)) {
    const out = {};
    for (const e of b.detail) {
      const loc = (e.loc || []).filter((p, i) => !(i === 0 && ["body", "query", "path"].includes(p)));
      out[loc.join(".") || "_"] ??= e.msg;
    }
    return out;
  }
  return { _: b.message || (typeof b.detail === "string" ? b.detail : `HTTP ${res.status}`) };
}

function clearErrors(form) {
  form.querySelectorAll(".field-error").forEach((e) => e.remove());
  form.querySelectorAll("[aria-invalid]").forEach((e) => {
    e.removeAttribute("aria-invalid");
    e.removeAttribute("aria-describedby");
  });
  form.querySelectorAll(".form-error").forEach((e) => { e.textContent = ""; });
}

let errorIds = 0;
function showErrors(form, fields) {
  let first = null;
  const general = [];
  for (const [key, message] of Object.entries(fields)) {
    // "targets.resolution" names an input; "targets" or "hours.mon.0" the nearest one
    let input = null;
    for (let k = key; k && !input; k = k.includes(".") ? k.slice(0, k.lastIndexOf(".")) : "") {
      input = form.querySelector(`[name="${CSS.escape(k)}"]`) ||
              form.querySelector(`[name^="${CSS.escape(k)}."]`);
    }
    if (!input || key === "_") { general.push(key === "_" ? message : `${key}: ${message}`); continue; }
    const note = document.createElement("span");
    note.className = "field-error";
    note.id = `field-error-${++errorIds}`;
    note.textContent = message;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", note.id);
    (input.closest("label") || input).after(note);
    first ??= input;
  }
  const box = form.querySelector('.form-error[data-for="_"]');
  if (box) box.textContent = general.length ? general.join(" ") : fmt("fix_fields");
  (first || box)?.focus?.();
  if (first) first.focus();
}

// --- forms into JSON -----------------------------------------------------------------------

const val = (form, name) => (form.elements.namedItem(name)?.value ?? "").trim();
const list = (text) => text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
const num = (text) => (text === "" ? undefined : Number(text));
const slug = (form, name) => encodeURIComponent(val(form, name));

function policyBody(form) {
  const targets = {};
  const overrides = {};
  for (const input of form.querySelectorAll("input[name^='targets.']")) {
    if (input.value !== "") targets[input.name.split(".")[1]] = Number(input.value);
  }
  for (const input of form.querySelectorAll("input[name^='priority_overrides.']")) {
    if (input.value === "") continue;
    const [, prio, target] = input.name.split(".");
    (overrides[prio] ??= {})[target] = Number(input.value);
  }
  // every target is sent, so what the form shows is what the policy keeps
  const pauseOn = { first_response: [], next_response: [], resolution: [] };
  for (const input of form.querySelectorAll("input[name^='pause_on.']")) {
    const [, target, category] = input.name.split(".");
    if (input.checked) pauseOn[target].push(category);
  }
  const body = { calendar: val(form, "calendar"), targets, priority_overrides: overrides,
                 pause_on: pauseOn };
  const remind = num(val(form, "remind_after_days"));
  if (remind !== undefined) body.remind_after_days = remind;
  const warn = num(val(form, "warn_share"));
  if (warn !== undefined) body.warn_share = warn;
  return body;
}

const WINDOW = /^(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$/;
function calendarBody(form) {
  const hours = {};
  const bad = {};
  for (const input of form.querySelectorAll("input[name^='hours.']")) {
    const day = input.name.split(".")[1];
    const parts = input.value.split(",").map((s) => s.trim()).filter(Boolean);
    const windows = [];
    for (const p of parts) {
      const m = WINDOW.exec(p);
      if (!m) { bad[input.name] = T.hours_help; break; }
      windows.push([m[1].padStart(5, "0"), m[2].padStart(5, "0")]);
    }
    if (windows.length) hours[day] = windows;
  }
  if (!val(form, "name")) bad.name = "required";
  if (Object.keys(bad).length) throw new FieldErrors(bad);
  return { timezone: val(form, "timezone"), hours,
           holidays: list(val(form, "holidays")) };
}

function routeBody(form) {
  const body = {
    board_id: val(form, "board_id"),
    events: [...form.querySelectorAll("input[name=events]:checked")].map((i) => i.value),
    channel: val(form, "channel"), language: val(form, "language"),
    enabled: form.elements.namedItem("enabled").checked,
    emails: list(val(form, "emails")),
  };
  for (const k of ["lane_id", "column_id", "webhook_url", "slack_channel"]) {
    if (val(form, k)) body[k] = val(form, k);
  }
  return body;
}

const addressSet = (form) => ({ domains: list(val(form, "domains")),
                                addresses: list(val(form, "addresses")) });
const templateBody = (form) => ({ subject: val(form, "subject"),
                                  text: form.elements.namedItem("text").value,
                                  html: form.elements.namedItem("html").value });

// rows without an id are left out; `index` maps a sent row back to its row on the page
function rowsOf(form, prefix, build) {
  const out = [];
  const index = {};
  for (let n = 0; form.elements.namedItem(`${prefix}.${n}.id`); n++) {
    const get = (k) => form.elements.namedItem(`${prefix}.${n}.${k}`);
    if (!get("id").value.trim()) continue;
    index[out.length] = n;
    out.push(build(get));
  }
  return [out, index];
}

let workIndex = {};
function workBody(form) {
  const names = (get, key) => {
    const en = get(`${key}.en`).value.trim();
    const ru = get(`${key}.ru`).value.trim();
    return ru ? { en, ru } : { en };
  };
  const [types, ti] = rowsOf(form, "card_types", (get) => {
    const t = { id: get("id").value.trim(), name: names(get, "name"), color: get("color").value,
                customer_request: get("customer_request").checked };
    if (get("sla_policy").value.trim()) t.sla_policy = get("sla_policy").value.trim();
    return t;
  });
  const [prios, pi] = rowsOf(form, "priorities", (get) => ({
    id: get("id").value.trim(), names: names(get, "names"), color: get("color").value,
    level: get("level").value }));
  workIndex = { card_types: ti, priorities: pi };
  return { card_types: types, priorities: prios };
}

// "card_types.2.name.en" of the sent body -> the field of that row on the page
function workFields(fields) {
  const out = {};
  for (const [key, msg] of Object.entries(fields)) {
    const [list, n, ...rest] = key.split(".");
    const row = workIndex[list]?.[n];
    out[row === undefined ? key : [list, row, ...rest].join(".")] = msg;
  }
  return out;
}

// kind -> [method, path, body]
const REQUESTS = {
  policy: (f) => ["PUT", `/v1/admin/sla/policies/${slug(f, "name")}`, policyBody(f)],
  calendar: (f) => ["PUT", `/v1/admin/sla/calendars/${slug(f, "name")}`, calendarBody(f)],
  holidays: (f) => ["POST", `/v1/admin/sla/calendars/${encodeURIComponent(f.dataset.calendar)}/holidays`,
                    { text: f.elements.namedItem("text").value,
                      replace: f.elements.namedItem("replace").checked }],
  route: (f) => ["PUT", `/v1/admin/notifications/routes/${slug(f, "id")}`, routeBody(f)],
  template: (f) => ["PUT", `/v1/admin/notifications/templates/${f.dataset.template}`, templateBody(f)],
  allow: (f) => ["PUT", "/v1/admin/access/allow", addressSet(f)],
  group: (f) => ["PUT", `/v1/admin/access/groups/${slug(f, "name")}`, addressSet(f)],
  organisation: (f) => ["PUT", `/v1/admin/access/organisations/${slug(f, "id")}`,
                        { name: val(f, "name"), ...addressSet(f) }],
  mailbox: (f) => {
    const body = { host: val(f, "host"), port: num(val(f, "port")), security: val(f, "security"),
                   username: val(f, "username"), password: f.elements.namedItem("password").value,
                   folder: val(f, "folder") || "INBOX", after: val(f, "after"),
                   enabled: f.elements.namedItem("enabled").checked };
    if (val(f, "move_to")) body.move_to = val(f, "move_to");
    return ["PUT", `/v1/admin/channels/mailboxes/${slug(f, "service_id")}`, body];
  },
  telegram: (f) => {
    const body = { mode: val(f, "mode"), webhook_url: val(f, "webhook_url") };
    if (val(f, "token")) body.token = val(f, "token");
    return ["PUT", "/v1/admin/channels/telegram", body];
  },
  address: (f) => ["PUT", "/v1/admin/channels/addresses",
                   { address: val(f, "address"), service_id: val(f, "service_id") }],
  role: (f) => ["PATCH", `/v1/agents/${encodeURIComponent(f.dataset.agent)}`,
                { role: val(f, "role"), boards: list(val(f, "boards")) }],
  token: (f) => ["POST", `/v1/admin/agents/${encodeURIComponent(f.dataset.agent)}/tokens`,
                 { name: val(f, "name") }],
  work: (f) => ["PUT", `/v1/admin/boards/${encodeURIComponent(f.dataset.board)}/work`, workBody(f)],
  canned: (f) => {
    const body = { title: val(f, "title"), text: f.elements.namedItem("text").value,
                   service_id: val(f, "service_id") || null };
    return f.dataset.canned ? ["PATCH", `/v1/admin/canned/${f.dataset.canned}`, body]
                            : ["POST", "/v1/admin/canned", body];
  },
};

function reloadWith(message) {
  sessionStorage.setItem(FLASH, message);
  location.reload();
}

async function submit(form) {
  clearErrors(form);
  if (STATUS) STATUS.textContent = "";
  let req;
  try { req = REQUESTS[form.dataset.kind](form); } catch (e) {
    if (e instanceof FieldErrors) { showErrors(form, e.fields); return; }
    throw e;
  }
  const [method, path, body] = req;
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  const res = await call(method, path, body);
  if (button) button.disabled = false;
  if (res.ok && form.dataset.kind === "token") {
    // shown once, never stored in the browser: the list shows it after the next reload
    const box = document.getElementById("new-token");
    document.getElementById("new-token-value").textContent = res.body.token;
    box.hidden = false;
    form.reset();
    return;
  }
  if (res.ok) {
    reloadWith(form.dataset.kind === "holidays" ? fmt("imported", { n: res.body.imported })
                                                : fmt("saved"));
    return;
  }
  const fields = form.dataset.kind === "work" ? workFields(fieldsOf(res)) : fieldsOf(res);
  showErrors(form, res.status === 422 ? fields : { _: fmt("failed", { message: fieldsOf(res)._ || res.status }) });
}

// --- the SLA deadline preview ----------------------------------------------------------------

async function preview(form) {
  clearErrors(form);
  const start = val(form, "start");
  if (!start) { showErrors(form, { start: "required" }); return; }
  const res = await call("POST", "/v1/admin/sla/preview", {
    policy: val(form, "policy"), priority: val(form, "priority"),
    start: `${start.length === 16 ? `${start}:00` : start}Z` });
  if (!res.ok) { showErrors(form, fieldsOf(res)); return; }
  const table = document.getElementById("preview-result");
  const tbody = table.querySelector("tbody");
  tbody.replaceChildren();
  const tz = res.body.timezone || "UTC";
  table.querySelector(".cal-tz").textContent = tz;
  const local = new Intl.DateTimeFormat(document.documentElement.lang || "en",
    { timeZone: tz, dateStyle: "medium", timeStyle: "short" });
  for (const t of res.body.targets) {
    const tr = document.createElement("tr");
    tr.dataset.target = t.target;
    for (const text of [T[t.target] || t.target, String(t.minutes),
                        t.deadline.replace("T", " ").replace(/:\d{2}(\.\d+)?Z$/, ""),
                        local.format(new Date(t.deadline))]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    tbody.append(tr);
  }
  table.hidden = false;
}

async function previewTemplate(form) {
  clearErrors(form);
  const res = await call("POST", `/v1/admin/notifications/templates/${form.dataset.template}/preview`,
                         templateBody(form));
  if (!res.ok) { showErrors(form, fieldsOf(res)); return; }
  const box = document.getElementById("template-shown");
  box.querySelector(".shown-subject").textContent = res.body.subject;
  box.querySelector(".shown-text").textContent = res.body.text;
  box.hidden = false;
}

// --- wiring ----------------------------------------------------------------------------------

document.addEventListener("submit", (e) => {
  const form = e.target.closest("form[data-kind]");
  if (!form) return;
  e.preventDefault();
  (form.dataset.kind === "preview" ? preview(form) : submit(form));
});

async function testTemplate(form) {
  clearErrors(form);
  STATUS.textContent = "";
  const email = val(form, "test_email");
  if (!email) { showErrors(form, { test_email: "required" }); return; }
  const res = await call("POST", `/v1/admin/notifications/templates/${form.dataset.template}/test`,
                         { ...templateBody(form), email });
  if (!res.ok) {
    const fields = fieldsOf(res);
    if (fields.email) { fields.test_email = fields.email; delete fields.email; }
    showErrors(form, fields);
    return;
  }
  STATUS.textContent = res.body.sent ? fmt("test_sent", { email })
                                     : fmt("test_failed", { error: res.body.error });
  STATUS.classList.toggle("failed", !res.body.sent);
}

document.addEventListener("click", async (e) => {
  if (e.target.closest("#template-test")) {
    testTemplate(e.target.closest("form"));
    return;
  }
  if (e.target.closest("#template-preview")) {
    previewTemplate(e.target.closest("form"));
    return;
  }
  if (e.target.closest("#telegram-test")) {
    const form = e.target.closest("form");
    clearErrors(form);
    STATUS.textContent = "";
    const token = val(form, "token");
    const res = await call("POST", "/v1/admin/channels/telegram/test", token ? { token } : {});
    if (!res.ok) { showErrors(form, fieldsOf(res)); return; }
    const b = res.body;
    STATUS.textContent = b.ok ? fmt("telegram_ok", { username: b.bot.username })
                              : fmt("telegram_failed", { error: b.error });
    STATUS.classList.toggle("failed", !b.ok);
    return;
  }
  if (e.target.closest("#smtp-check")) {
    STATUS.textContent = "";
    const res = await call("POST", "/v1/admin/channels/smtp-check");
    const b = res.body || {};
    STATUS.textContent = res.ok ? fmt(b.ok ? "smtp_ok" : "smtp_failed", b)
                                : fmt("failed", { message: fieldsOf(res)._ || res.status });
    STATUS.classList.toggle("failed", !(res.ok && b.ok));
    return;
  }
  const poll = e.target.closest("button[data-poll]");
  if (poll) {
    STATUS.textContent = "";
    poll.disabled = true;
    const res = await call("POST", poll.dataset.poll);
    poll.disabled = false;
    const error = res.ok ? res.body.error : (fieldsOf(res)._ || `HTTP ${res.status}`);
    STATUS.textContent = error ? fmt("poll_failed", { error })
                               : fmt("polled", { fetched: res.body.fetched });
    STATUS.classList.toggle("failed", Boolean(error));
    return;
  }
  const del = e.target.closest("button[data-delete]");
  if (!del) return;
  if (!window.confirm(fmt("confirm_delete", { what: del.dataset.what }))) return;
  if (STATUS) STATUS.textContent = "";
  const res = await call("DELETE", del.dataset.delete);
  if (res.ok) reloadWith(fmt("deleted"));
  else STATUS.textContent = fmt("failed", { message: fieldsOf(res)._ || res.status });
});

const flash = sessionStorage.getItem(FLASH);
if (flash && STATUS) {
  sessionStorage.removeItem(FLASH);
  STATUS.textContent = flash;
}
document.body.dataset.ready = "1";
