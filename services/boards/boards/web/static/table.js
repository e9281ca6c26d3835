// The card table: keyboard between rows, a selection, bulk actions with a result per
// card, saving and deleting views. Everything else (filters, sort, paging, CSV) is plain
// links and a GET form the server answers.

import { api } from "/assets/app.js";

const DATA = JSON.parse(document.getElementById("page-data").textContent);
const T = DATA.t;
const fmt = (key, vars = {}) =>
  (T[key] || key).replace(/\{(\w+)\}/g, (_, k) => (k in vars ? vars[k] : `{${k}}`));
const table = document.getElementById("card-table");
const rows = () => [...table.querySelectorAll("tbody tr[data-id]")];
const picks = () => [...table.querySelectorAll("input.pick")];
const count = document.getElementById("selected-count");

function showCount() {
  const n = picks().filter((p) => p.checked).length;
  count.textContent = fmt("selected", { n });
}

// --- keyboard: one row is focused at a time; the row is the control -------------------------
table.addEventListener("keydown", (e) => {
  const row = e.target.closest("tr[data-id]");
  if (!row || e.target.matches("input, a")) return;
  const all = rows();
  const i = all.indexOf(row);
  const go = (j) => { if (all[j]) { all[j].focus(); e.preventDefault(); } };
  if (e.key === "ArrowDown" || e.key === "j") go(i + 1);
  else if (e.key === "ArrowUp" || e.key === "k") go(i - 1);
  else if (e.key === "Home") go(0);
  else if (e.key === "End") go(all.length - 1);
  else if (e.key === "Enter") { window.location.href = `/cards/${encodeURIComponent(row.dataset.number)}`; }
  else if (e.key === "x" || e.key === " ") {
    const box = row.querySelector("input.pick");
    box.checked = !box.checked;
    showCount();
    e.preventDefault();
  }
});
table.addEventListener("change", (e) => { if (e.target.matches("input.pick")) showCount(); });
document.getElementById("select-page").addEventListener("change", (e) => {
  picks().forEach((p) => { p.checked = e.target.checked; });
  showCount();
});

// --- columns: the checkboxes write the one `cols` parameter ----------------------------------
const filters = document.getElementById("table-filters");
filters.addEventListener("submit", () => {
  const chosen = [...filters.querySelectorAll('input[name="col"]:checked')].map((c) => c.value);
  document.getElementById("table-cols").value = chosen.join(",");
  filters.querySelectorAll('input[name="col"]').forEach((c) => { c.disabled = true; });
});

// --- bulk actions ----------------------------------------------------------------------------
const bulk = document.getElementById("bulk");
const actionSel = document.getElementById("bulk-action");
function showParams() {
  bulk.querySelectorAll("label[data-for]").forEach((l) => { l.hidden = l.dataset.for !== actionSel.value; });
}
actionSel.addEventListener("change", showParams);
showParams();

bulk.addEventListener("submit", async (e) => {
  e.preventDefault();
  const cards = picks().filter((p) => p.checked).map((p) => p.value);
  const out = document.getElementById("bulk-result");
  if (!cards.length) { out.textContent = fmt("selected", { n: 0 }); return; }
  const f = new FormData(bulk);
  const action = f.get("action");
  const body = { cards, action };
  const value = (name) => f.get(name) || null;
  if (action === "assign") body.assignee_id = value("assignee_id");
  if (action === "move") { body.column_id = value("column_id"); body.lane_id = value("lane_id"); }
  if (action === "transfer") body.board_id = value("board_id");
  if (action === "priority") body.priority_key = value("priority_key");
  if (action === "type") body.type = value("type");
  if (action === "close") body.canned_response_id = value("canned_response_id");
  if (action === "labels") {
    body.labels = (f.get("labels") || "").split(",").map((s) => s.trim()).filter(Boolean).map((name) => ({ name }));
  }
  out.textContent = "…";
  const res = await api("POST", "/v1/cards/bulk", body);
  if (!res.ok) { out.textContent = (res.body && res.body.message) || `HTTP ${res.status}`; return; }
  const r = res.body;
  out.replaceChildren();
  const head = document.createElement("p");
  head.textContent = fmt("bulk_done", r);
  out.append(head);
  const list = document.createElement("ul");
  list.id = "bulk-results";
  for (const item of r.results) {
    const li = document.createElement("li");
    li.dataset.status = item.status;
    li.textContent = `${item.number || item.card}: ${T[`res_${item.status}`] || item.status}${item.reason ? ` — ${item.reason}` : ""}`;
    list.append(li);
  }
  out.append(list);
});

// --- saved views -----------------------------------------------------------------------------
document.getElementById("save-view").addEventListener("submit", async (e) => {
  e.preventDefault();
  const res = await api("POST", "/v1/views", {
    name: document.getElementById("view-name").value,
    query: DATA.query,
    shared: document.getElementById("view-shared").checked,
  });
  if (res.ok) window.location.href = res.body.link;
  else document.getElementById("bulk-result").textContent = (res.body && res.body.message) || `HTTP ${res.status}`;
});
document.querySelectorAll("button.delete-view").forEach((b) => b.addEventListener("click", async () => {
  const res = await api("DELETE", `/v1/views/${encodeURIComponent(b.dataset.view)}`);
  if (res.ok || res.status === 204) b.closest("li").remove();
}));
