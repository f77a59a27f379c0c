// Users (admins): create, change role, disable, reset a password; invitations;
// sessions; API keys. Secrets the API shows once (one-time passwords,
// invitation tokens, API keys) are shown once here too, never stored.

import { call, currentUser } from "../api.js";
import { ask, badge, clear, field, h, notify, page, problemText, table, time } from "../ui.js";

const ROLES = ["viewer", "analyst", "supervisor", "admin"];

function secretBox(title, text, hint) {
  return h("div", { class: "secret", role: "status" }, h("strong", {}, title), h("code", {}, text), hint ? h("small", {}, hint) : null);
}

export async function usersPage() {
  const users = h("tbody");
  const invitations = h("tbody");
  const keys = h("tbody");
  const sessions = h("tbody");
  const shown = h("div", { "aria-live": "polite" });

  const run = async (fn) => {
    try {
      await fn();
    } catch (err) {
      notify(problemText(err), "error");
    }
  };

  async function loadUsers() {
    const { users: list } = await call("GET", "/api/auth/users");
    clear(
      users,
      list.map((u) => {
        const role = h(
          "select",
          { "aria-label": `Role of ${u.username}`, onchange: (e) => run(async () => { await call("PATCH", `/api/auth/users/${u.id}`, { body: { role: e.target.value } }); notify(`${u.username} is now ${e.target.value}; their sessions ended.`); await loadUsers(); }) },
          ROLES.map((r) => h("option", { value: r, selected: r === u.role }, r)),
        );
        return h(
          "tr",
          { dataset: { id: u.id } },
          h("td", {}, u.username),
          h("td", {}, u.display_name || "—"),
          h("td", {}, role),
          h("td", {}, u.disabled ? badge("disabled") : badge("active", "online"), u.must_change_password ? badge("must change password", "stale") : null),
          h(
            "td",
            { class: "actions" },
            h("button", { type: "button", class: "secondary", onclick: () => run(async () => { await call("PATCH", `/api/auth/users/${u.id}`, { body: { disabled: !u.disabled } }); await loadUsers(); }) }, u.disabled ? "Enable" : "Disable"),
            h("button", { type: "button", class: "secondary", onclick: () => run(async () => { const otp = await call("POST", `/api/auth/users/${u.id}/reset-password`); clear(shown, secretBox(`One-time password for ${u.username}`, otp.one_time_password, `Works until ${time(otp.expires_at)}; they must choose a new password at login.`)); await loadUsers(); }) }, "Reset password"),
            h("button", { type: "button", class: "secondary", onclick: () => run(async () => { await call("POST", `/api/auth/users/${u.id}/unlock`); notify(`${u.username} unlocked.`); }) }, "Unlock"),
            h("button", { type: "button", class: "secondary", onclick: () => run(() => loadSessions(u)) }, "Sessions"),
          ),
        );
      }),
    );
  }

  async function loadSessions(u) {
    const data = await call("GET", "/api/auth/sessions", { query: u.id === currentUser().subject ? {} : { user_id: u.id } });
    clear(
      sessions,
      data.sessions.length
        ? data.sessions.map((s) =>
            h("tr", {}, h("td", {}, u.username), h("td", {}, time(s.created_at)), h("td", {}, time(s.last_used_at)), h("td", {}, s.client_addr || "—"), h("td", {}, (s.user_agent || "—").slice(0, 60)), h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => run(async () => { await call("DELETE", `/api/auth/sessions/${s.id}`); await loadSessions(u); }) }, "End"))),
          )
        : h("tr", {}, h("td", { colspan: "6" }, `${u.username} has no live sessions.`)),
    );
  }

  async function loadInvitations() {
    const data = await call("GET", "/api/auth/invitations");
    clear(
      invitations,
      data.invitations.map((i) =>
        h("tr", {}, h("td", {}, i.role), h("td", {}, badge(i.state)), h("td", {}, time(i.created_at)), h("td", {}, time(i.expires_at)), h("td", {}, i.state === "unused" ? h("button", { type: "button", class: "secondary", onclick: () => run(async () => { await call("DELETE", `/api/auth/invitations/${i.id}`); await loadInvitations(); }) }, "Revoke") : null)),
      ),
    );
  }

  async function loadKeys() {
    const data = await call("GET", "/api/auth/api-keys");
    clear(
      keys,
      data.api_keys.map((k) =>
        h("tr", {}, h("td", {}, k.name), h("td", {}, k.kind), h("td", {}, h("code", {}, k.prefix)), h("td", {}, k.scopes.join(", ")), h("td", {}, time(k.last_used_at)), h("td", {}, time(k.expires_at)), h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => run(async () => { await call("DELETE", `/api/auth/api-keys/${k.id}`); await loadKeys(); }) }, "Revoke"))),
      ),
    );
  }

  async function createUser() {
    const form = await ask(
      "New user",
      [
        field("Username", h("input", { name: "username", required: true, pattern: "[a-z0-9][a-z0-9._\\-]*", minlength: "3", maxlength: "64" }), "Lower case letters, digits, . _ -"),
        field("Display name", h("input", { name: "display_name", maxlength: "128" })),
        field("Role", h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r }, r)))),
        field("Initial password", h("input", { name: "password", type: "password", required: true, minlength: "12", autocomplete: "new-password" }), "At least 12 characters, not a common password."),
      ],
      "Create",
    );
    if (!form) return;
    await run(async () => {
      await call("POST", "/api/auth/users", { body: Object.fromEntries(form) });
      notify(`User ${form.get("username")} created.`);
      await loadUsers();
    });
  }

  async function invite() {
    const form = await ask("New invitation", [field("Role", h("select", { name: "role" }, ROLES.map((r) => h("option", { value: r }, r)))), field("Valid for (hours)", h("input", { name: "hours", type: "number", min: "1", max: "720", value: "72" }))], "Invite");
    if (!form) return;
    await run(async () => {
      const inv = await call("POST", "/api/auth/invitations", { body: { role: form.get("role"), expires_in_hours: Number(form.get("hours")) } });
      clear(shown, secretBox(`Invitation to ${inv.role}`, inv.invite_token, `Single use, until ${time(inv.expires_at)}: the invitee registers with POST /api/auth/register.`));
      await loadInvitations();
    });
  }

  async function newKey() {
    const form = await ask(
      "New API key",
      [
        field("Name", h("input", { name: "name", required: true, maxlength: "100" })),
        field("Kind", h("select", { name: "kind" }, h("option", { value: "service" }, "service"), h("option", { value: "sensor" }, "sensor"))),
        field("Sensor id (sensor keys)", h("input", { name: "sensor_id" })),
        field("Scopes (comma-separated)", h("input", { name: "scopes", required: true, value: "alerts:read" }), "A sensor key may hold only sensors:ingest."),
        field("Expires in days", h("input", { name: "days", type: "number", min: "1", max: "365" })),
      ],
      "Create",
    );
    if (!form) return;
    await run(async () => {
      const body = { name: form.get("name"), kind: form.get("kind"), scopes: form.get("scopes").split(",").map((s) => s.trim()).filter(Boolean) };
      if (form.get("sensor_id")) body.sensor_id = form.get("sensor_id");
      if (form.get("days")) body.expires_in_days = Number(form.get("days"));
      const key = await call("POST", "/api/auth/api-keys", { body });
      clear(shown, secretBox(`API key ${key.name}`, key.secret, "Shown once: store it now."));
      await loadKeys();
    });
  }

  await Promise.all([loadUsers(), loadInvitations(), loadKeys()]);
  return page(
    "Users",
    shown,
    h("section", {}, h("div", { class: "row" }, h("h2", {}, "Accounts"), h("button", { type: "button", onclick: createUser }, "New user"), h("button", { type: "button", class: "secondary", onclick: invite }, "Invite")), h("div", { class: "scroll" }, table(["Username", "Name", "Role", "State", "Actions"], users))),
    h("section", {}, h("h2", {}, "Sessions"), h("div", { class: "scroll" }, table(["User", "Started", "Last used", "Address", "Browser", ""], sessions, "Choose Sessions on a user to list theirs"))),
    h("section", {}, h("h2", {}, "Invitations"), h("div", { class: "scroll" }, table(["Role", "State", "Created", "Expires", ""], invitations))),
    h("section", {}, h("div", { class: "row" }, h("h2", {}, "API keys"), h("button", { type: "button", onclick: newKey }, "New API key")), h("div", { class: "scroll" }, table(["Name", "Kind", "Prefix", "Scopes", "Last used", "Expires", ""], keys))),
  );
}
