// Embeds the customer's request list from the service desk portal:
//   <script src="https://desk.company.example/widget.js" async></script>
// It puts an iframe of /widget where the script tag is (or into data-target's element).
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var origin = new URL(script.src, document.baseURI).origin;
  var frame = document.createElement("iframe");
  frame.src = origin + "/widget";
  frame.title = script.getAttribute("data-title") || "Service desk";
  frame.loading = "lazy";
  frame.style.border = "0";
  frame.style.width = script.getAttribute("data-width") || "100%";
  frame.style.height = script.getAttribute("data-height") || "360px";
  var target = script.getAttribute("data-target");
  var host = target ? document.getElementById(target) : null;
  if (host) { host.appendChild(frame); } else { script.parentNode.insertBefore(frame, script); }
})();
