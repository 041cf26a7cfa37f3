// The lineage graph: cytoscape laid out by dagre, upstream at the top, data flowing down. Each node shows its
// effective label; declassifications are marked; a denial's path (or a label's provenance path) is highlighted.
import cytoscape from "cytoscape";
import dagre from "cytoscape-dagre";

cytoscape.use(dagre);

const READABLE_ZOOM = 0.65;
const LEVEL_COLORS = { public: "#dcfce7", internal: "#dbeafe", confidential: "#fed7aa", restricted: "#fecaca" };

function levelOf(node) {
  for (const c of node.labels) if (c.values.length) return c.level;
  return null;
}

function nodeLabel(node) {
  const lines = [node.id];
  if (node.summary) lines.push(node.summary);
  for (const d of node.declassified) lines.push(`✂ ${d.classification}:${d.value} by ${d.actor || "?"}`);
  return lines.join("\n");
}

export class LineageGraph {
  constructor(container, onSelect) {
    this.container = container;
    this.onSelect = onSelect;
    this.cy = null;
    this.data = null;
  }

  show(data) {
    this.data = data;
    const elements = [];
    for (const n of data.nodes) {
      const label = nodeLabel(n);
      const lines = label.split("\n");
      elements.push({ group: "nodes", data: { id: n.id, label, role: n.role,
        w: Math.max(...lines.map((l) => l.length)) * 6.7 + 18, h: lines.length * 14 + 12,
        fill: LEVEL_COLORS[levelOf(n)] || "#f3f4f6" },
        classes: [n.role, n.declassified.length ? "declassified" : ""].join(" ") });
    }
    // an edge points the way data flows: from the upstream object (target) to the one derived from it (source)
    for (const e of data.edges) {
      elements.push({ group: "edges", data: { id: edgeId(e), source: e.target, target: e.source,
        label: e.relation } });
    }
    if (this.cy) this.cy.destroy();
    this.cy = cytoscape({
      container: this.container, elements, minZoom: 0.05, maxZoom: 1.6,
      style: [
        { selector: "node", style: { shape: "round-rectangle", "background-color": "data(fill)",
          "border-width": 1, "border-color": "#6b7280", label: "data(label)", "text-wrap": "wrap",
          "text-valign": "center", "text-halign": "center", "font-size": 11, "font-family": "ui-monospace, monospace",
          width: "data(w)", height: "data(h)" } },
        { selector: "node.self", style: { "border-width": 3, "border-color": "#111827" } },
        { selector: "node.declassified", style: { "border-style": "dashed", "border-color": "#7c3aed",
          "border-width": 2 } },
        { selector: "node.self.declassified", style: { "border-width": 3 } },
        { selector: "edge", style: { width: 1.5, "line-color": "#9ca3af", "target-arrow-color": "#9ca3af",
          "target-arrow-shape": "triangle", "curve-style": "bezier", label: "data(label)", "font-size": 9,
          "text-background-color": "#ffffff", "text-background-opacity": 0.9,
          color: "#4b5563" } },
        { selector: "edge.highlight", style: { "line-color": "#dc2626", "target-arrow-color": "#dc2626", width: 4,
          color: "#991b1b", "z-index": 10 } },
        { selector: "node.highlight", style: { "border-color": "#dc2626", "border-width": 4, "border-style": "solid" } },
        { selector: "node.denier", style: { "background-color": "#dc2626", color: "#ffffff" } },
        { selector: "edge.provenance", style: { "line-color": "#2563eb", "target-arrow-color": "#2563eb", width: 4 } },
        { selector: "node.provenance", style: { "border-color": "#2563eb", "border-width": 4 } },
        { selector: ":selected", style: { "overlay-color": "#2563eb", "overlay-opacity": 0.15 } },
      ],
      // Small graphs read top-down; a large one reads left to right, where a wide rank (many datasets derived
      // from one source) becomes a column to scroll rather than a row too wide to read.
      layout: { name: "dagre", rankDir: data.nodes.length > 25 ? "LR" : "TB", nodeSep: 14, rankSep: 60,
        edgeSep: 8, fit: true, padding: 16 },
    });
    this.fitReadable();
    this.container.dataset.nodes = String(data.nodes.length);
    this.container.dataset.highlight = "";
    this.container.dataset.provenance = "";
    this.cy.on("tap", "node", (event) => this.onSelect(data.nodes.find((n) => n.id === event.target.id())));
  }

  // Fit the graph to its box, but never to a zoom too small to read: then centre on the object instead (pan and
  // zoom to see the rest; "Fit" shows everything).
  fitReadable() {
    if (!this.cy) return;
    this.cy.resize();
    this.cy.fit(undefined, 16);
    if (this.cy.zoom() < READABLE_ZOOM) {
      this.cy.zoom(READABLE_ZOOM);
      this.cy.center(this.cy.getElementById(this.data.object));
    }
  }

  // Highlight the steps of a path (``{source, relation, target}``); ``kind`` is "highlight" (a denial) or
  // "provenance" (where a label came from). The last object of a denial's path is the one whose label denies.
  mark(steps, kind, last) {
    if (!this.cy) return;
    this.cy.elements().removeClass(kind);
    this.cy.nodes().removeClass(kind === "highlight" ? "denier" : "");
    for (const s of steps) {
      this.cy.getElementById(edgeId(s)).addClass(kind);
      this.cy.getElementById(s.source).addClass(kind);
      this.cy.getElementById(s.target).addClass(kind);
    }
    if (last) this.cy.getElementById(last).addClass(kind === "highlight" ? "highlight denier" : kind);
    // what is highlighted, for tests and assistive tools: the ids of the marked objects and relationships
    this.container.dataset[kind] = this.cy.elements(`.${kind}`).map((e) => e.id()).sort().join(" ");
  }
}

export function edgeId(step) { return `${step.source}|${step.relation}|${step.target}`; }
