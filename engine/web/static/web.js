/* The web view: one EventSource, the whole view first, then updates. Text only
   (textContent), never markup from the data. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let view = null;
  const charts = {};

  const num = (v) => (v === null || v === undefined || v === "" ? null : Number(v));
  const pct = (v, digits = 2) => (v === null ? "–" : (v * 100).toFixed(digits) + " %");
  const fmt = (v, digits = 8) => (v === null ? "–" : v.toLocaleString("en-US",
    { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  const secs = (t) => Date.parse(t) / 1000;
  function duration(s) {
    if (s === null || s === undefined) return "–";
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60), r = s % 60;
    const hms = h + ":" + String(m).padStart(2, "0") + ":" + String(r).padStart(2, "0");
    return d ? d + "d " + hms : hms;
  }
  function text(id, value, cls) {
    const el = $(id);
    el.textContent = value;
    if (cls !== undefined) el.className = el.className.replace(/\b(green|orange|red)\b/g, "").trim() + (cls ? " " + cls : "");
    return el;
  }
  function badge(id, value, cls) {
    const el = $(id);
    el.textContent = value;
    el.className = "badge " + (cls || "");
  }
  function row(tbody, cells, classes) {
    const tr = document.createElement("tr");
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      td.textContent = c === null || c === undefined ? "–" : String(c);
      if (classes && classes[i]) td.className = classes[i];
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
    return tr;
  }
  function list(id, items, empty) {
    const ul = $(id);
    ul.replaceChildren();
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = empty;
      ul.appendChild(li);
    }
    for (const item of items) {
      const li = document.createElement("li");
      li.textContent = item.text;
      if (item.cls) li.className = item.cls;
      ul.appendChild(li);
    }
  }
  // Green below the first step, orange from it, red from the second (or the reverse).
  function level(v, warn, bad, higherIsBetter) {
    if (v === null) return "";
    if (higherIsBetter) return v >= bad ? "green" : v >= warn ? "orange" : "red";
    return v >= bad ? "red" : v >= warn ? "orange" : "green";
  }
  function gauge(id, v, warn, bad, scale, higherIsBetter) {
    const cls = level(v, warn, bad, higherIsBetter);
    const el = text(id, pct(v), cls);
    el.dataset.value = v === null ? "" : String(v);
    const fill = $(id + "-fill");
    fill.style.width = v === null ? "0" : Math.min(100, (v / scale) * 100) + "%";
    fill.className = "fill " + cls;
  }
  function ready(panel, has) {
    const el = document.querySelector('[data-panel="' + panel + '"]');
    if (el) el.dataset.ready = has ? "1" : "0";
  }

  function chart(key, el, opts, data) {
    const width = Math.max(200, el.clientWidth);
    if (!charts[key]) {
      charts[key] = new uPlot(Object.assign({ width: width, height: 220 }, opts), data, el);
    } else {
      charts[key].setData(data);
    }
  }
  const axis = { stroke: "#8a94a6", grid: { stroke: "#2a3240" }, ticks: { stroke: "#2a3240" } };
  function bars(color) {
    return { stroke: color, fill: color + "99", paths: uPlot.paths.bars({ size: [0.6, 60] }),
      points: { show: false } };
  }

  // Bars start at zero: the range always holds it.
  const zero = (u, lo, hi) => {
    const a = Math.min(0, lo === null ? 0 : lo), b = Math.max(0, hi === null ? 0 : hi);
    const pad = (b - a) * 0.08 || 1;
    return [a < 0 ? a - pad : 0, b > 0 ? b + pad : 0];
  };

  // Daily bars get half a day either side; a single day gets an empty next day, as
  // uPlot stretches a time scale of one point over years.
  const days1 = (u, lo, hi) => (lo === null ? [0, 1] : [lo - 43200, hi + 43200]);
  const padded = (xs, ys) => (xs.length === 1 ? [[xs[0], xs[0] + 86400], [ys[0], null]] : [xs, ys]);

  function drawCharts(p) {
    const eq = p.equity_curve;
    chart("equity", $("equity-chart"), {
      series: [{}, { label: "equity", stroke: "#58a6ff", width: 1.5,
        fill: "rgba(88,166,255,0.08)" }],
      axes: [axis, Object.assign({ size: 70 }, axis)],
      legend: { show: false },
    }, [eq.map((r) => secs(r.time)), eq.map((r) => num(r.equity))]);
    ready("equity_curve", eq.length > 0);

    const days = p.daily_pnl;
    const pnls = days.map((r) => num(r.pnl));
    chart("daily", $("daily-pnl-chart"), {
      series: [{ value: (u, v) => (v === null ? "–" : days[v] ? days[v].day : "") },
        Object.assign({ label: "gain" }, bars("#3fb950")),
        Object.assign({ label: "loss" }, bars("#f85149"))],
      scales: { x: { time: false, range: (u, lo, hi) => [lo - 0.5, hi + 0.5] }, y: { range: zero } },
      axes: [Object.assign({ values: (u, ticks) => ticks.map((i) => (Number.isInteger(i) && days[i] ? days[i].day.slice(5) : "")) }, axis),
        Object.assign({ size: 70 }, axis)],
      legend: { show: false },
    }, [days.map((_, i) => i), pnls.map((v) => (v >= 0 ? v : null)), pnls.map((v) => (v < 0 ? v : null))]);
    ready("daily_pnl", days.length > 0);

    const trades = p.trades_per_day;
    chart("trades", $("trades-chart"), {
      series: [{}, Object.assign({ label: "trades" }, bars("#d29922"))],
      scales: { x: { range: days1 }, y: { range: zero } },
      axes: [axis, axis],
      legend: { show: false },
    }, padded(trades.map((r) => secs(r.time)), trades.map((r) => num(r.trades))));
    ready("trades_per_day", trades.length > 0);
  }

  function render(v) {
    const s = v.status;
    const q = s.quote_currency || "";
    text("run-id", s.run_id || "no run yet");
    const st = s.status || "no run";
    badge("run-status", st, st === "running" ? "green" : st === "completed" ? "" : "orange");
    const ts = (s.trading_state || "–").toUpperCase();
    badge("trading-state", ts, ts === "ACTIVE" ? "green" : ts === "REDUCING" ? "orange" : "red");
    badge("health", s.health.replace("_", " "), s.health === "healthy" ? "green" : "red");
    text("market-time", s.market_time ? s.market_time.replace("T", " ").replace("Z", " UTC") : "–");
    text("lag", s.live && s.market_lag_s !== null ? duration(s.market_lag_s) + " behind" : "");
    const prog = num(s.progress_frac);
    text("progress", prog === null ? "no window" : pct(prog, 1) + " of the window");
    $("progress-bar").style.width = prog === null ? "0" : prog * 100 + "%";
    text("data-source", s.data_source || "–");
    list("reasons", [], "");
    $("reasons").replaceChildren(...s.reasons.map((r) => {
      const li = document.createElement("li"); li.textContent = r; return li; }));

    const equity = num(s.equity);
    const eqEl = text("equity", equity === null ? "–" : fmt(equity));
    eqEl.dataset.value = s.equity === null ? "" : s.equity;
    ready("equity", equity !== null);
    text("capital", q + (s.initial_capital ? ", from " + s.initial_capital : ""));
    const p = v.panels;
    if (p) {
      const pnl = num(p.total_pnl);
      const pnlEl = text("total-pnl", pnl === null ? "–" : (pnl > 0 ? "+" : "") + fmt(pnl),
        pnl === null ? "" : pnl >= 0 ? "green" : "red");
      pnlEl.dataset.value = pnl === null ? "" : String(pnl);
      ready("total_pnl", pnl !== null);
      const open = num(p.open_positions);
      const openEl = text("open-positions", open === null ? "–" : String(open),
        open === null ? "" : open >= 3 ? "orange" : "green");
      openEl.dataset.value = open === null ? "" : String(open);
      ready("open_positions", open !== null);
      text("max-positions", s.max_open_positions ? "of " + s.max_open_positions : "");
      gauge("daily-drawdown", num(p.daily_drawdown), 0.03, 0.045, 0.06, false);
      ready("daily_drawdown", p.daily_drawdown !== null);
      gauge("exposure", num(p.exposure), 0.2, 0.28, 0.35, false);
      ready("exposure", p.exposure !== null);
      gauge("win-rate", num(p.win_rate), 0.45, 0.55, 1, true);
      ready("win_rate", p.win_rate !== null);
      drawCharts(p);
      const fills = $("fills").tBodies[0];
      fills.replaceChildren();
      for (const f of p.recent_trades) {
        const n = "num";
        row(fills, [f.time.slice(0, 19).replace("T", " "), f.symbol, f.side, f.status,
          f.qty, f.price, fmt(num(f.notional)), fmt(num(f.fee)), f.slippage_bps === null ? "–" : num(f.slippage_bps).toFixed(1),
          f.liquidity], ["", "", f.side === "buy" ? "green" : "red", "", n, n, n, n, n, ""]);
      }
      ready("recent_trades", p.recent_trades.length > 0);
    }

    const limits = $("limits").tBodies[0];
    limits.replaceChildren();
    const lim = (name, value, limit) => {
      const v = num(value), l = num(limit);
      const cls = v === null || l === null ? "" : v >= l ? "red" : v >= 0.9 * l ? "orange" : "green";
      row(limits, [name, pct(v), l === null ? "–" : "of " + pct(l)], ["", "num " + cls, "num"]);
    };
    lim("daily drawdown", s.daily_drawdown_frac, s.daily_drawdown_limit_frac);
    lim("exposure", s.exposure_frac, s.exposure_limit_frac);
    row(limits, ["open positions", s.open_positions.length,
      s.max_open_positions ? "of " + s.max_open_positions : "–"], ["", "num", "num"]);
    row(limits, ["trading state", ts, ""], ["", ts === "ACTIVE" ? "green" : "red", ""]);

    const procs = $("processes").tBodies[0];
    procs.replaceChildren();
    for (const pr of s.processes) {
      row(procs, [pr.name, pr.alive ? "up" : "down", pr.pid, duration(pr.uptime_s), "", pr.detail],
        ["", pr.alive ? "green" : "red"]);
    }
    for (const sv of v.services || []) {
      row(procs, ["service " + sv.name, sv.health, sv.pid, duration(sv.uptime_s),
        sv.lag === null ? "–" : sv.lag, sv.alive ? "" : "no process"],
        ["", sv.alive && sv.health !== "unhealthy" ? "green" : "red"]).dataset.service = sv.name;
    }
    if (v.stack) {
      for (const c of v.stack.containers) {
        row(procs, [c.service, c.state + (c.health !== "-" ? " · " + c.health : ""), "–",
          duration(c.uptime_s), "–", c.restarts ? c.restarts + " restarts" : c.ports],
          ["", c.state === "running" && c.health !== "unhealthy" ? "green" : "red"]).dataset.container = c.service;
      }
    }
    text("health-title", (v.services && v.services.length) ? "Services" : v.stack ? "Containers" : "Processes");

    list("alerts", s.alerts_firing.map((a) => ({ text: a.ts.slice(5, 16).replace("T", " ") + " " +
      a.severity + " " + a.rule + ": " + a.message, cls: a.severity === "critical" ? "red" : "orange" })),
      "none in the last hour");
    list("incidents", (v.incidents || []).map((i) => ({ text: i.incident_id + " " + i.type + ": " +
      i.summary, cls: "orange" })), "none open");
    const b = s.backup || {};
    text("backup", b.newest ? b.newest + " (" + duration(b.newest_age_s) + " old)" : "none yet",
      b.newest ? "" : "orange");
    text("updated", new Date().toISOString().slice(11, 19) + " UTC");
    document.body.dataset.seq = String(v.seq || 0);
    document.body.dataset.snapshot = v.snapshot_id || "";
  }

  // The newest equity points replace those from the first new point's time on.
  function merge(update) {
    const added = update.panels ? update.panels.equity_curve : [];
    if (view && view.panels && update.panels) {
      const curve = view.panels.equity_curve;
      if (added.length) {
        const first = Date.parse(added[0].time);
        let cut = curve.length;
        while (cut && Date.parse(curve[cut - 1].time) >= first) cut--;
        curve.length = cut;
        for (const point of added) curve.push(point);
      }
      update.panels.equity_curve = curve;
    }
    return update;
  }

  function connect() {
    const conn = $("connection");
    const source = new EventSource("/api/stream");
    source.onopen = () => { conn.textContent = "live"; conn.className = "conn live"; };
    source.onerror = () => { conn.textContent = "reconnecting…"; conn.className = "conn down"; };
    source.onmessage = (e) => {
      const message = JSON.parse(e.data);
      view = message.kind === "update" && view ? merge(message) : message;
      render(view);
    };
  }
  window.addEventListener("resize", () => {
    for (const key in charts) {
      const el = charts[key].root.parentElement;
      charts[key].setSize({ width: Math.max(200, el.clientWidth), height: 220 });
    }
  });
  connect();
})();
