// bridge console: charts (uPlot) and small helpers for the htmx pages.
// No inline scripts (the Content-Security-Policy forbids them): everything
// is wired here from data- attributes.
(function () {
  "use strict";

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  var palette = ["--series-1", "--series-2", "--series-3", "--series-4"];

  // makeChart draws a uPlot chart in el from {t: [unix seconds], series: [{name, values}]}.
  function makeChart(el, data) {
    var width = Math.max(el.clientWidth, 280);
    var height = parseInt(el.dataset.height || "180", 10);
    // Fewer than two points would make uPlot stretch the x axis over
    // years: pad with empty points a minute apart.
    while (data.t.length < 2) {
      var first = data.t.length ? data.t[0] : Math.floor(Date.now() / 1000);
      data.t.unshift(first - 60);
      data.series.forEach(function (s) { s.values.unshift(null); });
    }
    var series = [{}];
    var columns = [data.t];
    data.series.forEach(function (s, i) {
      series.push({
        label: s.name,
        stroke: cssVar(palette[i % palette.length]),
        width: 1.5,
        spanGaps: false,
        value: function (u, v) { return v == null ? "–" : fmt(v); }
      });
      columns.push(s.values);
    });
    var axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--grid"), width: 1 }, ticks: { stroke: cssVar("--grid") } };
    var opts = {
      width: width, height: height, series: series,
      axes: [axis, Object.assign({ size: 60, values: function (u, vals) { return vals.map(fmt); } }, axis)],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } }
    };
    el.textContent = "";
    var chart = new uPlot(opts, columns, el);
    el._chart = chart;
    el._data = columns;
    return chart;
  }

  function fmt(v) {
    if (v == null) return "–";
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
    if (a >= 100 || a === 0) return v.toFixed(0);
    return v.toFixed(2);
  }

  function loadChart(el) {
    if (el._loaded) return;
    el._loaded = true;
    fetch(el.dataset.chart, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) { makeChart(el, data); el.dataset.ready = "1"; })
      .catch(function (e) { el.textContent = "chart unavailable: " + e.message; el.dataset.ready = "error"; });
  }

  function scan(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(loadChart);
  }

  // Live charts: an SSE message "rates" carries {t, values:[...]}; each
  // chart with data-live="rates" appends it and keeps data-keep points.
  document.addEventListener("htmx:sseMessage", function (evt) {
    var d = evt.detail || {};
    if (d.type === "rates") {
      var point;
      try { point = JSON.parse(d.data); } catch (e) { return; }
      document.querySelectorAll("[data-live='rates']").forEach(function (el) {
        if (!el._chart) return;
        var cols = el._data;
        var keep = parseInt(el.dataset.keep || "300", 10);
        cols[0].push(point.t);
        for (var i = 1; i < cols.length; i++) cols[i].push(point.values[i - 1]);
        if (cols[0].length > keep) cols.forEach(function (c) { c.shift(); });
        el._chart.setData(cols);
      });
    }
    if (d.type === "rows") {
      // Live tail: keep the table bounded.
      document.querySelectorAll("tbody[data-max-rows]").forEach(function (tb) {
        var max = parseInt(tb.dataset.maxRows, 10);
        while (tb.rows.length > max) tb.deleteRow(tb.rows.length - 1);
      });
    }
  });

  document.addEventListener("DOMContentLoaded", function () { scan(); });

  // Charts take their colours when drawn: redraw them when the system's
  // colour scheme changes (theme "auto").
  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () {
      document.querySelectorAll("[data-chart]").forEach(function (el) {
        if (!el._chart) return;
        var cols = el._data, names = el._chart.series.slice(1).map(function (s) { return s.label; });
        el._chart.destroy();
        makeChart(el, { t: cols[0], series: names.map(function (n, i) { return { name: n, values: cols[i + 1] }; }) });
      });
    });
  }
  document.addEventListener("htmx:afterSettle", function (evt) { scan(evt.target); });

  // Select-all checkboxes: <input type=checkbox data-select-all="NAME">.
  document.addEventListener("change", function (evt) {
    var t = evt.target;
    if (t && t.dataset && t.dataset.selectAll) {
      document.querySelectorAll("input[type=checkbox][name='" + t.dataset.selectAll + "']").forEach(function (c) { c.checked = t.checked; });
    }
  });
})();
