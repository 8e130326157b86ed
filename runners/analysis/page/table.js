// The page's first script, run before plotly.js is read: the comparison table (filters, sorting) and a row's runs
// in a dialog, from the JSON in #data. The plots come after (plots.js). Nothing is fetched.
"use strict";
window.page = (function () {
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const EXPS = DATA.experiments;
  const $ = (id) => document.getElementById(id);

  // ---- the comparison table: filters, empty columns hidden, sorting --------------------------------------------
  const table = $("comparison");
  const tbody = table.tBodies[0];
  const rows = Array.from(tbody.rows);
  const heads = Array.from(table.tHead.rows[0].cells);

  function filter() {
    const exp = $("f-exp").value, budget = $("f-budget").value, status = $("f-status").value;
    const method = $("f-method").value.trim().toLowerCase();
    let shown = 0;
    for (const tr of rows) {
      const statuses = tr.dataset.status.split(" ");
      const keep = (!exp || tr.dataset.exp === exp) && (!budget || tr.dataset.budget === budget)
        && (!method || tr.dataset.label.toLowerCase().includes(method))
        && (!status || (status === "ok" ? tr.dataset.status === "ok" : statuses.includes(status)));
      tr.hidden = !keep;
      shown += keep;
    }
    heads.forEach((th, col) => {  // a column no shown row has a value in (another experiment's) is hidden
      const empty = shown > 0 && rows.every((tr) => tr.hidden || tr.cells[col].textContent === "–");
      th.classList.toggle("hidden", empty);
      rows.forEach((tr) => tr.cells[col].classList.toggle("hidden", empty));
    });
    $("count").textContent = `${shown} of ${rows.length} rows`;
  }

  function compare(a, b) {  // the missing last, numbers as numbers, the rest as text
    if (a === "" || b === "") return (a === "") - (b === "");
    const x = Number(a), y = Number(b);
    return Number.isNaN(x) || Number.isNaN(y) ? a.localeCompare(b) : x - y;
  }

  function sortBy(th) {
    const col = heads.indexOf(th);
    const dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    heads.forEach((h) => h.setAttribute("aria-sort", "none"));
    th.setAttribute("aria-sort", dir);
    const value = (tr) => tr.cells[col].dataset.v;
    rows.sort((p, q) => {
      const a = value(p), b = value(q);
      if (a === "" || b === "") return compare(a, b);
      return dir === "ascending" ? compare(a, b) : compare(b, a);
    });
    rows.forEach((tr) => tbody.appendChild(tr));
  }

  heads.forEach((th) => th.querySelector("button").addEventListener("click", () => sortBy(th)));
  ["f-exp", "f-budget", "f-status"].forEach((id) => $(id).addEventListener("change", filter));
  $("f-method").addEventListener("input", filter);
  tbody.addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr");
    if (tr) openRow(+tr.dataset.exp, tr.dataset.label, false, tr);
  });
  tbody.addEventListener("keydown", (ev) => {
    const tr = ev.target.closest("tr");
    if (tr && ev.key === "Enter") { ev.preventDefault(); openRow(+tr.dataset.exp, tr.dataset.label, false, tr); }
  });

  // ---- a row's runs --------------------------------------------------------------------------------------------
  const dialog = $("details");
  let returnTo = null;
  dialog.addEventListener("close", () => { if (returnTo) returnTo.focus(); });

  function cell(value) {
    if (value === null || value === undefined || value === "") return document.createTextNode("–");
    if (typeof value !== "object") return document.createTextNode(String(value));
    if (Array.isArray(value) && value.every((v) => typeof v !== "object" || v === null))
      return document.createTextNode(value.join(", ") || "–");
    return keyValues(value);
  }

  function keyValues(obj) {
    const t = document.createElement("table");
    for (const [key, value] of Object.entries(obj)) {
      const tr = t.insertRow(), th = document.createElement("th"), td = tr.insertCell();
      th.scope = "row";
      th.textContent = key;
      tr.prepend(th);
      td.append(cell(value));
    }
    return t;
  }

  function section(parent, title, content) {
    const part = document.createElement("div"), h = document.createElement("h4");
    h.textContent = title;
    part.append(h, content);
    parent.append(part);
  }

  function runDetails(id, open) {
    const run = DATA.runs[id], shared = (key) => DATA.shared[key][run[key]];
    const box = document.createElement("details"), summary = document.createElement("summary");
    const grid = document.createElement("div");
    box.open = open;
    box.dataset.run = id;
    summary.textContent = `seed ${run.config.seed} · ${run.status}` +
      (run.config.search ? ` · search trial at lr ${run.config.lr}` : "") + ` · ${run.run_id}`;
    grid.className = "grid";
    box.append(summary, grid);
    section(grid, "Status", keyValues({ status: run.status, error: run.error, written: run.timestamp,
                                        "checkpoints evaluated": run.checkpoints }));
    if (run.traceback) {
      const pre = document.createElement("pre");
      pre.textContent = run.traceback;
      section(grid, "Traceback", pre);
    }
    section(grid, "Command", cell(run.command));
    section(grid, "Config", keyValues(run.config));
    section(grid, "Method", keyValues(shared("method")));
    section(grid, "Model", keyValues(shared("model")));
    section(grid, "Data", keyValues(shared("data")));
    section(grid, "Versions", keyValues(Object.assign({}, shared("versions"), { git: shared("git") })));
    section(grid, "Device", cell(shared("device")));
    for (const key of ["metrics", "measurements", "serving", "cost"])
      if (run[key]) section(grid, key[0].toUpperCase() + key.slice(1), keyValues(run[key]));
    return box;
  }

  function openRow(expIndex, label, trials, from) {
    const exp = EXPS[expIndex], row = exp.rows.find((r) => r.label === label);
    if (!row) return;
    returnTo = from || document.activeElement;
    const ids = trials ? row.trials : row.runs, body = $("details-body");
    $("details-title").textContent = `${label}${row.kind === "baseline" ? " (baseline)" : ""}: ` +
      `${trials ? "search trials" : "runs"} of experiment ${exp.id} (${exp.budget})`;
    body.replaceChildren();
    const p = document.createElement("p");
    p.textContent = `${ids.length} ${trials ? "trial" : "run"}(s); the first is open, the others open with Enter ` +
      "or a click.";
    body.append(p);
    if (!trials && row.trials.length) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = `Show its ${row.trials.length} learning-rate search trials`;
      b.addEventListener("click", () => openRow(expIndex, label, true, returnTo));
      p.append(" ", b);
    }
    ids.forEach((id, i) => body.append(runDetails(id, i === 0)));
    if (!dialog.open) dialog.showModal();
    body.querySelector("summary").focus();
  }


  $("f-exp").value = "0";  // the most recent experiment's rows, until another is chosen
  filter();
  performance.mark("page-table");
  return { DATA: DATA, filter: filter, openRow: openRow };
})();
