// The web UI's part of the lineage page, on top of datatrail.viz's viewer (lineage.js, loaded first):
// - a click on a node opens its details with an "Open page" link (lineage.js); a double click opens the page;
// - shift-click (or ctrl/cmd-click) two nodes to highlight the path between them;
// - the path chosen in the page's form (computed by the server) is highlighted on load.
// When all is wired, the graph element gets data-interactive="true" and, in data-ready-ms, the time since
// navigation start (tests and benchmarks/ui_lineage.py wait for it).
(function () {
  "use strict";

  function init() {
    var graph = document.getElementById("lineage-graph");
    if (!graph) return;
    var viewer = (window.datatrailLineage || []).filter(function (v) { return v.container === graph; })[0];
    if (!viewer) { graph.setAttribute("data-interactive", "false"); return; }
    var selected = [];
    var status = document.getElementById("path-status");

    function nodeAt(target) {
      while (target && target !== graph) {
        if (target.classList && target.classList.contains("dtl-node")) return target.getAttribute("data-id");
        target = target.parentNode;
      }
      return null;
    }

    // Shortest path along the data flow (either way), else ignoring direction; [] when unconnected.
    function shortestPath(start, end) {
      var forward = {}, backward = {}, both = {};
      viewer.view.links.forEach(function (l) {
        (forward[l[0]] = forward[l[0]] || []).push(l[1]);
        (backward[l[1]] = backward[l[1]] || []).push(l[0]);
        (both[l[0]] = both[l[0]] || []).push(l[1]);
        (both[l[1]] = both[l[1]] || []).push(l[0]);
      });
      var tries = [forward, backward, both];
      for (var i = 0; i < tries.length; i++) {
        var found = bfs(tries[i], start, end);
        if (found.length) return found;
      }
      return [];
    }

    function bfs(links, start, end) {
      var previous = {};
      previous[start] = null;
      var queue = [start];
      while (queue.length) {
        var node = queue.shift();
        if (node === end) {
          var path = [node];
          while (previous[path[path.length - 1]] !== null) path.push(previous[path[path.length - 1]]);
          return path.reverse();
        }
        (links[node] || []).slice().sort().forEach(function (next) {
          if (!Object.prototype.hasOwnProperty.call(previous, next)) { previous[next] = node; queue.push(next); }
        });
      }
      return [];
    }

    function highlight(path) {
      var ids = {};
      path.forEach(function (id) { ids[viewer.rep(id)] = true; ids[id] = true; });
      viewer.highlight = path.length ? { id: viewer.rep(path[0]), mode: "path", ids: ids } : null;
      viewer.applyHighlight();
      graph.querySelectorAll(".dtl-node").forEach(function (n) {
        n.classList.toggle("dt-on-path", !!ids[n.getAttribute("data-id")]);
        n.classList.toggle("dt-picked", selected.indexOf(n.getAttribute("data-id")) >= 0);
      });
      graph.setAttribute("data-path", path.join("\n"));
      if (status) {
        status.textContent = path.length ? "Path: " + path.length + " nodes." :
          selected.length === 2 ? "No path connects these two nodes." :
          selected.length === 1 ? "Shift-click a second node." : "";
      }
    }

    function pick(id) {
      var at = selected.indexOf(id);
      if (at >= 0) selected.splice(at, 1); else selected.push(id);
      if (selected.length > 2) selected.shift();
      highlight(selected.length === 2 ? shortestPath(selected[0], selected[1]) : []);
    }

    graph.addEventListener("click", function (event) {
      if (!(event.shiftKey || event.ctrlKey || event.metaKey)) return; // a plain click: lineage.js's details
      var id = nodeAt(event.target);
      if (!id) return;
      event.preventDefault();
      event.stopPropagation();
      pick(id);
    }, true);

    graph.addEventListener("dblclick", function (event) {
      var id = nodeAt(event.target);
      var node = id && viewer.nodes[id];
      if (node && node.href && node.href.charAt(0) === "/" && node.href.charAt(1) !== "/") {
        event.stopPropagation();
        window.location.assign(node.href);
      }
    }, true);

    var initial = (graph.getAttribute("data-path") || "").split("\n").filter(Boolean);
    if (initial.length) highlight(initial);
    graph.setAttribute("data-ready-ms", String(Math.round(window.performance.now())));
    graph.setAttribute("data-interactive", "true");
  }

  // lineage.js starts its viewers on DOMContentLoaded (registered before this listener).
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
