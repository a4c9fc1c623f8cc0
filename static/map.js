// Pan (drag) and zoom (wheel) on the server-rendered map; the view survives htmx refreshes.
(function () {
  "use strict";
  var KEY = "cartograph.map.viewBox";
  function attach() {
    var svg = document.getElementById("map-svg");
    if (!svg || svg.dataset.panzoom) { return; }
    svg.dataset.panzoom = "1";
    var full = svg.getAttribute("viewBox");
    svg.dataset.full = full;
    var box = function () { return svg.getAttribute("viewBox").split(" ").map(Number); };
    var set = function (b) { var v = b.join(" "); svg.setAttribute("viewBox", v); sessionStorage.setItem(KEY, v); };
    var saved = sessionStorage.getItem(KEY);
    if (saved) {
      svg.setAttribute("viewBox", saved);
    } else {
      // A big map fitted whole would shrink its labels past reading: start at a readable
      // scale on the callers' side (the left), vertically centred; "Fit all" shows everything.
      var rect = svg.getBoundingClientRect(), b = box();
      var fit = Math.min(rect.width / b[2], rect.height / b[3]);
      if (fit < 0.5 && rect.width > 0) {
        var w = rect.width / 0.9, h = rect.height / 0.9;
        svg.setAttribute("viewBox", [0, b[1] + b[3] / 2 - h / 2, w, h].join(" "));
      }
    }
    svg.addEventListener("wheel", function (event) {
      event.preventDefault();
      var b = box(), rect = svg.getBoundingClientRect();
      var factor = event.deltaY > 0 ? 1.15 : 1 / 1.15;
      var px = b[0] + (event.clientX - rect.left) / rect.width * b[2];
      var py = b[1] + (event.clientY - rect.top) / rect.height * b[3];
      set([px - (px - b[0]) * factor, py - (py - b[1]) * factor, b[2] * factor, b[3] * factor]);
    }, { passive: false });
    var drag = null;
    svg.addEventListener("mousedown", function (event) { drag = { x: event.clientX, y: event.clientY, b: box(), moved: false }; });
    window.addEventListener("mousemove", function (event) {
      if (!drag) { return; }
      var rect = svg.getBoundingClientRect(), b = drag.b;
      var dx = (event.clientX - drag.x) / rect.width * b[2], dy = (event.clientY - drag.y) / rect.height * b[3];
      if (Math.abs(event.clientX - drag.x) + Math.abs(event.clientY - drag.y) > 3) { drag.moved = true; }
      set([b[0] - dx, b[1] - dy, b[2], b[3]]);
    });
    window.addEventListener("mouseup", function () { setTimeout(function () { drag = null; }, 0); });
    svg.addEventListener("click", function (event) { if (drag && drag.moved) { event.preventDefault(); } }, true);
  }
  document.addEventListener("DOMContentLoaded", attach);
  document.addEventListener("htmx:afterSwap", attach);
  document.addEventListener("click", function (event) {
    if (event.target && event.target.id === "map-reset") { sessionStorage.removeItem(KEY); location.reload(); }
    if (event.target && event.target.id === "map-fit") {
      var svg = document.getElementById("map-svg");
      if (svg && svg.dataset.full) { svg.setAttribute("viewBox", svg.dataset.full); sessionStorage.setItem(KEY, svg.dataset.full); }
    }
  });
})();
// Find on the map: nodes whose id contains the text are marked, the rest dimmed, and the view
// moves to the first one when it is out of sight.
(function () {
  "use strict";
  function find(text) {
    var svg = document.getElementById("map-svg");
    if (!svg) { return; }
    var wanted = text.trim().toLowerCase();
    var first = null;
    svg.classList.toggle("searching", wanted.length > 0);
    svg.querySelectorAll("g.node").forEach(function (node) {
      var hit = wanted.length > 0 && node.getAttribute("data-id").toLowerCase().indexOf(wanted) >= 0;
      node.classList.toggle("match", hit);
      if (hit && !first) { first = node; }
    });
    svg.querySelectorAll("g.edge").forEach(function (edge) {
      var source = svg.querySelector("g.node.match[data-id='" + CSS.escape(edge.getAttribute("data-source")) + "']");
      var target = svg.querySelector("g.node.match[data-id='" + CSS.escape(edge.getAttribute("data-target")) + "']");
      edge.classList.toggle("match", Boolean(source || target));
    });
    if (first) {
      var box = first.getBBox(), m = first.transform.baseVal.consolidate();
      var x = (m ? m.matrix.e : 0) + box.width / 2, y = (m ? m.matrix.f : 0) + box.height / 2;
      var view = svg.getAttribute("viewBox").split(" ").map(Number);
      if (x < view[0] || x > view[0] + view[2] || y < view[1] || y > view[1] + view[3]) {
        svg.setAttribute("viewBox", [x - view[2] / 2, y - view[3] / 2, view[2], view[3]].join(" "));
      }
    }
  }
  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "map-search") { find(event.target.value); }
  });
  document.addEventListener("htmx:afterSwap", function () {
    var input = document.getElementById("map-search");
    if (input && input.value) { find(input.value); }
  });
})();
// Marks from the URL (`mark=` node ids and `source -> target` edges, as audit findings link
// here): those nodes and edges are marked and the rest dimmed, as Find does.
(function () {
  "use strict";
  function markFromUrl() {
    var svg = document.getElementById("map-svg");
    var marks = new URLSearchParams(window.location.search).getAll("mark");
    if (!svg || marks.length === 0) { return; }
    var nodes = {}, edges = {};
    marks.forEach(function (mark) {
      var ends = mark.split(" -> ");
      if (ends.length === 2) { edges[mark] = true; nodes[ends[0]] = true; nodes[ends[1]] = true; } else { nodes[mark] = true; }
    });
    svg.classList.add("searching");
    svg.querySelectorAll("g.node").forEach(function (node) {
      node.classList.toggle("match", Boolean(nodes[node.getAttribute("data-id")]));
    });
    svg.querySelectorAll("g.edge").forEach(function (edge) {
      var id = edge.getAttribute("data-source") + " -> " + edge.getAttribute("data-target");
      edge.classList.toggle("match", Boolean(edges[id]));
    });
  }
  document.addEventListener("DOMContentLoaded", markFromUrl);
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "map-findings" && event.target.value) {
      window.location.href = event.target.value;
    }
  });
  document.addEventListener("htmx:afterSwap", markFromUrl);
})();
