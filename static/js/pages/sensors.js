// Sensors: the registry with each sensor's status (live over the relay's
// `sensors` channel), its configuration (edited with If-Match by those who
// may manage sensors; the relay publishes it retained to the sensor's
// control topic), and for admins single-use onboarding tokens with their QR
// code (rendered by the threats component as SVG).

import { call, can, request } from "../api.js";
import { listen } from "../live.js";
import { ask, badge, clear, field, h, notify, page, problemText, table, time } from "../ui.js";

export async function sensorsPage(ctx) {
  const tbody = h("tbody");
  const issued = h("div", { class: "issued", "aria-live": "polite" });
  let timer = null;

  async function load() {
    const data = await call("GET", "/api/sensors", { query: { limit: 200 } });
    clear(
      tbody,
      data.sensors.map((s) =>
        h(
          "tr",
          { dataset: { id: s.id } },
          h("td", {}, s.name),
          h("td", {}, h("code", {}, s.id)),
          h("td", {}, s.kind),
          h("td", {}, badge(s.status)),
          h("td", {}, time(s.last_heartbeat)),
          h("td", {}, s.location || "—"),
          h(
            "td",
            {},
            h("code", { class: "config" }, JSON.stringify(s.config ?? {})),
            can("sensors:manage") ? h("button", { type: "button", class: "secondary edit-config", onclick: () => editConfig(s) }, "Edit") : null,
          ),
        ),
      ),
    );
  }

  // The whole configuration is replaced, against the version shown: a
  // change made meanwhile is a 412, explained, and the list reloaded.
  async function editConfig(sensor) {
    const text = h("textarea", { name: "config", rows: "10", cols: "60", required: true, spellcheck: "false" });
    text.value = JSON.stringify(sensor.config ?? {}, null, 2);
    const form = await ask(`Configuration of ${sensor.name}`, [field("JSON object", text)], "Save");
    if (!form) return;
    let config;
    try {
      config = JSON.parse(form.get("config"));
    } catch (err) {
      notify(`Not JSON: ${err.message}`, "error");
      return;
    }
    try {
      await request("PATCH", `/api/sensors/${encodeURIComponent(sensor.id)}`, { body: { config }, ifMatch: `"${sensor.version}"` });
      notify(`Saved; ${sensor.name} receives it on its control topic.`);
    } catch (err) {
      notify(err.status === 412 ? "Someone changed this sensor meanwhile: the list is reloaded, edit it again." : problemText(err), "error");
    }
    await load();
  }

  async function onboard() {
    const form = await ask(
      "New onboarding token",
      [field("Valid for (minutes)", h("input", { name: "ttl", type: "number", min: "5", max: "10080", value: "60", required: true })), field("Note", h("input", { name: "note", maxlength: "200" }))],
      "Issue",
    );
    if (!form) return;
    try {
      const body = { ttl_minutes: Number(form.get("ttl")) };
      if (form.get("note")) body.note = form.get("note");
      const t = await call("POST", "/api/sensors/onboarding-tokens", { body });
      const qr = h("img", { src: `data:image/svg+xml;base64,${btoa(t.qr_svg)}`, alt: "QR code holding the register URL and the token", width: "220", height: "220" });
      clear(
        issued,
        h("h2", {}, "Onboarding token (shown once)"),
        qr,
        h("dl", {}, h("dt", {}, "Token"), h("dd", {}, h("code", { id: "onboarding-token" }, t.token)), h("dt", {}, "Register at"), h("dd", {}, h("code", {}, t.register_url)), h("dt", {}, "Expires"), h("dd", {}, time(t.expires_at))),
        h("p", { class: "muted" }, "The sensor scans the code (or is given the token) and registers once with POST register_url; it then receives its id and an API key that may only post its own events and heartbeats."),
      );
    } catch (err) {
      notify(problemText(err), "error");
    }
  }

  ctx.onLeave(listen("sensors", () => {
    clearTimeout(timer);
    timer = setTimeout(load, 200);
  }));
  ctx.onLeave(() => clearTimeout(timer));
  await load();
  return page(
    "Sensors",
    can("api_keys:manage") ? h("p", {}, h("button", { type: "button", id: "onboard", onclick: onboard }, "New onboarding token")) : null,
    issued,
    h("div", { class: "scroll" }, table(["Name", "Id", "Kind", "Status", "Last heartbeat", "Location", "Configuration"], tbody, "Sensors by name")),
  );
}
