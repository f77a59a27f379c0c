// The session and every call to the API.
//
// The access token lives in this module's memory only. The refresh token is
// an HttpOnly cookie the page cannot read (a login with "session": "cookie"):
// `refresh()` exchanges it for a new access token, sending the X-Vigil-CSRF
// header the auth component requires on that path. A 401 is answered by one
// refresh and a retry; when that fails too, the user goes to the login page
// and comes back to where they were.

let accessToken = null;
let accessExpiresAt = 0;
let me = null;
let refreshing = null;
const listeners = new Set();

/** A refused request: the RFC 7807 problem document and the status. */
export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export function onSessionChange(fn) {
  listeners.add(fn);
}

function changed() {
  for (const fn of listeners) fn(me);
}

export function currentUser() {
  return me;
}

export function token() {
  return accessToken;
}

/**
 * The step the signed-in user owes before anything else (`password_change`,
 * `mfa_enrolment`), from the access token's `pending` claim (read, not
 * verified: the API enforces it), or null.
 */
export function pendingStep() {
  if (!accessToken) return null;
  try {
    const payload = accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).pending || null;
  } catch {
    return null;
  }
}

/** Seconds until the access token expires. */
export function tokenSecondsLeft() {
  return Math.max(0, Math.round((accessExpiresAt - Date.now()) / 1000));
}

/** Whether the signed-in user holds `permission` (from /api/auth/me). */
export function can(permission) {
  return Boolean(me?.permissions?.includes(permission));
}

const ROLES = ["viewer", "analyst", "supervisor", "admin"];
export function atLeast(role) {
  return ROLES.indexOf(me?.role) >= ROLES.indexOf(role);
}

async function readBody(response) {
  const type = response.headers.get("content-type") || "";
  if (response.status === 204) return null;
  if (type.includes("json")) return response.json();
  return response.text();
}

// A hint, not a secret: whether this browser logged in (so a page load
// tries the refresh cookie only then, instead of a refresh bound to fail).
const HINT = "vigil.session";

function takeTokens(tokens) {
  accessToken = tokens.access_token;
  accessExpiresAt = Date.now() + tokens.expires_in * 1000;
  localStorage.setItem(HINT, "1");
}

/** Exchange the refresh cookie for a new access token; false when there is no live session. */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const response = await fetch("/api/auth/refresh", {
          method: "POST",
          headers: { "content-type": "application/json", "x-vigil-csrf": "1" },
          body: "{}",
          credentials: "same-origin",
        });
        if (!response.ok) return false;
        takeTokens(await response.json());
        return true;
      } catch {
        return false;
      } finally {
        setTimeout(() => (refreshing = null), 0);
      }
    })();
  }
  return refreshing;
}

/** Load who we are; null when not signed in. */
export async function loadMe() {
  me = await call("GET", "/api/auth/me", { noRedirect: true });
  changed();
  return me;
}

/** Resume the session from the cookie (page load); the user or null. */
export async function resume() {
  if (!localStorage.getItem(HINT)) return null;
  if (!(await refresh())) {
    localStorage.removeItem(HINT);
    return null;
  }
  try {
    return await loadMe();
  } catch {
    return null;
  }
}

function loginBody(extra) {
  return JSON.stringify({ ...extra, session: "cookie" });
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    credentials: "same-origin",
  });
  const data = await readBody(response);
  if (!response.ok) throw new ApiProblem(response.status, data);
  return { data, response };
}

/** Step one: `{mfa_token}` when a second factor is due, else signed in. */
export async function login(username, password) {
  const { data } = await post("/api/auth/login", loginBody({ username, password }));
  if (data.mfa_required) return { mfaToken: data.mfa_token };
  takeTokens(data);
  await loadMe();
  return {};
}

/** Step two: a TOTP code or a recovery code. */
export async function loginMfa(mfaToken, { code, recoveryCode }) {
  const body = { mfa_token: mfaToken };
  if (recoveryCode) body.recovery_code = recoveryCode;
  else body.code = code;
  const { data } = await post("/api/auth/login/mfa", loginBody(body));
  takeTokens(data);
  await loadMe();
}

export async function logout() {
  try {
    if (accessToken) await call("POST", "/api/auth/logout", { noRedirect: true });
  } catch {
    // The session may already be gone; the cookie is cleared either way below.
  }
  accessToken = null;
  me = null;
  localStorage.removeItem(HINT);
  changed();
}

/** Forget the session locally (e.g. the refresh cookie no longer works). */
function lost() {
  accessToken = null;
  me = null;
  changed();
  const back = location.hash && !location.hash.startsWith("#/login") ? location.hash : "";
  location.hash = "#/login" + (back ? "?next=" + encodeURIComponent(back) : "");
}

/**
 * One API call. `options`: body (JSON), ifMatch, query (object), raw (return
 * the Response), noRedirect (a 401 throws instead of going to login).
 * Answers { data, etag, status } or throws ApiProblem.
 */
export async function request(method, path, options = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(options.query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const send = () => {
    const headers = { accept: "application/json" };
    if (accessToken) headers.authorization = `Bearer ${accessToken}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    if (options.ifMatch) headers["if-match"] = options.ifMatch;
    if (options.headers) Object.assign(headers, options.headers);
    return fetch(url, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "same-origin",
    });
  };
  let response = await send();
  if (response.status === 401 && accessToken !== null && (await refresh())) {
    response = await send();
  }
  if (response.status === 401 && !options.noRedirect) {
    lost();
  }
  if (options.raw && response.ok) return response;
  const data = await readBody(response);
  if (!response.ok) throw new ApiProblem(response.status, data);
  return { data, etag: response.headers.get("etag"), status: response.status, headers: response.headers };
}

/** `request` answering the body only. */
export async function call(method, path, options) {
  return (await request(method, path, options)).data;
}

export const get = (path, query) => call("GET", path, { query });
