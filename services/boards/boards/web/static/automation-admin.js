// The automation admin page: "Edit" puts a definition into the editor; "Save" PUTs it to
// /v1/automation/<kind>/<id> with the session's CSRF token and shows the refusal per field.
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const DATA = JSON.parse(document.getElementById("automation-data")?.textContent || "{}");
const T = DATA.t || {};
const form = document.getElementById("automation-editor");
const result = document.getElementById("automation-result");

function show(kind, id) {
  const item = ((DATA.editable || {})[kind] || {})[id];
  if (!item || !form) return;
  form.elements.kind.value = kind;
  form.elements.id.value = id;
  const { id: _, ...body } = item;
  form.elements.body.value = JSON.stringify(body, null, 2);
  form.elements.body.focus();
}

for (const button of document.querySelectorAll(".automation-edit")) {
  button.addEventListener("click", () => show(button.dataset.kind, button.dataset.id));
}

function say(text, errors) {
  result.replaceChildren();
  const p = document.createElement("p");
  p.textContent = text;
  result.append(p);
  if (errors) {
    const list = document.createElement("ul");
    list.className = "automation-errors";
    for (const [field, message] of Object.entries(errors)) {
      const li = document.createElement("li");
      const code = document.createElement("code");
      code.textContent = field;
      li.append(code, `: ${message}`);
      list.append(li);
    }
    result.append(list);
  }
}

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const kind = form.elements.kind.value;
  const id = form.elements.id.value.trim();
  let body;
  try {
    body = JSON.parse(form.elements.body.value);
  } catch (error) {
    form.elements.body.setAttribute("aria-invalid", "true");
    say(`${T.refused || "Not saved:"} ${error.message}`);
    return;
  }
  const response = await fetch(`/v1/automation/${encodeURIComponent(kind)}/${encodeURIComponent(id)}`, {
    method: "PUT", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": CSRF },
    body: JSON.stringify({ ...body, id }),
  });
  const answer = await response.json().catch(() => ({}));
  if (response.ok) {
    form.elements.body.removeAttribute("aria-invalid");
    say((T.saved || "Saved: {id}").replace("{id}", `${id}${answer.version ? ` (v${answer.version})` : ""}`));
    setTimeout(() => window.location.reload(), 800);
    return;
  }
  form.elements.body.setAttribute("aria-invalid", "true");
  say(`${T.refused || "Not saved:"} ${answer.message || response.status}`, answer.details);
});
