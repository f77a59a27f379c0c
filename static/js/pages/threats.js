// Threat explorer: every filter of GET /api/threats, cursor paging, and for
// each event its score breakdown and the MITRE ATT&CK technique, linked.

import { call } from "../api.js";
import { badge, clear, field, h, page, table, time } from "../ui.js";

const SEVERITIES = ["", "info", "low", "medium", "high", "critical"];
const TYPES = ["", "port_scan", "brute_force", "credential_stuffing", "exploit_attempt", "sql_injection", "malware_download", "c2_beacon", "data_exfiltration", "dos", "ssh_session", "http_probe", "smb_probe", "wifi_deauth", "evil_twin", "ble_spam", "usb_hid_injection", "usb_mass_storage", "other"];

export function attackUrl(technique) {
  const [base, sub] = technique.split(".");
  return `https://attack.mitre.org/techniques/${encodeURIComponent(base)}/${sub ? encodeURIComponent(sub) + "/" : ""}`;
}

export async function threatsPage() {
  const inputs = {
    since: h("input", { type: "datetime-local", name: "since" }),
    until: h("input", { type: "datetime-local", name: "until" }),
    severity: h("select", { name: "severity" }, SEVERITIES.map((s) => h("option", { value: s }, s || "any"))),
    event_type: h("select", { name: "event_type" }, TYPES.map((s) => h("option", { value: s }, s || "any"))),
    sensor_id: h("input", { name: "sensor_id" }),
    source_ip: h("input", { name: "source_ip" }),
    technique: h("input", { name: "technique", placeholder: "T1110" }),
    zone: h("input", { name: "zone" }),
    country: h("input", { name: "country", placeholder: "US", maxlength: "2" }),
  };
  const tbody = h("tbody");
  const detail = h("aside", { class: "detail", "aria-live": "polite", "aria-label": "Selected event" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Next page");
  let cursor = null;

  function query() {
    const q = { limit: 50 };
    for (const [k, el] of Object.entries(inputs)) {
      if (!el.value) continue;
      q[k] = el.type === "datetime-local" ? new Date(el.value).toISOString() : el.value.trim();
    }
    if (cursor) q.cursor = cursor;
    return q;
  }

  async function show(id) {
    const t = await call("GET", `/api/threats/${id}`);
    const parts = t.breakdown && typeof t.breakdown === "object" ? Object.entries(t.breakdown) : [];
    clear(
      detail,
      h("h2", {}, `${t.event_type.replaceAll("_", " ")} — score ${t.score}`),
      h(
        "dl",
        {},
        [
          ["Observed", time(t.observed_at)],
          ["Source", `${t.source_ip}${t.source_port ? ":" + t.source_port : ""} (${t.source_class}${t.source_country ? ", " + t.source_country : ""}${t.source_as_org ? ", " + t.source_as_org : ""})`],
          ["Destination", t.dest_ip ? `${t.dest_ip}${t.dest_port ? ":" + t.dest_port : ""} ${t.dest_zone ? "(" + t.dest_zone + ")" : ""}` : "—"],
          ["Sensor", t.sensor_id],
          ["Technique", t.technique ? h("a", { href: attackUrl(t.technique), rel: "noopener noreferrer", target: "_blank" }, t.technique) : "—"],
          ["Alert", t.alert_id || "—"],
        ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
      ),
      h("h3", {}, "Score breakdown"),
      parts.length
        ? table(["Part", "Value"], parts.map(([k, v]) => h("tr", {}, h("td", {}, k.replaceAll("_", " ")), h("td", { class: "num" }, typeof v === "object" ? JSON.stringify(v) : String(v)))))
        : h("pre", {}, JSON.stringify(t.breakdown, null, 2)),
      h("h3", {}, "Payload"),
      h("pre", {}, JSON.stringify(t.payload, null, 2)),
    );
  }

  async function load(append) {
    const data = await call("GET", "/api/threats", { query: query() });
    const rows = data.threats.map((t) =>
      h(
        "tr",
        { dataset: { id: t.id } },
        h("td", {}, time(t.observed_at)),
        h("td", {}, badge(t.severity)),
        h("td", { class: "num" }, t.score),
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => show(t.id) }, t.event_type.replaceAll("_", " "))),
        h("td", {}, h("code", {}, t.source_ip)),
        h("td", {}, t.source_country || "—"),
        h("td", {}, t.sensor_id),
        h("td", {}, t.technique ? h("a", { href: attackUrl(t.technique), rel: "noopener noreferrer", target: "_blank" }, t.technique) : "—"),
      ),
    );
    if (append) tbody.append(...rows);
    else clear(tbody, rows);
    cursor = data.next_cursor;
    more.hidden = !cursor;
  }

  const form = h(
    "form",
    { class: "filters" },
    Object.entries(inputs).map(([k, el]) => field(k.replace("_", " "), el)),
    h("button", { type: "submit" }, "Apply"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    cursor = null;
    load(false);
  });
  more.addEventListener("click", () => load(true));
  await load(false);
  return page(
    "Threat explorer",
    form,
    h("div", { class: "split" }, h("div", { class: "scroll" }, table(["Observed", "Severity", "Score", "Type", "Source", "Country", "Sensor", "ATT&CK"], tbody, "Events, newest first"), more), detail),
  );
}
