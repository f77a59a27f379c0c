// Live updates from the relay's WebSocket (README: "Relay").
//
// One socket per page load. It authenticates with the access token in its
// first message (never the URL), subscribes to the channels pages ask for,
// re-authenticates after each token refresh, resumes from the last event id
// after a reconnect (or takes a new snapshot when told to resync), and
// reconnects with backoff. Pages register a handler per channel; it is called
// with each snapshot and event.

import { refresh, token, tokenSecondsLeft } from "./api.js";

const handlers = new Map(); // channel -> Set(fn)
let socket = null;
let relayUrl = null;
let lastEventId = null;
let backoff = 500;
let state = "off";
let stateListener = () => {};
let authTimer = null;

export function onState(fn) {
  stateListener = fn;
  fn(state);
}

function setState(next) {
  state = next;
  stateListener(next);
}

export function configure(url) {
  relayUrl = url;
}

/** Call `fn(message)` for every snapshot and event of `channel`; returns an unsubscribe. */
export function listen(channel, fn) {
  if (!handlers.has(channel)) handlers.set(channel, new Set());
  handlers.get(channel).add(fn);
  if (socket?.readyState === WebSocket.OPEN && state === "live") subscribe([channel]);
  return () => {
    handlers.get(channel)?.delete(fn);
  };
}

function send(message) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function subscribe(channels) {
  if (channels.length) send({ type: "subscribe", channels });
}

function scheduleReauth() {
  clearTimeout(authTimer);
  // Before the token expires: refresh it (the page does too) and hand it over.
  const wait = Math.max(5, tokenSecondsLeft() - 60) * 1000;
  authTimer = setTimeout(async () => {
    if (tokenSecondsLeft() < 90) await refresh();
    send({ type: "auth", token: token() });
    scheduleReauth();
  }, wait);
}

export function connect() {
  if (!relayUrl || !token() || socket) return;
  setState("connecting");
  const ws = new WebSocket(relayUrl);
  socket = ws;
  ws.addEventListener("open", () => send({ type: "auth", token: token() }));
  ws.addEventListener("message", (e) => {
    let msg;
    try {
      msg = JSON.parse(e.data);
    } catch {
      return;
    }
    if (msg.type === "ack" && msg.for === "auth" && state !== "live") {
      setState("live");
      backoff = 500;
      scheduleReauth();
      if (lastEventId !== null) send({ type: "resume", last_event_id: lastEventId });
      subscribe([...handlers.keys()].filter((c) => handlers.get(c).size));
    } else if (msg.type === "resync_required") {
      lastEventId = null;
      subscribe([...handlers.keys()]);
    } else if (msg.type === "snapshot" || msg.type === "event") {
      if (msg.type === "event" && typeof msg.id === "number") lastEventId = Math.max(lastEventId ?? 0, msg.id);
      if (msg.type === "snapshot" && typeof msg.as_of === "number") lastEventId = Math.max(lastEventId ?? 0, msg.as_of);
      for (const fn of handlers.get(msg.channel) || []) fn(msg);
    }
  });
  ws.addEventListener("close", (e) => {
    socket = null;
    clearTimeout(authTimer);
    if (state === "closed") return;
    setState(e.code === 4403 ? "forbidden" : "reconnecting");
    if (e.code === 4403) return;
    const wait = backoff;
    backoff = Math.min(backoff * 2, 15000);
    setTimeout(async () => {
      if (e.code === 4401) await refresh();
      connect();
    }, wait);
  });
}

export function disconnect() {
  setState("closed");
  clearTimeout(authTimer);
  socket?.close(1000);
  socket = null;
  lastEventId = null;
}
