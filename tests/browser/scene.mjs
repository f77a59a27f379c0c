// What the browser test and the console bench share: the environment
// tests/browser/main.rs passes, the API as a scene-setter, and the browser.

import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";

export const BASE = process.env.VIGIL_BROWSER_BASE_URL;
export const ADMIN = process.env.VIGIL_BROWSER_ADMIN_TOKEN;
export const PASSWORD = "a perfectly fine passphrase";

/** One API call (JSON in and out); a refusal throws with its status and body. */
export async function api(method, path, { token = ADMIN, body, headers = {} } = {}) {
  const response = await fetch(BASE + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A new user of `role` with the shared password; its name starts with `prefix`. */
export async function createUser(role, prefix) {
  const username = `${prefix}-${randomUUID().slice(0, 8)}`;
  await api("POST", "/api/auth/users", { body: { username, role, password: PASSWORD } });
  return { username };
}

/** Debian's Chromium, headless. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.VIGIL_BROWSER_CHROMIUM,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}
