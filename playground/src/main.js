// The Headwater playground page: a scratch workspace (schema, relationships, assertions), a check panel with its
// explanation tree, and a lineage graph. Every request goes to the page's own origin (the API in
// engine/service/http/playground.py); nothing is loaded from the network.
import { EditorView, basicSetup } from "codemirror";
import { EditorState, Compartment } from "@codemirror/state";
import { linter, lintGutter, setDiagnostics } from "@codemirror/lint";
import { yaml } from "@codemirror/lang-yaml";
import { zed, zedHighlight } from "./zed.js";
import { call, setToken } from "./api.js";
import { LineageGraph } from "./graph.js";

const $ = (id) => document.getElementById(id);
const COLUMNS = ["resource", "relation", "subject", "caveat", "context", "expiration", "actor", "reason"];
const state = { base: null, readOnly: false, rows: [], loading: false };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function status(text, bad = false) {
  $("status").textContent = text;
  $("status").className = bad ? "bad" : "";
}

// ------------------------------------------------------------------ workspace
async function newWorkspace() {
  const answer = await call("POST", "/api/playground/workspaces");
  sessionStorage.setItem("headwater-workspace", answer.data.id);
  return `/api/playground/workspaces/${answer.data.id}`;
}

async function openWorkspace() {
  const id = sessionStorage.getItem("headwater-workspace");
  if (id) {
    const answer = await call("GET", `/api/playground/workspaces/${id}`);
    if (answer.ok) { state.base = `/api/playground/workspaces/${id}`; return answer.data; }
  }
  state.base = await newWorkspace();
  return (await call("GET", state.base)).data;
}

function load(data) {
  state.loading = true;
  setEditor(schemaEditor, data.schema);
  setEditor(assertionsEditor, data.assertions);
  state.rows = data.relationships.map((r) => ({ ...r }));
  renderRows([]);
  state.loading = false;
  showDiagnostics(data.diagnostics || []);
  $("assertion-results").replaceChildren();
  $("assertions-summary").textContent = "";
  assertionsEditor.dispatch(setDiagnostics(assertionsEditor.state, []));
  const limits = data.limits;
  $("limits").textContent = `limits: ${limits.max_relationships} relationships, ${limits.max_schema_bytes / 1024} KiB ` +
    `schema; idle workspaces expire after ${Math.round(limits.idle_seconds / 60)} min`;
}

function setEditor(view, text) {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text || "" } });
}

// ------------------------------------------------------------------ schema editor
function toRange(doc, d) {
  const lineNo = Math.min(Math.max(d.line || 1, 1), doc.lines);
  const line = doc.line(lineNo);
  const from = Math.min(line.from + Math.max((d.column || 1) - 1, 0), line.to);
  let to = from;
  if (d.end_line && d.end_line <= doc.lines) {
    const end = doc.line(d.end_line);
    to = Math.min(end.from + Math.max(d.end_column - 1, 0), end.to);
  }
  if (to <= from) to = Math.min(from + 1, doc.length);
  return { from, to };
}

function showDiagnostics(list) {
  const box = $("diagnostics");
  box.replaceChildren(...list.map((d) => el("li", { class: d.severity, "data-line": d.line, "data-column": d.column },
    `${d.line}:${d.column} ${d.severity}: ${d.message}`)));
  $("schema-state").textContent = list.some((d) => d.severity === "error") ? "✘ errors" : "✔ compiles";
  $("schema-state").className = list.some((d) => d.severity === "error") ? "bad" : "good";
}

const schemaLint = linter(async (view) => {
  if (state.readOnly || state.loading) return [];
  const text = view.state.doc.toString();
  const answer = await call("PUT", `${state.base}/schema`, { schema: text });
  if (view.state.doc.toString() !== text) return [];
  if (!answer.ok) { status(answer.data.error || "schema not saved", true); return []; }
  showDiagnostics(answer.data.diagnostics);
  return answer.data.diagnostics.map((d) => ({ ...toRange(view.state.doc, d), severity: d.severity,
    message: `${d.line}:${d.column}: ${d.message}` }));
}, { delay: 350 });

const readOnly = new Compartment();
const schemaEditor = new EditorView({
  parent: $("schema-editor"),
  state: EditorState.create({ doc: "", extensions: [basicSetup, zed, zedHighlight, lintGutter(), schemaLint,
    readOnly.of(EditorState.readOnly.of(false))] }),
});
const assertionsReadOnly = new Compartment();
const assertionsEditor = new EditorView({
  parent: $("assertions-editor"),
  state: EditorState.create({ doc: "", extensions: [basicSetup, yaml(), lintGutter(),
    assertionsReadOnly.of(EditorState.readOnly.of(false))] }),
});

// ------------------------------------------------------------------ relationships table
let saveTimer = null;
function renderRows(errors) {
  const body = $("rows");
  body.replaceChildren();
  state.rows.forEach((row, i) => {
    const error = errors[i];
    const tr = el("tr", { class: error ? "bad" : "", "data-row": i });
    for (const column of COLUMNS) {
      const input = el("input", { value: row[column] || "", "data-column": column, placeholder: column,
        "aria-label": `${column} of row ${i + 1}` });
      input.readOnly = state.readOnly;
      input.addEventListener("input", () => { row[column] = input.value; scheduleSave(); });
      tr.append(el("td", {}, input));
    }
    const remove = el("button", { class: "small", title: "delete this row", onclick: () => {
      state.rows.splice(i, 1); renderRows([]); scheduleSave(); } }, "✕");
    remove.disabled = state.readOnly;
    tr.append(el("td", {}, remove));
    body.append(tr);
    if (error) body.append(el("tr", { class: "row-error", "data-error-row": i },
      el("td", { colspan: COLUMNS.length + 1 }, `row ${i + 1}: ${error}`)));
  });
  $("row-count").textContent = `${state.rows.length} relationships`;
}

function scheduleSave() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(saveRows, 400);
}

async function saveRows() {
  if (state.readOnly) return;
  const rows = state.rows.filter((r) => COLUMNS.some((c) => (r[c] || "").trim()))
    .map((r) => Object.fromEntries(COLUMNS.map((c) => [c, r[c] || ""])));
  const answer = await call("PUT", `${state.base}/relationships`, { relationships: rows });
  if (answer.status === 422) {
    renderRows(answer.data.errors);
    status(`relationships not saved: ${answer.data.errors.filter(Boolean).length} bad row(s)`, true);
  } else if (!answer.ok) {
    status(answer.data.error, true);
  } else {
    renderRows([]);
    status("relationships saved");
  }
  $("rows-state").textContent = answer.ok ? "✔ saved" : "✘ not saved";
  $("rows-state").className = answer.ok ? "good" : "bad";
}

// ------------------------------------------------------------------ assertions
async function runAssertions() {
  const text = assertionsEditor.state.doc.toString();
  const answer = await call("POST", `${state.base}/assertions`, state.readOnly ? {} : { assertions: text });
  const box = $("assertion-results");
  if (!answer.ok) { box.replaceChildren(el("li", { class: "fail" }, answer.data.error)); return; }
  const r = answer.data;
  const items = [];
  const marks = [];
  if (r.load_error) items.push(el("li", { class: "fail" }, `load error (file line ${r.load_error.line}): ${r.load_error.message}`));
  for (const a of [...r.assertions, ...r.validations]) {
    const text = a.assertion || a.resource;
    const passed = a.passed;
    const detail = passed ? "passed" : (a.error || a.message || `expected ${a.expected}, got ${a.actual}`);
    items.push(el("li", { class: passed ? "pass" : "fail", "data-line": a.line },
      `${passed ? "✔" : "✘"} line ${a.line}: ${a.kind ? a.kind + " " : ""}${text} — ${detail}`));
    const doc = assertionsEditor.state.doc;
    if (a.line >= 1 && a.line <= doc.lines) {
      const line = doc.line(a.line);
      marks.push({ from: line.from, to: Math.max(line.to, line.from + 1), severity: passed ? "info" : "error",
        message: passed ? "passed" : detail });
    }
  }
  const failed = [...r.assertions, ...r.validations].filter((a) => !a.passed).length;
  $("assertions-summary").textContent = r.ok ? `✔ all ${r.assertions.length + r.validations.length} passed`
    : `✘ ${failed} failed${r.load_error ? " (the workspace does not load)" : ""}`;
  $("assertions-summary").className = r.ok ? "good" : "bad";
  box.replaceChildren(...items);
  assertionsEditor.dispatch(setDiagnostics(assertionsEditor.state, marks));
}

// ------------------------------------------------------------------ check
function treeNode(node) {
  const mark = { true: "✔", false: "✘", unknown: "?" }[node.value];
  const label = `${mark} ${node.label}${node.note ? `  (${node.note})` : ""}`;
  if (!node.children.length) return el("li", { class: node.value }, label);
  const details = el("details", { open: node.value !== "true" || node.kind === "check" ? "" : null },
    el("summary", { class: node.value }, label), el("ul", {}, ...node.children.map(treeNode)));
  return el("li", {}, details);
}

async function runCheck() {
  const body = { resource: $("check-resource").value.trim(), permission: $("check-permission").value.trim(),
    subject: $("check-subject").value.trim(), context: $("check-context").value.trim() || null };
  const path = state.readOnly ? "/api/playground/server/check" : `${state.base}/check`;
  const answer = await call("POST", path, body);
  const box = $("check-result");
  if (!answer.ok) { box.replaceChildren(el("p", { class: "bad" }, answer.data.error)); return; }
  const r = answer.data;
  const word = { HAS_PERMISSION: "ALLOWED", NO_PERMISSION: "DENIED", CONDITIONAL_PERMISSION: "CONDITIONAL" }[r.permissionship];
  box.replaceChildren(
    el("p", { id: "decision", class: `decision ${word.toLowerCase()}` }, word,
      r.missing_context.length ? ` (needs context: ${r.missing_context.join(", ")})` : ""),
    el("pre", { id: "summary" }, r.summary.join("\n")),
    el("details", { id: "tree" }, el("summary", {}, "explanation tree"), el("ul", { class: "tree" }, treeNode(r.tree))));
  if (r.denial_paths.length) {
    $("lineage-object").value = body.resource;
    await showLineage(body);
  }
}

// ------------------------------------------------------------------ lineage
const graph = new LineageGraph($("graph"), selectNode);

async function showLineage(check) {
  const object = $("lineage-object").value.trim();
  if (!object) return;
  const params = new URLSearchParams({ object });
  if (check) { params.set("permission", check.permission); params.set("subject", check.subject);
    if (check.context) params.set("context", check.context); }
  const base = state.readOnly ? "/api/playground/server" : state.base;
  const answer = await call("GET", `${base}/lineage?${params}`);
  if (!answer.ok) { $("lineage-info").replaceChildren(el("p", { class: "bad" }, answer.data.error)); return; }
  const data = answer.data;
  const info = [el("p", {}, `${data.nodes.length} objects, ${data.edges.length} lineage relationships` +
    (data.truncated ? " (truncated)" : ""))];
  const denial = data.check && data.check.denial_paths[0];
  if (denial) {
    info.push(el("p", { id: "denial-path", class: "bad" },
      `denied by ${denial.label || "upstream " + denial.object}: ${denial.text}`));
  }
  $("lineage-info").replaceChildren(...info);  // first, so that the graph is laid out in its final box
  graph.show(data);
  if (denial) graph.mark(denial.steps, "highlight", denial.object);
  selectNode(data.nodes[0]);
}

function selectNode(node) {
  if (!node) return;
  const parts = [el("h3", {}, node.id), el("p", {}, `${node.role}${node.depth ? `, ${node.depth} step(s) away` : ""}: ${node.path}`)];
  if (!node.labels.length) parts.push(el("p", {}, "no labels"));
  for (const c of node.labels) {
    parts.push(el("p", {}, el("b", {}, `${c.classification}: `), [c.level, ...c.categories].filter(Boolean).join(" + ") || "—"));
    const list = el("ul");
    for (const v of c.values) {
      const li = el("li", {}, `${v.value}${v.own ? " (own label)" : ""}`);
      for (const p of v.paths) {
        li.append(el("br"), el("a", { href: "#", class: "path", onclick: (e) => { e.preventDefault();
          graph.mark(p.steps, "provenance", p.steps.length ? p.steps[p.steps.length - 1].target : null); } },
        `from ${p.text}`));
      }
      list.append(li);
    }
    parts.push(list);
    for (const d of c.declassified) {
      parts.push(el("p", { class: "declassification" },
        `✂ ${c.classification}:${d.value} declassified by ${d.actor || "(unknown)"}: ${d.reason || "(no reason recorded)"}`));
    }
  }
  $("node-details").replaceChildren(...parts);
}

// ------------------------------------------------------------------ import, export, example, server view
async function importText(text) {
  const answer = await call("PUT", `${state.base}/import`, { yaml: text });
  if (!answer.ok) { status(answer.data.error, true); return; }
  load(answer.data);
  status("workspace imported");
}

async function loadExample() {
  const answer = await call("GET", "/api/playground/examples/ai-lineage");
  await importText(answer.data.yaml);
  $("check-resource").value = "output:o1"; $("check-permission").value = "view"; $("check-subject").value = "user:bob";
  $("lineage-object").value = "output:o1";
  status("loaded the AI-lineage example");
}

async function exportFile() {
  const base = state.readOnly ? "/api/playground/server" : state.base;
  const answer = await call("GET", `${base}/export`);
  const url = URL.createObjectURL(new Blob([answer.data], { type: "application/yaml" }));
  const a = el("a", { href: url, download: state.readOnly ? "server.yaml" : "workspace.yaml" });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function setReadOnly(on) {
  state.readOnly = on;
  schemaEditor.dispatch({ effects: readOnly.reconfigure(EditorState.readOnly.of(on)) });
  assertionsEditor.dispatch({ effects: assertionsReadOnly.reconfigure(EditorState.readOnly.of(on)) });
  for (const id of ["load-example", "import", "add-row"]) $(id).disabled = on;
  $("mode").textContent = on ? "server data (read-only)" : "scratch workspace";
  $("server-view").textContent = on ? "Back to my workspace" : "Server data…";
}

async function toggleServerView() {
  if (state.readOnly) {
    setToken(null); setReadOnly(false);
    load((await call("GET", state.base)).data);
    return;
  }
  const token = window.prompt("Bearer token with the check scope (kept in this tab's memory only):");
  if (!token) return;
  setToken(token);
  const answer = await call("GET", "/api/playground/server");
  if (!answer.ok) { setToken(null); status(typeof answer.data === "string" ? answer.data : answer.data.error, true); return; }
  setReadOnly(true);
  load(answer.data);
  status("viewing the server's data, read-only");
}

function showTab(group, name) {
  for (const b of document.querySelectorAll(`[data-tab-group="${group}"]`)) b.classList.toggle("active", b.dataset.tab === name);
  for (const p of document.querySelectorAll(`[data-panel-group="${group}"]`)) p.hidden = p.dataset.panel !== name;
}

for (const b of document.querySelectorAll("[data-tab]")) b.addEventListener("click", () => showTab(b.dataset.tabGroup, b.dataset.tab));
$("load-example").addEventListener("click", loadExample);
$("export").addEventListener("click", exportFile);
$("import").addEventListener("click", () => $("import-file").click());
$("import-file").addEventListener("change", async (e) => { const f = e.target.files[0]; if (f) await importText(await f.text()); e.target.value = ""; });
$("server-view").addEventListener("click", toggleServerView);
$("add-row").addEventListener("click", () => { state.rows.push({}); renderRows([]);
  $("rows").querySelector(`tr[data-row="${state.rows.length - 1}"] input`).focus(); });
$("run-assertions").addEventListener("click", runAssertions);
$("check-form").addEventListener("submit", (e) => { e.preventDefault(); runCheck(); });
$("lineage-form").addEventListener("submit", (e) => { e.preventDefault(); showLineage(null); });
$("fit").addEventListener("click", () => graph.cy && graph.cy.fit(undefined, 16));
$("larger").addEventListener("click", () => {
  const pane = $("right-pane");
  pane.classList.toggle("graph-only");
  $("larger").textContent = pane.classList.contains("graph-only") ? "Show check" : "Larger graph";
  graph.fitReadable();
});

openWorkspace().then((data) => { load(data); document.body.dataset.ready = "true"; });
