// The page's plots, drawn with plotly.js (embedded just above, in this same file) from the JSON in #data: the chosen
// experiment's trade-off, curves and learning-rate search, and each family across budgets. Nothing is fetched.
"use strict";
performance.mark("page-script");  // plotly.js has been read and run: what follows is this page's own drawing
(function () {
  const DATA = window.page.DATA, EXPS = DATA.experiments, openRow = window.page.openRow;
  const $ = (id) => document.getElementById(id);
  // No button that sends a chart to plotly's cloud (on by default in plotly.js 3), no math typesetting to load
  const CONFIG = { displaylogo: false, responsive: true, showSendToCloud: false, plotlyServerURL: "",
                   typesetMath: false };
  // Each method keeps one colour (Okabe-Ito), marker and dash everywhere: 7 colours x 8 markers x 5 dashes
  const SYMBOLS = ["circle", "square", "diamond", "triangle-up", "triangle-down", "cross", "x", "star"];
  const DASHES = ["solid", "dash", "dot", "dashdot", "longdash"];
  const STYLE = {};
  DATA.labels.forEach((label, i) => {
    const n = DATA.palette.length;
    STYLE[label] = { color: DATA.palette[i % n], symbol: SYMBOLS[i % SYMBOLS.length],
                     dash: DASHES[Math.floor(i / n) % DASHES.length] };
  });
  let current = 0;

  function rgba(hex, alpha) {
    const v = parseInt(hex.slice(1), 16);
    return `rgba(${v >> 16},${(v >> 8) & 255},${v & 255},${alpha})`;
  }

  function layout(xTitle, yTitle, more) {
    return Object.assign({
      margin: { l: 64, r: 16, t: 32, b: 52 }, hovermode: "closest", font: { family: "system-ui, sans-serif", size: 12 },
      xaxis: { title: { text: xTitle }, zeroline: false, gridcolor: "#e6e6e6" },
      yaxis: { title: { text: yTitle }, zeroline: false, gridcolor: "#e6e6e6" },
      legend: { font: { size: 11 } }, plot_bgcolor: "#fff", paper_bgcolor: "#fff",
    }, more || {});
  }

  function band(x, lo, hi, color, group) {  // a filled area between lo and hi: the seeds' range, or an interval
    return { x: x.concat(x.slice().reverse()), y: hi.concat(lo.slice().reverse()), fill: "toself", mode: "lines",
             fillcolor: rgba(color, 0.16), line: { width: 0 }, hoverinfo: "skip", showlegend: false,
             legendgroup: group, meta: group };
  }

  // ---- the plots of the chosen experiment ------------------------------------------------------------------------
  function metricOptions() {
    const exp = EXPS[current];
    const names = Object.keys(exp.metrics).filter((m) => exp.rows.some((r) => r.values[m]));
    for (const [id, preferred] of [["x-metric", "peak mem (MiB)"], ["y-metric", "test acc"]]) {
      const select = $(id), was = select.value;
      select.replaceChildren(...names.map((m) => new Option(`${m} ${exp.metrics[m].better}`, m)));
      select.value = names.includes(was) ? was : names.includes(preferred) ? preferred : names[0];
    }
  }

  function errorBar(v, color) {  // [center, lo, hi, text]: the table's interval, asymmetric around the center
    if (v[1] === null) return { visible: false };
    return { type: "data", symmetric: false, array: [Math.max(v[2] - v[0], 0)], arrayminus: [Math.max(v[0] - v[1], 0)],
             color: color, thickness: 1.5, width: 4 };
  }

  function frontOf(points, xUp, yUp) {  // the points no other point is at least as good as on both axes, and better
    const atLeast = (q, p) => (xUp ? q.x >= p.x : q.x <= p.x) && (yUp ? q.y >= p.y : q.y <= p.y);
    return points.filter((p) => !points.some((q) => q !== p && atLeast(q, p) && (q.x !== p.x || q.y !== p.y)))
      .sort((a, b) => a.x - b.x);
  }

  function axisType(name, values) {  // positive quantities spanning more than a hundredfold: a log axis
    const positive = EXPS[current].metrics[name].scale === "log";
    return positive && Math.max(...values) > 100 * Math.min(...values) ? "log" : "linear";
  }

  function clicks(plot, trials) {  // once per plot, after plotly.js has drawn it (and given it `on`)
    if (plot.dataset.clicks) return;
    plot.dataset.clicks = "on";
    plot.on("plotly_click", (ev) => { const meta = ev.points[0].data.meta; if (meta) openRow(current, meta, trials); });
  }

  function drawPareto() {
    const exp = EXPS[current], xName = $("x-metric").value, yName = $("y-metric").value;
    const traces = [], points = [], missing = [];
    for (const row of exp.rows) {
      const x = row.values[xName], y = row.values[yName], s = STYLE[row.label];
      const name = row.label + (row.kind === "baseline" ? " (baseline)" : "");
      if (!x || !y) { missing.push(name + (row.bad.length ? ` (${row.bad.join(", ")})` : "")); continue; }
      const seeds = `seeds ${row.seeds.join(", ")}` + (row.bad.length ? `; ${row.bad.join(", ")}` : "");
      traces.push({
        type: "scatter", mode: "markers", name: name, x: [x[0]], y: [y[0]], meta: row.label,
        text: [`<b>${name}</b>${row.top ? " (top group)" : ""}<br>${seeds}<br>${xName}: ${x[3]}<br>${yName}: ${y[3]}`],
        hovertemplate: "%{text}<extra></extra>", error_x: errorBar(x, s.color), error_y: errorBar(y, s.color),
        marker: { color: s.color, symbol: s.symbol, size: 11, line: { color: "#000", width: 1 } },
      });
      points.push({ x: x[0], y: y[0] });
    }
    const up = (m) => exp.metrics[m].better === "↑";
    const front = frontOf(points, up(xName), up(yName));
    traces.push({ type: "scatter", mode: "lines", name: "Pareto front", x: front.map((p) => p.x),
                  y: front.map((p) => p.y), line: { color: DATA.front, dash: "dash", width: 1.5 }, hoverinfo: "skip" });
    const plot = $("pareto");
    plot.dataset.points = points.length;
    plot.dataset.front = front.length;
    $("pareto-note").textContent = missing.length ? `Not drawn (no value for both): ${missing.join("; ")}.` : "";
    const look = layout(`${xName} ${exp.metrics[xName].better}`, `${yName} ${exp.metrics[yName].better}`);
    look.xaxis.type = points.length ? axisType(xName, points.map((p) => p.x)) : "linear";
    look.yaxis.type = points.length ? axisType(yName, points.map((p) => p.y)) : "linear";
    return Plotly.react(plot, traces, look, CONFIG).then(() => clicks(plot, false));
  }

  function series(label, name, x, y, more) {  // a method's line, in its colour, marker and dash
    const s = STYLE[label];
    return Object.assign({ type: "scatter", mode: "lines+markers", name: name, x: x, y: y, meta: label,
                           legendgroup: label, line: { color: s.color, dash: s.dash },
                           marker: { symbol: s.symbol, size: 7, color: s.color } }, more);
  }

  function marks(label, x, y, symbol, size, hover) {  // markers of a method's without a legend entry of their own
    return { type: "scatter", mode: "markers", x: x, y: y, meta: label, legendgroup: label, showlegend: false,
             marker: { symbol: symbol, size: size, color: STYLE[label].color, line: { color: "#000", width: 1 } },
             hovertemplate: `${label}<br>${hover}<extra></extra>` };
  }

  function drawCurves() {
    const exp = EXPS[current], traces = [], plot = $("curves");
    for (const c of exp.curves) {
      if (c.seeds > 1) traces.push(band(c.x, c.lo, c.hi, STYLE[c.label].color, c.label));
      traces.push(series(c.label, c.label, c.x, c.y, {
        hovertemplate: `${c.label}<br>%{x:.4~s} ${exp.unit}: validation accuracy %{y:.3f}<extra></extra>` }));
    }
    const drawn = new Set(exp.curves.map((c) => c.label));
    const left = exp.rows.filter((r) => !drawn.has(r.label)).map((r) => r.label +
      (r.kind === "baseline" ? " (baseline: trained apart, no curve)" : ` (${r.bad.join(", ")})`));
    $("curves-note").textContent = left.length ? `Not drawn: ${left.join("; ")}.` : "";
    return Plotly.react(plot, traces, layout(`budget spent (${exp.unit})`, "validation accuracy"), CONFIG)
      .then(() => clicks(plot, false));
  }

  function drawSearch() {
    const exp = EXPS[current], plot = $("search");
    plot.hidden = !exp.tuned;
    if (!exp.tuned) {
      $("search-note").textContent = "This experiment's learning rates were not tuned: each method trained at its " +
        "default rate (its runs' details say which).";
      return Promise.resolve();
    }
    $("search-note").textContent = `Validation ${exp.select_on} at the end of each trial's budget against the peak ` +
      "learning rate (log scale), the mean over search seeds with their range as a band; ★ the chosen rate, × a " +
      "rate whose trial did not end ok (drawn at the foot of its line); the shaded strip is one standard error of " +
      "validation noise below the best score: rates in it tie, and the one nearest the middle of the range is " +
      "chosen. Click a point for the method's trials.";
    const traces = [], shapes = [];
    for (const s of exp.search) {
      const colour = STYLE[s.label].color;
      if (s.lr.length > 1) traces.push(band(s.lr, s.lo, s.hi, colour, s.label));
      traces.push(series(s.label, s.label + (s.edge ? ` (best at the ${s.edge} end)` : ""), s.lr, s.mean,
                         { hovertemplate: `${s.label}<br>lr %{x:.3g}: %{y:.3f}<extra></extra>` }));
      if (s.failed.length) {
        traces.push(marks(s.label, s.failed, s.failed.map(() => Math.min(...s.mean)), "x", 10,
                          "lr %{x:.3g}: did not end ok"));
      }
      if (s.chosen !== null) {
        traces.push(marks(s.label, [s.chosen], [s.score], "star", 17, "chosen lr %{x:.3g}: %{y:.3f}"));
      }
      if (s.tie) {
        shapes.push({ type: "rect", xref: "paper", x0: 0, x1: 1, y0: s.tie[0], y1: s.tie[1], line: { width: 0 },
                      fillcolor: rgba(colour, 0.08), layer: "below" });
      }
    }
    const look = layout("peak learning rate", `validation ${exp.select_on}`, { shapes: shapes });
    look.xaxis.type = "log";
    return Plotly.react(plot, traces, look, CONFIG).then(() => clicks(plot, true));
  }

  function drawFamily(f, i) {
    const box = document.createElement("div"), text = document.createElement("p"), plot = document.createElement("div");
    const title = document.createElement("h3");
    box.className = "family";
    title.textContent = `${f.budgets.join(", ")} (experiments ${f.experiments.join(", ")})`;
    text.textContent = f.sentence;
    plot.className = "plot";
    plot.id = `family-${i}`;
    box.append(title, text, plot);
    $("families").append(box);
    const traces = [];
    for (const line of f.lines) {  // one seed: no interval, the mean alone
      const lo = line.lo.map((v, j) => v ?? line.y[j]), hi = line.hi.map((v, j) => v ?? line.y[j]);
      const name = line.label + (line.kind === "baseline" ? " (baseline)" : ""), colour = STYLE[line.label].color;
      if (line.x.length > 1) traces.push(band(line.x, lo, hi, colour, line.label));
      traces.push(series(line.label, name, line.x, line.y, {
        line: { color: colour, dash: line.kind === "baseline" ? "dash" : STYLE[line.label].dash }, text: line.budget,
        error_y: { type: "data", symmetric: false, color: colour, thickness: 1.2, width: 3,
                   array: hi.map((v, j) => v - line.y[j]), arrayminus: lo.map((v, j) => line.y[j] - v) },
        hovertemplate: `${name}<br>%{text}: test accuracy %{y:.4f}<extra></extra>` }));
    }
    const look = layout(`budget per run (${f.unit})`, "test accuracy");
    const spread = Math.max(...f.amounts) / Math.min(...f.amounts);
    Object.assign(look.xaxis, { type: spread >= 4 ? "log" : "linear", tickvals: f.amounts, ticktext: f.budgets });
    // drawn when it nears the screen: a folder with many families does not pay for them all before it shows
    new IntersectionObserver((seen, observer) => {
      if (!seen.some((e) => e.isIntersecting)) return;
      observer.disconnect();
      Plotly.newPlot(plot, traces, look, CONFIG).then(() => { plot.dataset.drawn = "true"; });
    }, { rootMargin: "400px" }).observe(plot);
  }

  function show(i) {
    current = +i;
    $("experiment").value = String(current);
    $("f-exp").value = String(current);
    document.querySelectorAll("details.exp").forEach((d) => { d.open = +d.dataset.exp === current; });
    window.page.filter();
    metricOptions();
    return Promise.all([drawPareto(), drawCurves(), drawSearch()]);
  }

  $("experiment").addEventListener("change", (ev) => show(ev.target.value));
  document.querySelectorAll("[data-show]").forEach((b) => b.addEventListener("click", () => {
    show(b.dataset.show);
    $("plots").scrollIntoView();
  }));
  ["x-metric", "y-metric"].forEach((id) => $(id).addEventListener("change", drawPareto));

  // ---- start -------------------------------------------------------------------------------------------------
  if (DATA.families.length) DATA.families.forEach(drawFamily);
  else $("families").textContent = "No experiments of this folder differ only in their budget.";
  if (!EXPS.length) $("plots").hidden = true;  // only searches that have not reached their reported runs yet
  (EXPS.length ? show(0) : Promise.resolve()).then(() => {  // the table and the chosen experiment's plots are ready
    document.body.dataset.ready = "true";
    performance.mark("page-ready");
  });
})();
