// The service editor's live preview of the portal form: drawn from the service JSON the
// editor keeps up to date (#service-json), with the customer-visible fields only and their
// conditions applied to the values tried in the preview. Drawn with DOM calls (no HTML
// strings), so labels typed by an admin are never markup.

const source = document.getElementById("service-json");
const panel = document.getElementById("portal-preview");
const target = panel?.querySelector(".preview-form");
const lang = document.documentElement.lang || "en";
const tried = {};  // field key → the value tried in the preview (survives redraws)

const text = (localized) => (localized && (localized[lang] || localized.en)) || "";

function shown(field) {
  if (!field.condition) return true;
  const value = tried[field.condition.field];
  const values = Array.isArray(value) ? value : [value];
  return values.some((v) => v !== undefined && v !== "" && field.condition.in.includes(String(v)));
}

function control(field, id) {
  let el;
  if (field.type === "select" || field.type === "multiselect") {
    el = document.createElement("select");
    el.multiple = field.type === "multiselect";
    if (!el.multiple) {
      const blank = document.createElement("option");
      blank.value = "";
      blank.textContent = panel.dataset.choose;
      el.append(blank);
    }
    for (const o of field.options || []) {
      const opt = document.createElement("option");
      opt.value = o.value;
      opt.textContent = text(o.label) || o.value;
      el.append(opt);
    }
  } else if (field.type === "textarea") {
    el = document.createElement("textarea");
    el.rows = 3;
  } else {
    el = document.createElement("input");
    el.type = { number: "number", checkbox: "checkbox", date: "date", email: "email" }[field.type] || "text";
  }
  el.id = id;
  el.dataset.key = field.key;
  const value = tried[field.key];
  if (el.type === "checkbox") el.checked = value === "true";
  else if (el.multiple) for (const o of el.options) o.selected = (value || []).includes(o.value);
  else if (value !== undefined) el.value = value;
  return el;
}

function labelled(labelText, el, required) {
  const label = document.createElement("label");
  label.htmlFor = el.id;
  label.textContent = labelText;
  if (required) {
    const mark = document.createElement("span");
    mark.className = "req";
    mark.textContent = ` (${panel.dataset.required})`;
    label.append(mark);
  }
  const row = document.createElement("div");
  row.className = "preview-row";
  row.append(label, el);
  return row;
}

function draw() {
  let service;
  try { service = JSON.parse(source.textContent || "{}"); } catch { return; }
  const focused = document.activeElement?.dataset?.key;
  const rows = [];
  const title = document.createElement("h4");
  title.textContent = text(service.name) || service.id || "";
  rows.push(title);
  const subject = document.createElement("input");
  subject.id = "pv-subject";
  rows.push(labelled(panel.dataset.subject, subject, true));
  const body = document.createElement("textarea");
  body.id = "pv-text";
  body.rows = 3;
  rows.push(labelled(panel.dataset.text, body, true));
  for (const field of service.fields || []) {
    if (field.show_to_customer === false || !field.key || !shown(field)) continue;
    rows.push(labelled(text(field.label) || field.key, control(field, `pv-f-${field.key}`),
                       field.required));
  }
  target.replaceChildren(...rows);
  if (focused) target.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

if (source && target) {
  target.addEventListener("change", (e) => {
    const el = e.target.closest("[data-key]");
    if (!el) return;
    tried[el.dataset.key] = el.type === "checkbox" ? String(el.checked)
      : el.multiple ? [...el.selectedOptions].map((o) => o.value) : el.value;
    draw();
  });
  new MutationObserver(draw).observe(source, { childList: true, characterData: true, subtree: true });
  draw();
}
