// Small DOM helpers: elements built with properties (never HTML strings, so
// nothing a server sends can become markup), formatting, dialogs, notices.

/** h("button", {class: "x", onclick}, "text", child…) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export function time(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** "4m 05s", "-1h 02m" (overdue) until `iso`. */
export function countdown(iso, now = Date.now()) {
  let s = Math.round((new Date(iso).getTime() - now) / 1000);
  const sign = s < 0 ? "−" : "";
  s = Math.abs(s);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (d) return `${sign}${d}d ${pad(hh)}h`;
  if (hh) return `${sign}${hh}h ${pad(mm)}m`;
  return `${sign}${mm}m ${pad(ss)}s`;
}

export function pct(x) {
  return x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)} %`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** A message in the page's live region (read out by screen readers). */
export function notify(text, kind = "info") {
  const region = document.getElementById("notices");
  const item = h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  region.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 12000 : 6000);
}

/** The text to show for a refused request. */
export function problemText(err) {
  const p = err.problem || {};
  const fields = (p.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ");
  return [p.title || err.message, p.detail, fields].filter(Boolean).join(" — ");
}

/**
 * A modal form in a <dialog>: `fields` are elements (labels with inputs);
 * resolves with the FormData on submit, or null when cancelled.
 */
export function ask(title, fields, submitLabel = "OK") {
  return new Promise((resolve) => {
    const form = h(
      "form",
      { method: "dialog", class: "stack" },
      h("h2", {}, title),
      fields,
      h(
        "div",
        { class: "row end" },
        h("button", { type: "button", class: "secondary", value: "cancel", onclick: () => dialog.close("cancel") }, "Cancel"),
        h("button", { type: "submit", value: "ok" }, submitLabel),
      ),
    );
    const dialog = h("dialog", { "aria-label": title }, form);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const data = new FormData(form);
      dialog.close("ok");
      resolve(data);
    });
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "ok") resolve(null);
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function field(label, input, hint) {
  return h("label", {}, h("span", {}, label), input, hint ? h("small", {}, hint) : null);
}

export function badge(text, kind = text) {
  return h("span", { class: `badge ${String(kind).toLowerCase()}` }, text);
}

export function table(headers, rows, caption) {
  return h(
    "table",
    {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    rows instanceof HTMLTableSectionElement ? rows : h("tbody", {}, rows),
  );
}

/** Section wrapper for a page: its heading and content. */
export function page(title, ...content) {
  document.title = `${title} — Vigil`;
  return h("section", { class: "page", "aria-labelledby": "page-title" }, h("h1", { id: "page-title", tabindex: "-1" }, title), content);
}
