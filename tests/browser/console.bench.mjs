// `cargo xtask bench console`: time to a usable decision queue with 1,000
// pending decisions while alerts arrive live (100 a minute), and the bytes a
// cold load transfers. Started by main.rs like console.test.mjs (same
// environment), with VIGIL_BROWSER_BENCH set. Prints figures; asserts nothing.

import { randomUUID } from "node:crypto";
import { gzipSync } from "node:zlib";
import { BASE, PASSWORD, api, createUser, launch } from "./scene.mjs";

const DECISIONS = Number(process.env.VIGIL_BENCH_DECISIONS || 1000);
const RUNS = 5;

const levels = ["critical", "high", "medium", "low"];
async function submit(i) {
  await api("POST", "/api/decisions", {
    headers: { "idempotency-key": randomUUID() },
    body: {
      source: "bench", subject: { kind: "alert", id: randomUUID() }, proposed_action: "block_ip",
      parameters: { target: `203.0.113.${(i % 250) + 1}` }, threat_level: levels[i % 4], confidence: 0.9,
      summary: `Bench decision ${i}`, rationale: "Seeded by cargo xtask bench console.", evidence: { refs: [], watchlist_match: false },
    },
  });
}

const seeded = Date.now();
let next = 0;
await Promise.all(Array.from({ length: 8 }, async () => {
  while (next < DECISIONS) await submit(next++);
}));
console.log(`seeded ${DECISIONS} pending decisions in ${((Date.now() - seeded) / 1000).toFixed(1)} s`);

const { username } = await createUser("analyst", "bench");

// 100 alerts a minute while the page loads: a new source every 0.6 s.
let alerts = 0;
const feed = setInterval(() => {
  alerts += 1;
  api("POST", "/api/threats/events", {
    body: { event_id: randomUUID(), sensor_id: "bench-sensor", observed_at: new Date().toISOString(), event_type: "exploit_attempt",
      source_ip: `198.51.100.${alerts % 250}`, dest_ip: "10.20.1.5", dest_port: 502, protocol: "tcp", severity_hint: "critical", payload: {} },
  }).catch(() => {});
}, 600);

const browser = await launch();
const times = [];
let bytes = 0;
let gzipped = 0;
let requests = 0;
for (let run = 0; run < RUNS; run++) {
  // A cold browser with a live session: the refresh cookie from a login in
  // this context, and the hint the console checks before refreshing.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const login = await context.request.post(BASE + "/api/auth/login", { data: { username, password: PASSWORD, session: "cookie" } });
  if (!login.ok()) throw new Error(`login: ${login.status()}`);
  await context.addInitScript(() => localStorage.setItem("vigil.session", "1"));
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  let runBytes = 0;
  let runRequests = 0;
  cdp.on("Network.loadingFinished", (e) => {
    runBytes += e.encodedDataLength;
    runRequests += 1;
  });
  const bodies = new Map();
  page.on("response", async (r) => {
    if (r.request().method() === "GET" && r.url().startsWith(BASE) && !r.url().includes("/api/decisions")) {
      try {
        bodies.set(r.url(), (await r.body()).length ? gzipSync(await r.body()).length : 0);
      } catch {
        // a response without a body
      }
    }
  });
  await page.goto(BASE + "/#/queue");
  // Usable: the first page of the queue is on screen with its actions.
  // (Selectors, not waitForFunction: the page's CSP forbids the eval that needs.)
  await page.waitForSelector("tbody tr:nth-child(200) button[data-command]", { timeout: 60000 });
  const usable = await page.evaluate(() => performance.now());
  await page.waitForSelector(`tbody tr:nth-child(${DECISIONS})`, { timeout: 60000 });
  const all = await page.evaluate(() => performance.now());
  times.push([usable, all]);
  if (run === 0) {
    bytes = runBytes;
    requests = runRequests;
    gzipped = [...bodies.values()].reduce((a, b) => a + b, 0);
  }
  await context.close();
}
clearInterval(feed);
await browser.close();

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`time to a usable queue (first 200 rows with actions), ${RUNS} cold loads: median ${median(times.map((t) => t[0])).toFixed(0)} ms (${times.map((t) => t[0].toFixed(0)).join(", ")})`);
console.log(`time until all ${DECISIONS} decisions are listed: median ${median(times.map((t) => t[1])).toFixed(0)} ms`);
console.log(`first load: ${requests} requests, ${(bytes / 1024).toFixed(0)} KiB transferred as served (the app does not compress: Spin sends bodies as the component writes them)`);
console.log(`the console's static files gzip to ${(gzipped / 1024).toFixed(0)} KiB (what a compressing proxy or CDN in front would transfer for them); API answers not counted in that figure`);
console.log(`alerts posted during the runs: ${alerts}`);
