// The console: a hash router over the pages in js/pages/, the navigation
// (only what the signed-in role may see), and the session's start (resumed
// from the refresh cookie) and end.

import { can, currentUser, logout, onSessionChange, pendingStep, refresh, resume, tokenSecondsLeft } from "./js/api.js";
import * as live from "./js/live.js";
import { clear, h } from "./js/ui.js";
import { loginPage } from "./js/pages/login.js";
import { queuePage } from "./js/pages/queue.js";
import { alertsPage } from "./js/pages/alerts.js";
import { threatsPage } from "./js/pages/threats.js";
import { metricsPage } from "./js/pages/metrics.js";
import { sensorsPage } from "./js/pages/sensors.js";
import { evidencePage } from "./js/pages/evidence.js";
import { usersPage } from "./js/pages/users.js";
import { apiPage } from "./js/pages/api.js";

// route -> [label, permission needed to see it, page]
const ROUTES = {
  queue: ["Decisions", "decisions:read", queuePage],
  alerts: ["Alerts", "alerts:read", alertsPage],
  threats: ["Threats", "threats:read", threatsPage],
  metrics: ["Metrics", "metrics:read", metricsPage],
  sensors: ["Sensors", "sensors:read", sensorsPage],
  evidence: ["Evidence", "export:create", evidencePage],
  users: ["Users", "users:manage", usersPage],
  api: ["API", null, apiPage],
};

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
let cleanups = [];
let refreshTimer = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  return { route: path.split("/")[0] || "", params: new URLSearchParams(query) };
}

function renderNav(me) {
  clear(
    nav,
    me
      ? h(
          "ul",
          {},
          Object.entries(ROUTES)
            .filter(([, [, perm]]) => !perm || can(perm))
            .map(([key, [label]]) => h("li", {}, h("a", { href: `#/${key}`, dataset: { route: key } }, label))),
        )
      : null,
  );
  clear(
    who,
    me
      ? [
          h("span", { class: "me" }, `${me.user?.display_name || me.user?.username || me.subject} · ${me.role}`),
          h("span", { id: "live-state", class: "live", role: "status" }),
          h("button", { type: "button", class: "secondary", id: "logout", onclick: signOut }, "Log out"),
        ]
      : null,
  );
  if (me) live.onState((s) => {
    const el = document.getElementById("live-state");
    if (el) {
      el.textContent = { live: "● live", connecting: "○ connecting", reconnecting: "○ reconnecting", off: "○ no live updates", forbidden: "○ live refused", closed: "" }[s] || s;
      el.className = `live ${s}`;
    }
  });
}

async function signOut() {
  live.disconnect();
  await logout();
  location.hash = "#/login";
}

function keepFresh() {
  clearTimeout(refreshTimer);
  // Refresh a minute before the access token expires, so pages never see a 401.
  refreshTimer = setTimeout(async () => {
    if (currentUser() && (await refresh())) keepFresh();
  }, Math.max(10, tokenSecondsLeft() - 60) * 1000);
}

async function render() {
  for (const fn of cleanups) fn();
  cleanups = [];
  const { route, params } = parseHash();
  const me = currentUser();
  if (route === "login" || !me) {
    if (me && route === "login") {
      location.hash = params.get("next") || "#/queue";
      return;
    }
    if (!me && route !== "login") {
      location.hash = "#/login" + (route ? "?next=" + encodeURIComponent(location.hash) : "");
      return;
    }
    clear(view, loginPage({ next: params.get("next"), done: started }));
    focusHeading();
    return;
  }
  if (me.user?.must_change_password || pendingStep()) {
    clear(view, loginPage({ pending: pendingStep() || "password_change", done: started }));
    focusHeading();
    return;
  }
  const entry = ROUTES[route];
  if (!entry || (entry[1] && !can(entry[1]))) {
    location.hash = "#/queue";
    return;
  }
  for (const a of nav.querySelectorAll("a")) {
    if (a.dataset.route === route) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const ctx = { params, onLeave: (fn) => cleanups.push(fn) };
  try {
    clear(view, await entry[2](ctx));
  } catch (err) {
    clear(view, h("p", { class: "notice error", role: "alert" }, `This page could not load: ${err.message}`));
  }
  focusHeading();
}

function focusHeading() {
  view.querySelector("h1")?.focus({ preventScroll: true });
}

/** After a login, or a resumed session: go where the user was headed. */
function started(next) {
  keepFresh();
  live.connect();
  location.hash = next && next.startsWith("#/") && !next.startsWith("#/login") ? next : "#/queue";
  render();
}

async function boot() {
  onSessionChange(renderNav);
  try {
    const config = await (await fetch("/config.json")).json();
    live.configure(config.relay_url);
  } catch {
    live.configure(null);
  }
  window.addEventListener("hashchange", render);
  if (await resume()) {
    keepFresh();
    live.connect();
  }
  render();
}

boot();
