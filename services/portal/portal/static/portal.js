// Live show/hide of conditional form fields. The server validates the same conditions
// (desk_contracts.catalog.applicable_fields), so without this script the form still works:
// every field is shown with a note saying when it applies, and inapplicable answers are dropped.
(function () {
  "use strict";
  function valueOf(form, key) {
    var wrap = form.querySelector('[data-field="' + key + '"]');
    if (!wrap || wrap.hidden) { return null; }
    var el = form.elements["f_" + key];
    if (!el) { return null; }
    if (el.type === "select-multiple") {
      return Array.prototype.filter.call(el.options, function (o) { return o.selected; })
        .map(function (o) { return o.value; });
    }
    if (el.length && el[el.length - 1] && el[el.length - 1].type === "checkbox") {
      return el[el.length - 1].checked ? "true" : "false";
    }
    return el.value;
  }
  function applies(form, wrap) {
    var other = wrap.getAttribute("data-condition-field");
    if (!other) { return true; }
    var allowed = JSON.parse(wrap.getAttribute("data-condition-in") || "[]");
    var v = valueOf(form, other);
    if (v === null || v === "") { return false; }
    if (Array.isArray(v)) { return v.some(function (x) { return allowed.indexOf(x) >= 0; }); }
    return allowed.indexOf(String(v)) >= 0;
  }
  function refresh(form) {
    // in document order, so a field hidden upstream hides what depends on it (conditions chain)
    form.querySelectorAll("[data-field]").forEach(function (wrap) {
      var on = applies(form, wrap);
      wrap.hidden = !on;
      wrap.querySelectorAll("input, select, textarea").forEach(function (el) { el.disabled = !on; });
    });
  }
  document.querySelectorAll("form[data-conditional-form]").forEach(function (form) {
    form.querySelectorAll(".only-if").forEach(function (note) { note.hidden = true; });
    form.addEventListener("change", function () { refresh(form); });
    form.addEventListener("input", function () { refresh(form); });
    refresh(form);
  });
})();

// Times are rendered in UTC by the server; show them in the viewer's own time zone.
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) { return; }
    el.title = el.textContent;
    el.textContent = when.toLocaleString(lang === "ru" ? "ru-RU" : "en-GB", {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"
    });
  });
})();

// Help-centre suggestions while a request's subject is typed: articles that may already
// answer it, each with "This solved my problem" (closes the draft, files no request).
// Built with textContent only: an article's words are never markup.
(function () {
  "use strict";
  var box = document.getElementById("help-suggest");
  var subject = document.getElementById("subject");
  if (!box || !subject || !window.fetch) { return; }
  var form = subject.form;
  var list = box.querySelector(".help-suggest-list");
  var service = box.getAttribute("data-service") || "";
  var timer = null;
  var asked = "";

  function marked(el, segments) {
    (segments || []).forEach(function (s) {
      if (s.mark) {
        var m = document.createElement("mark");
        m.textContent = s.text;
        el.appendChild(m);
      } else {
        el.appendChild(document.createTextNode(s.text));
      }
    });
  }

  function solved(articleId) {
    var post = document.createElement("form");
    post.method = "post";
    post.action = "/help/solved";
    [["csrf", form.elements.csrf.value], ["article_id", articleId], ["service_id", service]]
      .forEach(function (pair) {
        var input = document.createElement("input");
        input.type = "hidden";
        input.name = pair[0];
        input.value = pair[1];
        post.appendChild(input);
      });
    document.body.appendChild(post);
    post.submit();
  }

  function show(items) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    items.forEach(function (a) {
      var li = document.createElement("li");
      var link = document.createElement("a");
      link.href = a.url + "?draft=" + encodeURIComponent(service);
      marked(link, a.title);
      li.appendChild(link);
      var p = document.createElement("p");
      p.className = "help-snippet";
      marked(p, a.snippet);
      li.appendChild(p);
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = box.getAttribute("data-solved");
      button.addEventListener("click", function () { solved(a.id); });
      li.appendChild(button);
      list.appendChild(li);
    });
    box.hidden = items.length === 0;
  }

  function ask() {
    var q = subject.value.trim();
    if (q === asked) { return; }
    asked = q;
    if (q.length < 3) { show([]); return; }
    fetch("/help/suggest?q=" + encodeURIComponent(q) + "&service=" + encodeURIComponent(service),
          {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : {items: []}; })
      .then(function (data) { if (q === asked) { show(data.items || []); } })
      .catch(function () { show([]); });
  }

  subject.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 250);
  });
  ask();
})();
