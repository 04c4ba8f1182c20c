/* datatrail lineage viewer: pan, zoom, node details, expandable groups, version/dataset level,
 * upstream/downstream highlighting.
 *
 * It reads its data from <script type="application/json" id="datatrail-graph"> (made by
 * datatrail.viz.html.graph_payload) and draws into every element with a
 * data-datatrail-lineage attribute (its value, if any, the id of the JSON element), or
 * #datatrail-lineage, or #lineage-graph. It runs under a strict
 * Content-Security-Policy: no eval, no inline handlers, no innerHTML; every string from the
 * data goes in with textContent or setAttribute.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var NODE_H = 34, ROW_GAP = 14, CHAR_W = 7, PAD_X = 14, MIN_W = 72, MAX_W = 280;
  var MAX_CHARS = Math.floor((MAX_W - 2 * PAD_X) / CHAR_W);
  // A label is LABEL_PX in graph units (lineage.css); on screen it must stay at least MIN_LABEL_PX, so
  // below the scale READABLE labels are hidden (the node's title still names it) rather than shrunk.
  var LABEL_PX = 12, MIN_LABEL_PX = 11, READABLE = MIN_LABEL_PX / LABEL_PX, MAX_FIT = 1.25, FOCUS_SCALE = 1;
  var MINIMAP_W = 220, MINIMAP_H = 130, MINIMAP_MIN = 48;
  var MARKS = { failed: "failed run", checks: "failed checks", drift: "drift alert" };
  var BADGES = { failed: "\u2717", checks: "!", drift: "~" };
  var KINDS = { dataset: "dataset version", model: "model version", run: "run", group: "collapsed group" };

  // "1 node", "3 edges": counts agree with their noun, as datatrail.core.text.count says them.
  function count(n, noun) {
    return n.toLocaleString("en-US") + " " + noun + (n === 1 ? "" : "s");
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svgEl(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    setAttrs(node, attrs);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
  }

  function shorten(label) {
    return label.length <= MAX_CHARS ? label : label.slice(0, MAX_CHARS - 1) + "\u2026";
  }

  function boxWidth(label) {
    return Math.max(MIN_W, Math.min(MAX_W, label.length * CHAR_W + 2 * PAD_X));
  }

  function safeHref(href) {
    // Only links into the same site or page: never javascript: or another origin.
    return typeof href === "string" && /^(\/(?!\/)|\.\/|#|\?)/.test(href) ? href : null;
  }

  function Viewer(container, payload) {
    this.container = container;
    this.payload = payload;
    this.levels = Object.keys(payload.views || {});
    this.level = payload.views[payload.level] ? payload.level : this.levels[0];
    this.expanded = {};
    this.selected = null;
    this.highlight = null; // {mode, ids}
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.note = "";
    this.build();
    this.open();
  }

  // The first view: the whole graph when it is readable fitted; else the coarser dataset level when
  // that is (unless the page fixed the level); else the focus node at a readable scale, the rest
  // reachable by panning and shown in the minimap.
  Viewer.prototype.open = function () {
    this.setLevel(this.level);
    if (this.fitScale(this.width, this.height) >= READABLE || this.payload.auto_level === false) return;
    var coarse = this.payload.views.dataset;
    if (this.level !== "dataset" && coarse && this.fitScale(coarse.width, coarse.height) >= READABLE) {
      this.setLevel("dataset");
      this.note = "Datasets and jobs: the versions graph is too large to read at once (Versions shows it).";
      this.showNote();
    }
  };

  Viewer.prototype.showNote = function () {
    this.noteEl.textContent = this.note;
    this.noteEl.hidden = !this.note;
  };

  Viewer.prototype.build = function () {
    var self = this;
    var c = this.container;
    while (c.firstChild) c.removeChild(c.firstChild);
    c.classList.add("dtl");
    var bar = el("div", { class: "dtl-toolbar", role: "toolbar", "aria-label": "lineage graph controls" });
    function button(text, title, fn) {
      var b = el("button", { type: "button", title: title }, text);
      b.addEventListener("click", fn);
      bar.appendChild(b);
      return b;
    }
    button("+", "Zoom in", function () { self.zoomBy(1.25); });
    button("\u2212", "Zoom out", function () { self.zoomBy(0.8); });
    button("Fit", "Fit the graph in view", function () { self.fit(); });
    this.levelButtons = {};
    if (this.levels.length > 1) {
      this.levels.forEach(function (level) {
        self.levelButtons[level] = button(level === "version" ? "Versions" : "Datasets",
          "Show the " + level + "-level view", function () { self.setLevel(level); });
      });
    }
    this.expandAll = button("Expand groups", "Expand every collapsed group", function () { self.toggleAllGroups(); });
    var find = el("input", { type: "search", placeholder: "Find a node\u2026", "aria-label": "find a node" });
    find.addEventListener("input", function () { self.find(find.value); });
    find.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && self.matches && self.matches.length) self.select(self.matches[0], true);
    });
    bar.appendChild(find);
    this.status = el("span", { class: "dtl-status" });
    bar.appendChild(this.status);
    c.appendChild(bar);
    this.noteEl = el("p", { class: "dtl-note", role: "status", hidden: "hidden" });
    c.appendChild(this.noteEl);

    var main = el("div", { class: "dtl-main" });
    this.svg = svgEl("svg", { class: "dtl-svg", role: "img", "aria-label": "lineage graph" });
    var defs = svgEl("defs");
    var marker = svgEl("marker", { id: "dtl-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
      markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.appendChild(svgEl("path", { d: "M0,0 L10,5 L0,10 z", class: "dtl-arrowhead" }));
    defs.appendChild(marker);
    this.svg.appendChild(defs);
    this.viewport = svgEl("g", { class: "dtl-viewport" });
    this.svg.appendChild(this.viewport);
    main.appendChild(this.svg);
    this.minimap = this.buildMinimap();
    main.appendChild(this.minimap);
    this.panel = el("aside", { class: "dtl-panel", "aria-live": "polite", hidden: "hidden" });
    main.appendChild(this.panel);
    c.appendChild(main);
    c.appendChild(this.legend());
    this.bindPanZoom();
  };

  Viewer.prototype.legend = function () {
    var box = el("div", { class: "dtl-legend" });
    Object.keys(KINDS).forEach(function (k) {
      var item = el("span", { class: "dtl-legend-item dtl-kind-" + k });
      item.appendChild(el("span", { class: "dtl-swatch" }));
      item.appendChild(document.createTextNode(KINDS[k]));
      box.appendChild(item);
    });
    Object.keys(MARKS).forEach(function (m) {
      var item = el("span", { class: "dtl-legend-item" });
      item.appendChild(el("span", { class: "dtl-badge dtl-badge-" + m }, BADGES[m]));
      item.appendChild(document.createTextNode(MARKS[m]));
      box.appendChild(item);
    });
    this.hint = el("span", { class: "dtl-hint" });
    box.appendChild(this.hint);
    return box;
  };

  Viewer.prototype.setLevel = function (level) {
    this.level = level;
    this.view = this.payload.views[level];
    this.expanded = {};
    this.selected = null;
    this.highlight = null;
    this.index();
    var self = this;
    Object.keys(this.levelButtons).forEach(function (l) {
      self.levelButtons[l].setAttribute("aria-pressed", l === level ? "true" : "false");
    });
    this.expandAll.hidden = !this.view.groups.length;
    if (this.note) { this.note = ""; this.showNote(); }
    this.render();
    this.fit();
    if (this.scale < READABLE) this.focus(this.focusNode(), FOCUS_SCALE); // too small to read: the focus node
    this.showDetails(null);
  };

  // The node the page is about: the root if drawn (or the group holding it), else the newest of the
  // start nodes (a dataset's page draws its versions), else the first node.
  Viewer.prototype.focusNode = function () {
    var root = this.view.root;
    if (this.boxes[this.rep(root)]) return this.rep(root);
    var self = this, best = null, newest = -Infinity;
    this.view.nodes.forEach(function (n) {
      var number = n.data && typeof n.data.version === "number" ? n.data.version : 0;
      if (n.depth === 0 && self.boxes[self.rep(n.id)] && number >= newest) { best = self.rep(n.id); newest = number; }
    });
    return best || Object.keys(this.boxes)[0];
  };

  // The scale at which a width × height graph fits the drawing area.
  Viewer.prototype.fitScale = function (width, height) {
    var r = this.svg.getBoundingClientRect();
    var w = r.width || 800, h = r.height || 600;
    return Math.max(0.05, Math.min(MAX_FIT, w / width, h / height));
  };

  // Zoom to ``scale`` centred on one node (or the left edge if it is not drawn).
  Viewer.prototype.focus = function (id, scale) {
    var r = this.svg.getBoundingClientRect();
    var w = r.width || 800, h = r.height || 600;
    var b = this.boxes[id] || [0, this.height / 2 - NODE_H / 2, w / scale / 2, NODE_H];
    this.scale = scale;
    // Centred on the node, but no empty band where the graph could be shown: along an axis where
    // the graph is larger than the view, its edges stay at or beyond the view's (the node stays in view).
    this.tx = clampShift(w / 2 - (b[0] + b[2] / 2) * scale, w, this.width * scale);
    this.ty = clampShift(h / 2 - (b[1] + b[3] / 2) * scale, h, this.height * scale);
    this.applyTransform();
  };

  function clampShift(shift, view, size) {
    if (size <= view) return (view - size) / 2;
    return Math.min(0, Math.max(view - size, shift));
  }

  Viewer.prototype.index = function () {
    var v = this.view;
    this.nodes = {};
    this.owner = {};
    this.groups = {};
    var self = this;
    v.nodes.forEach(function (n) { self.nodes[n.id] = n; if (n.group) self.owner[n.id] = n.group; });
    v.groups.forEach(function (g) { self.groups[g.id] = g; });
  };

  // Where every drawn node goes, given the expanded groups: a group opens into a column of its
  // members at its own place, pushing the rest of its layer down.
  Viewer.prototype.arrange = function () {
    var self = this;
    var v = this.view;
    var boxes = {};
    v.nodes.forEach(function (n) { if (n.box) boxes[n.id] = n.box.slice(); });
    v.groups.forEach(function (g) { boxes[g.id] = g.box.slice(); });
    var shifts = []; // [layer, fromY, by]
    var open = v.groups.filter(function (g) { return self.expanded[g.id]; })
      .sort(function (a, b) { return a.box[1] - b.box[1]; });
    open.forEach(function (g) {
      var gb = boxes[g.id];
      var layer = gb[4];
      var y = gb[1];
      g.members.forEach(function (m) {
        var w = boxWidth(self.nodes[m].label);
        boxes[m] = [gb[0] + (gb[2] - w) / 2, y, w, NODE_H, layer];
        y += NODE_H + ROW_GAP;
      });
      var extra = y - ROW_GAP - (gb[1] + gb[3]);
      var from = gb[1] + gb[3] / 2;
      delete boxes[g.id];
      if (extra > 0) {
        Object.keys(boxes).forEach(function (id) {
          var b = boxes[id];
          if (b[4] === layer && b[1] > from && g.members.indexOf(id) < 0) b[1] += extra;
        });
        shifts.push([layer, from, extra]);
      }
    });
    return { boxes: boxes, shifts: shifts };
  };

  Viewer.prototype.rep = function (id) {
    var g = this.owner[id];
    return g && !this.expanded[g] ? g : id;
  };

  Viewer.prototype.render = function () {
    var self = this;
    var v = this.view;
    var placed = this.arrange();
    var boxes = placed.boxes;
    this.boxes = boxes;
    var vp = this.viewport;
    while (vp.firstChild) vp.removeChild(vp.firstChild);
    var edgeLayer = svgEl("g", { class: "dtl-edges" });
    var nodeLayer = svgEl("g", { class: "dtl-nodes" });
    this.drawn = []; // [source, target, element]
    var seen = {};
    function shiftPoint(p) {
      var y = p[1];
      placed.shifts.forEach(function (s) {
        var col = v.columns[s[0]];
        if (p[0] >= col[0] - 0.5 && p[0] <= col[0] + col[1] + 0.5 && p[1] > s[1]) y += s[2];
      });
      return [p[0], y];
    }
    v.edges.forEach(function (e) {
      if (self.expanded[e.source] || self.expanded[e.target]) return;
      var s = boxes[e.source], t = boxes[e.target];
      if (!s || !t) return;
      var pts = e.points.map(shiftPoint);
      if (e.reversed) {
        pts[0] = [s[0], s[1] + s[3] / 2];
        pts[pts.length - 1] = [t[0] + t[2], t[1] + t[3] / 2];
      } else {
        pts[0] = [s[0] + s[2], s[1] + s[3] / 2];
        pts[pts.length - 1] = [t[0], t[1] + t[3] / 2];
      }
      seen[e.source + "\u0000" + e.target] = true;
      self.drawEdge(edgeLayer, e.source, e.target, pts, e.reversed);
    });
    // Edges of the members of open groups, from the full list of links.
    v.links.forEach(function (l) {
      var a = self.rep(l[0]), b = self.rep(l[1]);
      if (a === b || !(self.owner[l[0]] && self.expanded[self.owner[l[0]]]) &&
          !(self.owner[l[1]] && self.expanded[self.owner[l[1]]])) return;
      var key = a + "\u0000" + b;
      if (seen[key] || !boxes[a] || !boxes[b]) return;
      seen[key] = true;
      var s = boxes[a], t = boxes[b];
      var back = t[0] < s[0] + s[2];
      var p0 = back ? [s[0], s[1] + s[3] / 2] : [s[0] + s[2], s[1] + s[3] / 2];
      var p1 = back ? [t[0] + t[2], t[1] + t[3] / 2] : [t[0], t[1] + t[3] / 2];
      self.drawEdge(edgeLayer, a, b, [p0, p1], back);
    });
    Object.keys(boxes).forEach(function (id) {
      var group = self.groups[id];
      var n = group || self.nodes[id];
      nodeLayer.appendChild(self.drawNode(id, n, boxes[id], !!group));
    });
    vp.appendChild(edgeLayer);
    vp.appendChild(nodeLayer);
    this.width = v.width;
    this.height = v.height;
    Object.keys(boxes).forEach(function (id) {
      var b = boxes[id];
      self.height = Math.max(self.height, b[1] + b[3] + 16);
    });
    var nGroups = v.groups.length, nOpen = Object.keys(this.expanded).length;
    this.expandAll.textContent = nOpen && nOpen === nGroups ? "Collapse groups" : "Expand groups";
    this.status.textContent = count(v.nodes.length, "node") + ", " + count(v.links.length, "edge") +
      (nGroups ? ", " + count(nGroups, "group") : "");
    this.focusId = this.focusNode();
    this.drawMinimap();
    this.updateMinimap();
    this.applyHighlight();
  };

  Viewer.prototype.drawEdge = function (layer, source, target, pts, reversed) {
    var d = "M" + pts[0][0].toFixed(1) + "," + pts[0][1].toFixed(1);
    for (var i = 1; i < pts.length; i++) {
      var p = pts[i - 1], q = pts[i];
      if (Math.abs(q[1] - p[1]) < 0.5) {
        d += " L" + q[0].toFixed(1) + "," + q[1].toFixed(1);
      } else {
        var mid = (q[0] - p[0]) / 2;
        d += " C" + (p[0] + mid).toFixed(1) + "," + p[1].toFixed(1) + " " + (q[0] - mid).toFixed(1) + "," +
          q[1].toFixed(1) + " " + q[0].toFixed(1) + "," + q[1].toFixed(1);
      }
    }
    var path = svgEl("path", { class: reversed ? "dtl-edge dtl-reversed" : "dtl-edge", d: d,
      "marker-end": "url(#dtl-arrow)", "data-source": source, "data-target": target });
    layer.appendChild(path);
    this.drawn.push([source, target, path]);
  };

  Viewer.prototype.drawNode = function (id, n, b, isGroup) {
    var self = this;
    var kind = isGroup ? "group" : n.kind;
    var cls = ["dtl-node", "dtl-kind-" + kind].concat((n.marks || []).map(function (m) { return "dtl-mark-" + m; }));
    if (id === this.view.root) cls.push("dtl-root");
    var g = svgEl("g", { class: cls.join(" "), tabindex: 0, role: "button", "data-id": id,
      "aria-label": (isGroup ? "group: " : "") + n.label });
    // The tooltip: the whole label (the box may cut it), then the full description and the marks.
    g.appendChild(svgEl("title", null, n.label + (n.title && n.title !== n.label ? "\n" + n.title : "") +
      (n.marks || []).map(function (m) { return "\n" + MARKS[m]; }).join("")));
    var x = b[0], y = b[1], w = b[2], h = b[3];
    if (kind === "dataset") {
      g.appendChild(svgEl("rect", { class: "dtl-shape", x: x, y: y, width: w, height: h, rx: h / 2 }));
    } else if (kind === "model") {
      var d = h / 2;
      var pts = [[x, y + d], [x + d, y], [x + w - d, y], [x + w, y + d], [x + w - d, y + h], [x + d, y + h]];
      g.appendChild(svgEl("polygon", { class: "dtl-shape", points: pts.map(function (p) { return p.join(","); }).join(" ") }));
    } else if (kind === "group") {
      g.appendChild(svgEl("rect", { class: "dtl-behind", x: x + 6, y: y - 5, width: w, height: h, rx: 3 }));
      g.appendChild(svgEl("rect", { class: "dtl-behind", x: x + 3, y: y - 2.5, width: w, height: h, rx: 3 }));
      g.appendChild(svgEl("rect", { class: "dtl-shape", x: x, y: y, width: w, height: h, rx: 3 }));
    } else {
      g.appendChild(svgEl("rect", { class: "dtl-shape", x: x, y: y, width: w, height: h, rx: 2 }));
    }
    g.appendChild(svgEl("text", { x: x + w / 2, y: y + h / 2 + 4, "text-anchor": "middle" }, shorten(n.label)));
    (n.marks || []).forEach(function (m, i) {
      var bx = x + w - 6 - 15 * i;
      g.appendChild(svgEl("circle", { class: "dtl-badge-" + m, cx: bx, cy: y + 2, r: 7 }));
      g.appendChild(svgEl("text", { class: "dtl-badge-text", x: bx, y: y + 5.5, "text-anchor": "middle" }, BADGES[m]));
    });
    g.addEventListener("click", function (e) { e.stopPropagation(); self.select(id, false); });
    g.addEventListener("dblclick", function (e) {
      e.stopPropagation();
      if (isGroup) self.toggleGroup(id, true);
    });
    g.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); self.select(id, false); }
    });
    return g;
  };

  Viewer.prototype.toggleGroup = function (gid, open) {
    if (open) this.expanded[gid] = true; else delete this.expanded[gid];
    if (this.selected === gid && open) this.selected = null;
    this.render();
    this.showDetails(this.selected);
  };

  Viewer.prototype.toggleAllGroups = function () {
    var self = this;
    var all = this.view.groups.every(function (g) { return self.expanded[g.id]; });
    this.expanded = {};
    if (!all) this.view.groups.forEach(function (g) { self.expanded[g.id] = true; });
    this.render();
    this.showDetails(this.selected && this.boxes[this.selected] ? this.selected : null);
  };

  Viewer.prototype.select = function (id, center) {
    var g = this.owner[id];
    if (g && !this.expanded[g]) { this.expanded[g] = true; this.render(); }
    this.selected = id;
    this.viewport.querySelectorAll(".dtl-node").forEach(function (n) {
      n.classList.toggle("dtl-selected", n.getAttribute("data-id") === id);
    });
    this.showDetails(id);
    if (center && this.boxes[id]) this.focus(id, Math.max(this.scale, FOCUS_SCALE));
  };

  // Upstream, downstream or both, over the edges as drawn.
  Viewer.prototype.setHighlight = function (id, mode) {
    if (!mode) { this.highlight = null; this.applyHighlight(); return; }
    var ids = {};
    ids[id] = true;
    var self = this;
    ["up", "down"].forEach(function (dir) {
      if (mode !== "both" && mode !== dir) return;
      var todo = [id];
      var seen = {};
      seen[id] = true;
      while (todo.length) {
        var cur = todo.pop();
        self.drawn.forEach(function (e) {
          var from = dir === "down" ? e[0] : e[1], to = dir === "down" ? e[1] : e[0];
          if (from === cur && !seen[to]) { seen[to] = true; ids[to] = true; todo.push(to); }
        });
      }
    });
    this.highlight = { id: id, mode: mode, ids: ids };
    this.applyHighlight();
  };

  Viewer.prototype.applyHighlight = function () {
    var h = this.highlight;
    if (h && !this.boxes[h.id]) { this.highlight = h = null; }
    this.container.classList.toggle("dtl-highlighting", !!h);
    this.viewport.querySelectorAll(".dtl-node").forEach(function (n) {
      n.classList.toggle("dtl-lit", !!h && !!h.ids[n.getAttribute("data-id")]);
    });
    this.drawn.forEach(function (e) {
      e[2].classList.toggle("dtl-lit", !!h && !!h.ids[e[0]] && !!h.ids[e[1]]);
    });
  };

  Viewer.prototype.find = function (text) {
    var q = text.trim().toLowerCase();
    var self = this;
    this.matches = [];
    if (q) {
      this.view.nodes.forEach(function (n) {
        if ((n.title || n.label).toLowerCase().indexOf(q) >= 0 || n.id.toLowerCase().indexOf(q) >= 0) {
          self.matches.push(n.id);
        }
      });
    }
    var hit = {};
    this.matches.forEach(function (id) { hit[self.rep(id)] = true; });
    this.viewport.querySelectorAll(".dtl-node").forEach(function (n) {
      n.classList.toggle("dtl-match", !!hit[n.getAttribute("data-id")]);
    });
    this.status.textContent = q ? this.matches.length + " found" : "";
  };

  Viewer.prototype.showDetails = function (id) {
    var self = this;
    var p = this.panel;
    while (p.firstChild) p.removeChild(p.firstChild);
    // The panel lies over the right of the graph only while a node is selected: the graph gets the
    // whole width the rest of the time.
    p.hidden = !id || !(this.nodes[id] || this.groups[id]);
    if (p.hidden) {
      this.hint.textContent = "Click a node for its details. Drag to pan, use the wheel or the buttons to zoom." +
        (this.view.groups.length ? " Double-click a group to expand it." : "");
      return;
    }
    var close = el("button", { type: "button", class: "dtl-close", title: "Close the details", "aria-label": "close" },
      "\u00d7");
    close.addEventListener("click", function (e) {
      e.stopPropagation();
      self.selected = null;
      self.viewport.querySelectorAll(".dtl-selected").forEach(function (n) { n.classList.remove("dtl-selected"); });
      self.showDetails(null);
    });
    p.appendChild(close);
    var group = this.groups[id];
    var n = group || this.nodes[id];
    p.appendChild(el("h2", null, n.title || n.label));
    var meta = el("p", { class: "dtl-kind" }, group ? KINDS.group : KINDS[n.kind] || n.kind);
    p.appendChild(meta);
    (n.marks || []).forEach(function (m) {
      var line = el("p", { class: "dtl-mark" });
      line.appendChild(el("span", { class: "dtl-badge dtl-badge-" + m }, BADGES[m]));
      line.appendChild(document.createTextNode(" " + MARKS[m]));
      p.appendChild(line);
    });
    var actions = el("div", { class: "dtl-actions" });
    function action(text, fn, pressed) {
      var b = el("button", { type: "button" }, text);
      if (pressed !== undefined) b.setAttribute("aria-pressed", pressed ? "true" : "false");
      b.addEventListener("click", fn);
      actions.appendChild(b);
    }
    var h = this.highlight && this.highlight.id === id ? this.highlight.mode : null;
    action("Upstream", function () { self.setHighlight(id, h === "up" ? null : "up"); self.showDetails(id); }, h === "up");
    action("Downstream", function () { self.setHighlight(id, h === "down" ? null : "down"); self.showDetails(id); }, h === "down");
    action("Both", function () { self.setHighlight(id, h === "both" ? null : "both"); self.showDetails(id); }, h === "both");
    if (group) action("Expand", function () { self.toggleGroup(id, true); });
    if (this.owner[id] && this.expanded[this.owner[id]]) {
      action("Collapse group", function () { self.selected = null; self.toggleGroup(self.owner[id], false); });
    }
    p.appendChild(actions);
    var href = safeHref(n.href);
    if (href) p.appendChild(el("p", null)).appendChild(el("a", { href: href, class: "dtl-open" }, "Open page"));
    var dl = el("dl");
    function row(k, v) {
      dl.appendChild(el("dt", null, k));
      var dd = el("dd");
      if (v !== null && typeof v === "object") dd.appendChild(el("pre", null, JSON.stringify(v, null, 1)));
      else dd.textContent = v === null || v === undefined ? "\u2013" : String(v);
      dl.appendChild(dd);
    }
    row("id", id);
    if (group) {
      row("members", group.members.length);
      p.appendChild(dl);
      var ul = el("ul", { class: "dtl-members" });
      group.members.forEach(function (m) {
        var li = el("li");
        var b = el("button", { type: "button", class: "dtl-link" }, self.nodes[m].label);
        b.addEventListener("click", function () { self.select(m, true); });
        li.appendChild(b);
        ul.appendChild(li);
      });
      p.appendChild(ul);
      return;
    }
    Object.keys(n.data || {}).forEach(function (k) { row(k, n.data[k]); });
    p.appendChild(dl);
  };

  Viewer.prototype.applyTransform = function () {
    this.viewport.setAttribute("transform",
      "translate(" + this.tx.toFixed(1) + "," + this.ty.toFixed(1) + ") scale(" + this.scale.toFixed(4) + ")");
    this.container.classList.toggle("dtl-unreadable", this.scale < READABLE - 1e-6);
    this.container.setAttribute("data-scale", this.scale.toFixed(4));
    this.updateMinimap();
  };

  // ---------------------------------------------------------------- the minimap (an overview)

  Viewer.prototype.buildMinimap = function () {
    var self = this;
    var box = el("div", { class: "dtl-minimap", "aria-label": "overview of the whole graph; click to move there" });
    this.mini = svgEl("svg", { class: "dtl-minimap-svg", role: "img", "aria-label": "graph overview" });
    this.miniNodes = svgEl("g", { class: "dtl-minimap-nodes" });
    this.miniView = svgEl("rect", { class: "dtl-minimap-view" });
    this.mini.appendChild(this.miniNodes);
    this.mini.appendChild(this.miniView);
    box.appendChild(this.mini);
    var dragging = false;
    function moveTo(e) {
      var r = self.mini.getBoundingClientRect();
      var gx = (e.clientX - r.left) / self.miniKx, gy = (e.clientY - r.top) / self.miniKy;
      var s = self.svg.getBoundingClientRect();
      self.tx = s.width / 2 - gx * self.scale;
      self.ty = s.height / 2 - gy * self.scale;
      self.applyTransform();
    }
    this.mini.addEventListener("pointerdown", function (e) { dragging = true; moveTo(e); e.preventDefault(); });
    window.addEventListener("pointermove", function (e) { if (dragging) moveTo(e); });
    window.addEventListener("pointerup", function () { dragging = false; });
    return box;
  };

  // Redraw the minimap's nodes (after each render): one small shape per drawn box.
  Viewer.prototype.drawMinimap = function () {
    var g = this.miniNodes;
    while (g.firstChild) g.removeChild(g.firstChild);
    // To scale, except that a long thin graph is stretched to MINIMAP_MIN across (still a map of it).
    var k = Math.min(MINIMAP_W / this.width, MINIMAP_H / this.height);
    var kx = k, ky = k;
    if (this.width * kx < MINIMAP_MIN) kx = MINIMAP_MIN / this.width;
    if (this.height * ky < MINIMAP_MIN) ky = MINIMAP_MIN / this.height;
    this.miniKx = kx;
    this.miniKy = ky;
    this.mini.setAttribute("width", (this.width * kx).toFixed(0));
    this.mini.setAttribute("height", (this.height * ky).toFixed(0));
    var self = this;
    Object.keys(this.boxes).forEach(function (id) {
      var b = self.boxes[id];
      var n = self.groups[id] || self.nodes[id];
      var kind = self.groups[id] ? "group" : n.kind;
      var cls = "dtl-mini-node dtl-kind-" + kind + (id === self.focusId ? " dtl-mini-focus" : "");
      g.appendChild(svgEl("rect", { class: cls, "data-id": id, x: (b[0] * kx).toFixed(1), y: (b[1] * ky).toFixed(1),
        width: Math.max(1.5, b[2] * kx).toFixed(1), height: Math.max(1.5, b[3] * ky).toFixed(1) }));
    });
  };

  // Where the drawing area is, as a rectangle on the minimap; the minimap shows only while part of
  // the graph is out of view.
  Viewer.prototype.updateMinimap = function () {
    if (!this.miniView || !this.width) return;
    var r = this.svg.getBoundingClientRect();
    var w = r.width || 800, h = r.height || 600;
    var kx = this.miniKx || 1, ky = this.miniKy || 1;
    var x0 = -this.tx / this.scale, y0 = -this.ty / this.scale;
    var x1 = x0 + w / this.scale, y1 = y0 + h / this.scale;
    var inView = x0 <= 0.5 && y0 <= 0.5 && x1 >= this.width - 0.5 && y1 >= this.height - 0.5;
    this.minimap.hidden = inView;
    var cx0 = Math.max(0, x0), cy0 = Math.max(0, y0);
    var cx1 = Math.min(this.width, x1), cy1 = Math.min(this.height, y1);
    setAttrs(this.miniView, { x: (cx0 * kx).toFixed(1), y: (cy0 * ky).toFixed(1),
      width: Math.max(2, (cx1 - cx0) * kx).toFixed(1), height: Math.max(2, (cy1 - cy0) * ky).toFixed(1) });
  };

  Viewer.prototype.fit = function () {
    var r = this.svg.getBoundingClientRect();
    var w = r.width || 800, h = r.height || 600;
    this.scale = this.fitScale(this.width, this.height);
    this.tx = (w - this.width * this.scale) / 2;
    this.ty = (h - this.height * this.scale) / 2;
    this.applyTransform();
  };

  Viewer.prototype.zoomBy = function (factor, cx, cy) {
    var r = this.svg.getBoundingClientRect();
    if (cx === undefined) { cx = r.width / 2; cy = r.height / 2; }
    var s = Math.max(0.05, Math.min(8, this.scale * factor));
    this.tx = cx - (cx - this.tx) * (s / this.scale);
    this.ty = cy - (cy - this.ty) * (s / this.scale);
    this.scale = s;
    this.applyTransform();
  };

  Viewer.prototype.bindPanZoom = function () {
    var self = this;
    var drag = null;
    this.svg.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, tx: self.tx, ty: self.ty, moved: false };
    });
    window.addEventListener("pointermove", function (e) {
      if (!drag) return;
      var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 3) return;
      drag.moved = true;
      self.svg.classList.add("dtl-dragging");
      self.tx = drag.tx + dx;
      self.ty = drag.ty + dy;
      self.applyTransform();
    });
    window.addEventListener("pointerup", function () {
      drag = null;
      self.svg.classList.remove("dtl-dragging");
    });
    this.svg.addEventListener("wheel", function (e) {
      e.preventDefault();
      var r = self.svg.getBoundingClientRect();
      self.zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    this.svg.addEventListener("click", function () {
      self.selected = null;
      self.viewport.querySelectorAll(".dtl-selected").forEach(function (n) { n.classList.remove("dtl-selected"); });
      self.showDetails(null);
    });
  };

  // The JSON element a container names in data-datatrail-lineage="ID", else #datatrail-graph
  // (the standalone file), else #lineage-data (the web UI's page).
  function payloadFor(container) {
    var named = container.getAttribute("data-datatrail-lineage");
    var data = (named && document.getElementById(named)) || document.getElementById("datatrail-graph") ||
      document.getElementById("lineage-data");
    if (!data) return null;
    var payload = JSON.parse(data.textContent || "{}");
    return payload && payload.views ? payload : null;
  }

  function start() {
    var targets = document.querySelectorAll("[data-datatrail-lineage], #datatrail-lineage, #lineage-graph");
    var viewers = [];
    Array.prototype.forEach.call(targets, function (c) {
      var payload = payloadFor(c);
      if (payload) viewers.push(new Viewer(c, payload));
    });
    window.datatrailLineage = viewers;
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
