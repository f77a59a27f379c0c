// The console in headless Chromium (Debian's), driven by playwright-core.
// Started by tests/browser/main.rs, which runs the app and a relay and passes:
//   VIGIL_BROWSER_BASE_URL  the app (http://127.0.0.1:<port>)
//   VIGIL_BROWSER_ADMIN_TOKEN  an admin access token, to set the scene over the API
//   VIGIL_BROWSER_CHROMIUM  the browser binary
//   VIGIL_BROWSER_SCREENSHOTS  where to write a screenshot of each page visited
//   VIGIL_BROWSER_VIGIL  the `vigil` binary, to verify a downloaded evidence pack
// Prints one line per case, `ok - name` or `not ok - name :: why`, and exits 1 if any failed.

import { createHmac, randomUUID } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { BASE, PASSWORD, api, createUser, launch } from "./scene.mjs";

const SHOTS = process.env.VIGIL_BROWSER_SCREENSHOTS;
const WAIT = 20000;
mkdirSync(SHOTS, { recursive: true });

// ---- users, 2FA codes and decisions, set up over the API (scene.mjs) -------

function base32(secret) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** RFC 6238 (SHA-1, 6 digits, 30 s) at `step`. */
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, "0");
}
const nowStep = () => Math.floor(Date.now() / 30000);

/** An analyst with 2FA on: the secret and the last step a code was used at. */
async function mfaUser(role, prefix) {
  const user = await createUser(role, prefix);
  const login = await api("POST", "/api/auth/login", { token: "", body: { username: user.username, password: PASSWORD } });
  const { secret } = await api("POST", "/api/auth/mfa/enroll", { token: login.access_token, body: { password: PASSWORD } });
  const step = nowStep();
  await api("POST", "/api/auth/mfa/confirm", { token: login.access_token, body: { code: totp(secret, step) } });
  return { ...user, secret, lastStep: step };
}

async function submitDecision(summary, action = "block_ip") {
  return api("POST", "/api/decisions", {
    headers: { "idempotency-key": randomUUID() },
    body: {
      source: "browser-test",
      subject: { kind: "alert", id: randomUUID() },
      proposed_action: action,
      parameters: { target: `203.0.113.${Math.floor(Math.random() * 200) + 1}` },
      threat_level: "high",
      confidence: 0.9,
      summary,
      rationale: "Submitted by the browser test.",
      evidence: { refs: ["browser-test"], watchlist_match: false },
    },
  });
}

// ---- the browser -----------------------------------------------------------

const browser = await launch();
const problems = []; // console errors and CSP violations, on any page
let failed = 0;
const browserPages = [];
let expectFailedRequest = false;

async function newPage(label, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  browserPages.push(page);
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    // The stale-ETag case provokes a 412 on purpose; Chromium logs every failed request.
    if (expectFailedRequest && msg.text().includes("status of 412")) return;
    problems.push(`${label}: console error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => problems.push(`${label}: page error: ${err.message}`));
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

async function step(name, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (err) {
    failed += 1;
    // A dialog left open by the failure would block the next cases.
    for (const p of browserPages) if (!p.isClosed()) await p.keyboard.press("Escape").catch(() => {});
    console.log(`not ok - ${name} :: ${String(err.stack || err).split("\n").slice(0, 4).join(" | ")}`);
  }
}

async function logIn(page, user, shotPrefix) {
  await page.goto(BASE + "/");
  await page.waitForSelector("#login-form", { timeout: WAIT });
  if (shotPrefix) await shot(page, `${shotPrefix}-login`);
  await page.getByLabel("Username").fill(user.username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  if (user.secret) {
    await page.waitForSelector("#mfa-form", { timeout: WAIT });
    if (shotPrefix) await shot(page, `${shotPrefix}-2fa`);
    // A code is accepted once: never the step the enrolment used.
    const code = totp(user.secret, Math.max(nowStep(), user.lastStep + 1));
    await page.getByLabel("Authentication code").fill(code);
    await page.getByRole("button", { name: "Verify" }).click();
  }
  await page.waitForURL(/#\/queue/, { timeout: WAIT });
  await page.waitForSelector("h1:has-text('Decision queue')", { timeout: WAIT });
}

const analyst = await mfaUser("analyst", "browser-analyst");
const supervisor = await mfaUser("supervisor", "browser-supervisor");
const viewer = await createUser("viewer", "browser-viewer");
const admin = await createUser("admin", "browser-admin");
const page = await newPage("analyst");
let dismissed = null;
let awaitingSecond = null;

await step("log in with a password and a TOTP code; the refresh token is an HttpOnly cookie", async () => {
  await logIn(page, analyst, "01");
  const cookies = await page.context().cookies();
  const refresh = cookies.find((c) => c.name === "vigil_refresh");
  if (!refresh) throw new Error(`no refresh cookie: ${JSON.stringify(cookies)}`);
  if (!refresh.httpOnly || !refresh.secure || refresh.sameSite !== "Strict" || refresh.path !== "/api/auth/refresh") {
    throw new Error(`cookie attributes: ${JSON.stringify(refresh)}`);
  }
  await page.waitForSelector("#live-state.live", { timeout: WAIT });
  await shot(page, "02-queue");
});

await step("a decision submitted through the API appears in the queue without reload", async () => {
  const summary = `Block the scanner ${randomUUID().slice(0, 6)}`;
  await submitDecision(summary);
  await page.waitForSelector(`tr:has-text("${summary}")`, { timeout: WAIT });
  await shot(page, "03-queue-live");
});

await step("claim, then dismiss with a reason from the picker", async () => {
  const summary = `Dismiss me ${randomUUID().slice(0, 6)}`;
  const d = await submitDecision(summary);
  const row = page.locator(`tr[data-id="${d.id}"]`);
  await row.waitFor({ timeout: WAIT });
  await row.locator('button[data-command="claim"]').click();
  await row.locator('button[data-command="dismiss"]').waitFor({ timeout: WAIT });
  await row.locator('button[data-command="dismiss"]').click();
  const dialog = page.locator("dialog[open]");
  await dialog.locator('select[name="reason"]').selectOption("duplicate");
  await shot(page, "04-dismiss-dialog");
  await dialog.getByRole("button", { name: "Dismiss" }).click();
  await row.waitFor({ state: "detached", timeout: WAIT });
  const after = await api("GET", `/api/decisions/${d.id}`);
  dismissed = d.id;
  if (after.status !== "dismissed") throw new Error(`status ${after.status}`);
  const last = after.history[after.history.length - 1];
  if (last.reason !== "duplicate") throw new Error(`history ${JSON.stringify(last)}`);
});

await step("a decision changed by someone else meanwhile: the 412 is explained and the row refreshed", async () => {
  const summary = `Stale ${randomUUID().slice(0, 6)}`;
  const d = await submitDecision(summary);
  const row = page.locator(`tr[data-id="${d.id}"]`);
  await row.waitFor({ timeout: WAIT });
  await row.locator('button[data-command="claim"]').click();
  await row.locator('button[data-command="reject"]').click();
  const dialog = page.locator("dialog[open]");
  await dialog.locator("textarea").fill("not needed");
  expectFailedRequest = true;
  // Meanwhile a supervisor releases it (the page still holds the old ETag).
  const current = await api("GET", `/api/decisions/${d.id}`);
  await api("POST", `/api/decisions/${d.id}/release`, { body: {}, headers: { "if-match": `"${current.version}"` } });
  await dialog.getByRole("button", { name: "Reject" }).click();
  await page.locator(".notice.error", { hasText: "changed this decision" }).waitFor({ timeout: WAIT });
  await row.locator('button[data-command="claim"]').waitFor({ timeout: WAIT });
  expectFailedRequest = false;
  await shot(page, "04b-stale-etag");
  const after = await api("GET", `/api/decisions/${d.id}`);
  if (after.status !== "pending") throw new Error(`status ${after.status}`);
});

await step("the keyboard claims the selected decision (shortcuts listed on the page)", async () => {
  const summary = `Keyboard ${randomUUID().slice(0, 6)}`;
  const d = await submitDecision(summary, "notify");
  const row = page.locator(`tr[data-id="${d.id}"]`);
  await row.waitFor({ timeout: WAIT });
  await row.locator("button.link").click();
  await page.locator("body").press("c");
  await row.locator('button[data-command="approve"]').waitFor({ timeout: WAIT });
  await page.locator("body").press("a");
  await row.waitFor({ state: "detached", timeout: WAIT });
  const after = await api("GET", `/api/decisions/${d.id}`);
  if (after.status !== "approved") throw new Error(`status ${after.status}`);
  await page.getByText("Keyboard shortcuts").click();
});

await step("a dispatch approved by the analyst waits for a supervisor's second approval", async () => {
  const summary = `Dispatch a patrol ${randomUUID().slice(0, 6)}`;
  const d = await submitDecision(summary, "dispatch");
  const row = page.locator(`tr[data-id="${d.id}"]`);
  await row.waitFor({ timeout: WAIT });
  await row.locator('button[data-command="claim"]').click();
  await row.locator('button[data-command="approve"]').click();
  await row.locator("text=awaiting second approval").waitFor({ timeout: WAIT });
  // The analyst is not offered the second approval.
  if (await row.locator('button[data-command="second-approval"]').count()) throw new Error("an analyst is offered the second approval");
  awaitingSecond = d.id;
});

await step("evidence: a pack is built, downloads, and vigil verify accepts it", async () => {
  await page.goto(BASE + "/#/evidence");
  await page.waitForSelector("h1:has-text('Evidence')", { timeout: WAIT });
  await page.locator('select[name="subject"]').selectOption("decision");
  await page.locator('input[name="id"]').fill(dismissed);
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: WAIT }), page.getByRole("button", { name: "Build pack" }).click()]);
  const zip = join(SHOTS, "evidence-pack.zip");
  await download.saveAs(zip);
  await page.waitForSelector("text=Pack built", { timeout: WAIT });
  await shot(page, "09-evidence");
  const out = spawnSync(process.env.VIGIL_BROWSER_VIGIL, ["verify", zip, "--jwks", BASE + "/api/export/keys"], { encoding: "utf8" });
  if (out.status !== 0 || !out.stdout.includes("VERIFIED")) throw new Error(`vigil verify: ${out.status} ${out.stdout} ${out.stderr}`);
});

await step("an alert pushed through the relay appears live, and is acknowledged", async () => {
  await page.goto(BASE + "/#/alerts");
  await page.waitForSelector("h1:has-text('Alerts')", { timeout: WAIT });
  await page.waitForSelector("#live-state.live", { timeout: WAIT });
  const source = `198.51.100.${Math.floor(Math.random() * 200) + 20}`;
  const events = Array.from({ length: 3 }, () => ({
    event_id: randomUUID(), sensor_id: "browser-sensor", observed_at: new Date().toISOString(),
    event_type: "exploit_attempt", source_ip: source, dest_ip: "10.20.1.5", dest_port: 502,
    protocol: "tcp", severity_hint: "critical", payload: { note: "browser test" },
  }));
  await api("POST", "/api/threats/events", { body: { events } });
  const row = page.locator(`tr:has-text("${source}")`);
  await row.waitFor({ timeout: WAIT });
  await shot(page, "05-alerts-live");
  await row.locator('button[data-command="acknowledge"]').click();
  await page.locator("#alert-status").selectOption("acknowledged");
  await page.locator(`tr:has-text("${source}")`).waitFor({ timeout: WAIT });
});

await step("threat explorer: filters, the score breakdown and ATT&CK links", async () => {
  await page.goto(BASE + "/#/threats");
  await page.waitForSelector("h1:has-text('Threat explorer')", { timeout: WAIT });
  await page.getByLabel("event type").selectOption("exploit_attempt");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.locator("tbody tr button.link").first().click();
  await page.waitForSelector("aside h3:has-text('Score breakdown')", { timeout: WAIT });
  const link = await page.locator('aside a[href^="https://attack.mitre.org/techniques/"]').count();
  if (!link) throw new Error("no ATT&CK link");
  await shot(page, "06-threats");
});

await step("metrics: KPI cards and charts render with data", async () => {
  await page.goto(BASE + "/#/metrics");
  await page.waitForSelector("h1:has-text('Metrics')", { timeout: WAIT });
  await page.waitForSelector("#chart-events canvas", { timeout: WAIT });
  await page.waitForSelector("#chart-alerts canvas", { timeout: WAIT });
  const events = await page.locator(".card:has-text('Events') strong").first().textContent();
  if (!(Number(events.replace(/\D/g, "")) > 0)) throw new Error(`events card: ${events}`);
  await shot(page, "07-metrics");
});

await step("sensors and API reference pages render", async () => {
  for (const [route, heading, name] of [["sensors", "Sensors", "08-sensors"], ["api", "API reference", "10-api"]]) {
    await page.goto(BASE + `/#/${route}`);
    await page.waitForSelector(`h1:has-text('${heading}')`, { timeout: WAIT });
    await shot(page, name);
  }
  if (await page.locator('#nav a[href="#/users"]').count()) throw new Error("an analyst is offered the users page");
});

await step("a reload keeps the session (refresh cookie with the CSRF header); logout ends it", async () => {
  await page.goto(BASE + "/#/alerts");
  await page.reload();
  await page.waitForSelector("h1:has-text('Alerts')", { timeout: WAIT });
  await page.locator("#logout").click();
  await page.waitForSelector("#login-form", { timeout: WAIT });
  const cookies = await page.context().cookies();
  if (cookies.some((c) => c.name === "vigil_refresh")) throw new Error("the cookie outlived the logout");
});

await step("a supervisor gives the second approval (2FA login)", async () => {
  const sp = await newPage("supervisor");
  await logIn(sp, supervisor);
  const row = sp.locator(`tr[data-id="${awaitingSecond}"]`);
  await row.locator('button[data-command="second-approval"]').click();
  const dialog = sp.locator("dialog[open]");
  await dialog.locator('input[name="approve"][value="yes"]').check();
  await shot(sp, "15-second-approval");
  await dialog.getByRole("button", { name: "Record" }).click();
  await row.waitFor({ state: "detached", timeout: WAIT });
  const after = await api("GET", `/api/decisions/${awaitingSecond}`);
  if (after.status !== "authorized") throw new Error(`status ${after.status}`);
  await sp.context().close();
});

await step("a supervisor without 2FA is led through the enrolment its role requires", async () => {
  const fresh = await createUser("supervisor", "browser-new-supervisor");
  const np = await newPage("new supervisor");
  await np.goto(BASE + "/");
  await np.getByLabel("Username").fill(fresh.username);
  await np.getByLabel("Password").fill(PASSWORD);
  await np.getByRole("button", { name: "Log in" }).click();
  await np.locator("#enrol-form").getByLabel("Password").fill(PASSWORD);
  await np.getByRole("button", { name: "Set up" }).click();
  const secret = (await np.locator("#mfa-secret").textContent()).trim();
  await shot(np, "16-mfa-enrolment");
  await np.getByLabel("Code from the app").fill(totp(secret, nowStep()));
  await np.getByRole("button", { name: "Turn on 2FA" }).click();
  await np.locator("#recovery-codes li").nth(9).waitFor({ timeout: WAIT });
  await np.locator("#recovery-saved").click();
  await np.waitForSelector("h1:has-text('Decision queue')", { timeout: WAIT });
  await np.waitForSelector("tbody tr", { timeout: WAIT });
  await np.context().close();
});

await step("a viewer sees the queue and alerts without any action buttons", async () => {
  const v = await newPage("viewer");
  await submitDecision(`For the viewer ${randomUUID().slice(0, 6)}`);
  await logIn(v, viewer);
  await v.waitForSelector("tbody tr", { timeout: WAIT });
  const buttons = await v.locator("td.actions button").count();
  if (buttons) throw new Error(`${buttons} action buttons in the queue`);
  await shot(v, "11-viewer-queue");
  await v.goto(BASE + "/#/alerts");
  await v.waitForSelector("h1:has-text('Alerts')", { timeout: WAIT });
  await v.locator("#alert-status").selectOption("all");
  await v.waitForSelector("tbody tr", { timeout: WAIT });
  const alertButtons = await v.locator("td.actions button").count();
  if (alertButtons) throw new Error(`${alertButtons} action buttons on alerts`);
  await v.context().close();
});

await step("an admin manages users and a sensor's configuration; the console works on a narrow screen", async () => {
  const a = await newPage("admin");
  await logIn(a, admin);
  await a.goto(BASE + "/#/users");
  await a.waitForSelector("h1:has-text('Users')", { timeout: WAIT });
  await a.waitForSelector(`tr:has-text("${analyst.username}")`, { timeout: WAIT });
  await shot(a, "12-users");
  await a.goto(BASE + "/#/sensors");
  await a.getByRole("button", { name: "New onboarding token" }).click();
  await a.locator("dialog[open]").getByRole("button", { name: "Issue" }).click();
  await a.waitForSelector("#onboarding-token", { timeout: WAIT });
  await shot(a, "13-sensor-onboarding");
  // A sensor's configuration, edited in place (PATCH with If-Match).
  const sensorId = `browser-config-${randomUUID().slice(0, 8)}`;
  await api("POST", "/api/sensors", { body: { id: sensorId, name: sensorId, kind: "honeypot" } });
  await a.goto(BASE + "/#/sensors");
  const row = a.locator(`tr[data-id="${sensorId}"]`);
  await row.waitFor({ timeout: WAIT });
  await row.getByRole("button", { name: "Edit" }).click();
  await a.locator("dialog[open] textarea").fill('{"sample_rate": 5, "ports": [22, 443]}');
  await a.locator("dialog[open]").getByRole("button", { name: "Save" }).click();
  await a.waitForSelector(`tr[data-id="${sensorId}"] code.config:has-text("sample_rate")`, { timeout: WAIT });
  const stored = await api("GET", `/api/sensors/${sensorId}`);
  const { sample_rate, ports, ...rest } = stored.config;
  if (sample_rate !== 5 || JSON.stringify(ports) !== "[22,443]" || Object.keys(rest).length) {
    throw new Error(`the configuration was not saved: ${JSON.stringify(stored.config)}`);
  }
  await a.setViewportSize({ width: 390, height: 844 });
  await a.goto(BASE + "/#/queue");
  await a.waitForSelector("h1:has-text('Decision queue')", { timeout: WAIT });
  await shot(a, "14-queue-narrow");
  await a.context().close();
});

await step("no console errors and no CSP violations on any page", async () => {
  if (problems.length) throw new Error(problems.join(" || "));
});

await browser.close();
process.exit(failed ? 1 : 0);
