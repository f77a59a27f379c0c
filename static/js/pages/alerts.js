// Alerts: the live feed (relay channel `alerts`), grouped counts, and
// acknowledge / resolve (with a note) for roles that manage alerts.

import { ApiProblem, call, can, request } from "../api.js";
import { listen } from "../live.js";
import { ask, badge, clear, field, h, notify, page, problemText, table, time } from "../ui.js";

export async function alertsPage(ctx) {
  let status = ctx.params.get("status") || "open";
  let alerts = [];
  let timer = null;
  const tbody = h("tbody");
  const summary = h("p", { class: "muted", role: "status" });

  async function load() {
    const data = await call("GET", "/api/alerts", { query: { status: status === "all" ? "" : status, limit: 200 } });
    alerts = data.alerts;
    draw();
  }
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(() => load().catch((e) => notify(problemText(e), "error")), 150);
  };

  async function act(a, command) {
    let body = {};
    if (command === "resolve") {
      const form = await ask(`Resolve: ${a.event_type} from ${a.source_ip}`, field("Note (required)", h("textarea", { name: "note", required: true, maxlength: "2000", rows: "3" })), "Resolve");
      if (!form) return;
      body = { note: form.get("note") };
    }
    try {
      await request("POST", `/api/alerts/${a.id}/${command}`, { body, ifMatch: `"${a.version}"` });
      notify(`Alert ${command === "resolve" ? "resolved" : "acknowledged"}.`);
    } catch (err) {
      if (err instanceof ApiProblem && (err.status === 412 || err.status === 409)) {
        notify(`The alert changed meanwhile (${problemText(err)}); it has been reloaded.`, "error");
      } else notify(problemText(err), "error");
    }
    await load();
  }

  function draw() {
    const bySeverity = {};
    for (const a of alerts) bySeverity[a.severity] = (bySeverity[a.severity] || 0) + 1;
    const events = alerts.reduce((n, a) => n + a.event_count, 0);
    summary.textContent = `${alerts.length} alerts grouping ${events} events` + (Object.keys(bySeverity).length ? ` — ${Object.entries(bySeverity).map(([k, v]) => `${v} ${k}`).join(", ")}` : "");
    clear(
      tbody,
      alerts.map((a) =>
        h(
          "tr",
          { dataset: { id: a.id } },
          h("td", {}, badge(a.severity)),
          h("td", {}, a.event_type.replaceAll("_", " ")),
          h("td", {}, h("code", {}, a.source_ip)),
          h("td", {}, a.sensor_id),
          h("td", { class: "num" }, a.event_count),
          h("td", { class: "num" }, a.max_score),
          h("td", {}, time(a.last_seen)),
          h("td", {}, badge(a.status)),
          h(
            "td",
            { class: "actions" },
            can("alerts:manage") && a.status === "open" ? h("button", { type: "button", dataset: { command: "acknowledge" }, onclick: () => act(a, "acknowledge") }, "Acknowledge") : null,
            can("alerts:manage") && a.status !== "resolved" ? h("button", { type: "button", class: "secondary", dataset: { command: "resolve" }, onclick: () => act(a, "resolve") }, "Resolve") : null,
          ),
        ),
      ),
    );
  }

  const filter = h(
    "select",
    { id: "alert-status", onchange: (e) => ((status = e.target.value), load()) },
    ["open", "acknowledged", "resolved", "all"].map((s) => h("option", { value: s, selected: s === status }, s)),
  );
  ctx.onLeave(listen("alerts", later));
  ctx.onLeave(() => clearTimeout(timer));
  await load();
  return page(
    "Alerts",
    h("div", { class: "row" }, h("label", { for: "alert-status" }, "Status "), filter),
    summary,
    h("div", { class: "scroll" }, table(["Severity", "Type", "Source", "Sensor", "Events", "Max score", "Last seen", "Status", "Actions"], tbody, "Alerts, latest event first; updated live")),
  );
}
