// Metrics: KPI cards, event and alert trends (uPlot, vendored in
// static/vendor/uplot), dismiss reasons, the risk index, fleet health and
// the events by source country.

import { call } from "../api.js";
import { clear, duration, h, page, pct, table } from "../ui.js";

const COLORS = ["#0b6e4f", "#a4262c", "#c17c00", "#3b5bdb", "#7048e8", "#5b6475", "#1098ad", "#e8590c"];

function card(label, value, hint) {
  return h("div", { class: "card" }, h("span", { class: "label" }, label), h("strong", {}, value), hint ? h("small", {}, hint) : null);
}

/** A line chart of `trend` (GET /api/metrics/trends) in `el`. */
function chart(el, title, trend) {
  const width = Math.max(280, Math.min(el.clientWidth || 600, 900));
  const xs = trend.buckets.map((b) => new Date(b).getTime() / 1000);
  const series = trend.series.length ? trend.series : [{ key: "none", values: xs.map(() => 0) }];
  const opts = {
    title,
    width,
    height: 220,
    series: [{}, ...series.map((s, i) => ({ label: s.key, stroke: COLORS[i % COLORS.length], width: 2 }))],
    axes: [{}, { size: 50 }],
  };
  clear(el);
  // eslint-disable-next-line no-new
  new window.uPlot(opts, [xs, ...series.map((s) => s.values)], el);
}

export async function metricsPage(ctx) {
  let range = ctx.params.get("range") || "24h";
  const body = h("div", { class: "metrics" });
  const picker = h(
    "select",
    { id: "metrics-range", onchange: (e) => ((range = e.target.value), load()) },
    ["24h", "7d", "30d", "all"].map((r) => h("option", { value: r, selected: r === range }, r)),
  );

  async function load() {
    const bucket = range === "24h" ? "hour" : "day";
    const [summary, events, alerts, risk, fleet, map] = await Promise.all([
      call("GET", "/api/metrics/summary", { query: { range } }),
      call("GET", "/api/metrics/trends", { query: { metric: "events", bucket, group_by: "severity", range } }),
      call("GET", "/api/metrics/trends", { query: { metric: "alerts", bucket, group_by: "severity", range } }),
      call("GET", "/api/metrics/risk", { query: { range } }),
      call("GET", "/api/metrics/sensors", { query: { range } }),
      call("GET", "/api/metrics/map", { query: { range } }),
    ]);
    const ttd = summary.time_to_decision;
    const eventsChart = h("figure", { class: "chart", id: "chart-events", "aria-label": "Events by severity over time" });
    const alertsChart = h("figure", { class: "chart", id: "chart-alerts", "aria-label": "Alerts by severity over time" });
    const riskChart = h("figure", { class: "chart", id: "chart-risk", "aria-label": "Risk index over time" });
    const reasons = Object.entries(summary.dismiss_reasons || {}).sort((a, b) => b[1] - a[1]);
    const maxReason = Math.max(1, ...reasons.map(([, n]) => n));
    clear(
      body,
      h(
        "div",
        { class: "cards" },
        card("Events", summary.events.toLocaleString()),
        card("Alerts opened", summary.alerts.opened.toLocaleString(), `${summary.alerts.acknowledged} acknowledged, ${summary.alerts.resolved} resolved`),
        card("Decisions", summary.decisions.decided.toLocaleString(), `${summary.decisions.submitted} submitted`),
        card("Dismissed", pct(summary.dismissed_rate)),
        card("Escalated", pct(summary.escalation_rate)),
        card("SLA breaches", pct(summary.sla_breach_rate), `${summary.decisions.sla_breaches} late`),
        card("Time to decision", ttd ? duration(ttd.median_seconds) : "—", ttd ? `mean ${duration(ttd.mean_seconds)}, p90 ${duration(ttd.p90_seconds)}` : "no decisions"),
        card("Alert fatigue", summary.fatigue.score.toFixed(0), "0 (calm) – 100"),
        card("Risk index", String(risk.risk), `${risk.open_critical_alerts} open critical alerts`),
        card("Sensors", `${fleet.online}/${fleet.total} online`, `${fleet.stale} stale, ${fleet.offline} offline`),
      ),
      h("div", { class: "charts" }, eventsChart, alertsChart, riskChart),
      h(
        "div",
        { class: "columns" },
        h(
          "section",
          {},
          h("h2", {}, "Dismiss reasons"),
          reasons.length
            ? h("ul", { class: "bars" }, reasons.map(([k, n]) => h("li", {}, h("span", {}, k.replaceAll("_", " ")), h("meter", { min: "0", max: String(maxReason), value: String(n) }), h("span", { class: "num" }, n))))
            : h("p", { class: "muted" }, "No dismissals in this range."),
        ),
        h(
          "section",
          {},
          h("h2", {}, "Source countries"),
          map.countries.length
            ? table(["Country", "Events", "Max score", "Mean score"], map.countries.map((c) => h("tr", {}, h("td", {}, c.country), h("td", { class: "num" }, c.events), h("td", { class: "num" }, c.max_score), h("td", { class: "num" }, c.mean_score.toFixed(1)))))
            : h("p", { class: "muted" }, "No events with a known country."),
          h("p", { class: "muted" }, `${map.unknown} events without a known country.`),
        ),
        h(
          "section",
          {},
          h("h2", {}, "Fleet"),
          table(["Sensor", "Status", "Events"], fleet.sensors.map((s) => h("tr", {}, h("td", {}, s.name), h("td", {}, s.status), h("td", { class: "num" }, s.events)))),
        ),
      ),
    );
    // Charts need their container laid out to know the width.
    requestAnimationFrame(() => {
      chart(eventsChart, "Events by severity", events);
      chart(alertsChart, "Alerts by severity", alerts);
      chart(riskChart, "Risk index", {
        buckets: risk.history.map((p) => p.at),
        series: [{ key: "risk", values: risk.history.map((p) => p.risk) }],
      });
    });
  }

  await load();
  return page("Metrics", h("div", { class: "row" }, h("label", { for: "metrics-range" }, "Range "), picker), body);
}
