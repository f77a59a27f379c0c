// The decision queue: every decision waiting for a person, by priority then
// SLA deadline, with a live countdown; kept current by the relay's
// `decisions` channel. Actions are offered only to roles that may take them,
// and only in the states where the state machine allows them. Each action
// sends the row's ETag: if someone changed it meanwhile (412) or the action
// no longer applies (409), the page says so and reloads the row.

import { ApiProblem, atLeast, call, can, currentUser, request } from "../api.js";
import { listen } from "../live.js";
import { ask, badge, clear, countdown, field, h, notify, page, problemText, table } from "../ui.js";

const OPEN = ["pending", "claimed", "escalated", "awaiting_second_approval"];
const MAX_PER_STATUS = 2000;
const PRIORITY_RANK = { P1: 1, P2: 2, P3: 3, P4: 4 };
const REASONS = [
  ["false_positive", "False positive"],
  ["false_positive_motion", "False positive: motion"],
  ["normal_behavior", "Normal behaviour"],
  ["camera_fault", "Camera fault"],
  ["weather", "Weather"],
  ["duplicate", "Duplicate"],
  ["test", "Test"],
  ["unknown", "Unknown (note required)"],
];

export const SHORTCUTS = [
  ["j / ↓", "next decision"],
  ["k / ↑", "previous decision"],
  ["c", "claim"],
  ["l", "release"],
  ["a", "approve"],
  ["r", "reject (with a note)"],
  ["d", "dismiss (with a reason)"],
  ["e", "escalate (with a note)"],
  ["s", "second approval (supervisors)"],
];

function sortQueue(list) {
  return list.sort(
    (a, b) =>
      PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] ||
      new Date(a.sla_deadline) - new Date(b.sla_deadline) ||
      a.id.localeCompare(b.id),
  );
}

/** What the signed-in user may do with `d` now: [command, label, key]. */
function actionsFor(d) {
  const me = currentUser();
  if (!can("decisions:decide")) return [];
  const mine = d.assignee === me.subject;
  const supervisor = atLeast("supervisor");
  switch (d.status) {
    case "pending":
      return [["claim", "Claim", "c"]];
    case "escalated":
      return supervisor ? [["claim", "Claim", "c"]] : [];
    case "claimed":
      if (mine) {
        return [
          ["approve", "Approve", "a"],
          ["reject", "Reject", "r"],
          ["dismiss", "Dismiss", "d"],
          ["escalate", "Escalate", "e"],
          ["release", "Release", "l"],
        ];
      }
      return supervisor ? [["release", "Release", "l"]] : [];
    case "awaiting_second_approval":
      return can("decisions:second_approve") && d.first_approver !== me.subject ? [["second-approval", "Second approval", "s"]] : [];
    default:
      return [];
  }
}

async function bodyFor(command, d) {
  switch (command) {
    case "reject":
    case "escalate": {
      const form = await ask(
        `${command === "reject" ? "Reject" : "Escalate"}: ${d.summary}`,
        field("Note (required)", h("textarea", { name: "note", required: true, maxlength: "2000", rows: "3" })),
        command === "reject" ? "Reject" : "Escalate",
      );
      return form && { note: form.get("note") };
    }
    case "dismiss": {
      const reason = h("select", { name: "reason", required: true }, REASONS.map(([v, l]) => h("option", { value: v }, l)));
      const note = h("textarea", { name: "note", maxlength: "2000", rows: "3" });
      reason.addEventListener("change", () => (note.required = reason.value === "unknown"));
      const form = await ask(`Dismiss: ${d.summary}`, [field("Reason", reason), field("Note", note, "Required when the reason is Unknown.")], "Dismiss");
      if (!form) return null;
      const body = { reason: form.get("reason") };
      if (form.get("note")) body.note = form.get("note");
      return body;
    }
    case "second-approval": {
      const choice = h(
        "fieldset",
        {},
        h("legend", {}, `First approved by ${d.first_approver}. A dispatch-type action needs a second supervisor.`),
        h("label", { class: "inline" }, h("input", { type: "radio", name: "approve", value: "yes", required: true }), " Approve"),
        h("label", { class: "inline" }, h("input", { type: "radio", name: "approve", value: "no" }), " Refuse"),
      );
      const form = await ask(`Second approval: ${d.summary}`, [choice, field("Note", h("textarea", { name: "note", maxlength: "2000", rows: "2" }))], "Record");
      if (!form) return null;
      const body = { approve: form.get("approve") === "yes" };
      if (form.get("note")) body.note = form.get("note");
      return body;
    }
    default:
      return {};
  }
}

export async function queuePage(ctx) {
  let decisions = [];
  let selected = null;
  let reloadTimer = null;
  const tbody = h("tbody");
  const detail = h("aside", { class: "detail", "aria-live": "polite", "aria-label": "Selected decision" });
  const counter = h("p", { class: "muted", role: "status" });

  let generation = 0;
  // The first page of each status is shown at once (the queue is usable);
  // the rest follows page by page, up to MAX_PER_STATUS. A newer load (a
  // live change) supersedes an older one still paging.
  async function load() {
    const mine = ++generation;
    const fetchPage = (status, cursor) => call("GET", "/api/decisions", { query: { status, limit: 200, cursor } });
    const firsts = await Promise.all(OPEN.map((status) => fetchPage(status)));
    if (mine !== generation) return;
    decisions = sortQueue(firsts.flatMap((p) => p.decisions));
    draw();
    const rest = await Promise.all(
      firsts.map(async (first, i) => {
        const more = [];
        let cursor = first.next_cursor;
        while (cursor && first.decisions.length + more.length < MAX_PER_STATUS && mine === generation) {
          const next = await fetchPage(OPEN[i], cursor);
          more.push(...next.decisions);
          cursor = next.next_cursor;
        }
        return more;
      }),
    );
    if (mine !== generation || !rest.some((r) => r.length)) return;
    decisions = sortQueue([...decisions, ...rest.flat()]);
    draw();
  }

  function scheduleLoad() {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => load().catch((e) => notify(problemText(e), "error")), 150);
  }

  async function reloadOne(id) {
    try {
      const fresh = await call("GET", `/api/decisions/${id}`);
      const i = decisions.findIndex((d) => d.id === id);
      if (OPEN.includes(fresh.status)) {
        if (i >= 0) decisions[i] = fresh;
        else decisions.push(fresh);
      } else if (i >= 0) decisions.splice(i, 1);
      sortQueue(decisions);
      draw();
    } catch (e) {
      notify(problemText(e), "error");
    }
  }

  async function act(d, command) {
    const body = await bodyFor(command, d);
    if (body === null || body === undefined) return;
    try {
      await request("POST", `/api/decisions/${d.id}/${command}`, { body, ifMatch: `"${d.version}"` });
      notify(`${command.replace("-", " ")}: done — ${d.summary}`);
      await reloadOne(d.id);
    } catch (err) {
      if (err instanceof ApiProblem && err.status === 412) {
        notify(`Someone changed this decision while you were looking at it, so nothing was done. The row now shows its current state; check it and try again. (${d.summary})`, "error");
      } else if (err instanceof ApiProblem && err.status === 409) {
        notify(`Not possible now: ${problemText(err)}. The row has been refreshed.`, "error");
      } else {
        notify(problemText(err), "error");
      }
      await reloadOne(d.id);
    }
  }

  function select(id) {
    selected = id;
    for (const tr of tbody.rows) tr.setAttribute("aria-selected", String(tr.dataset.id === id));
    const d = decisions.find((x) => x.id === id);
    clear(
      detail,
      d
        ? [
            h("h2", {}, d.summary),
            h(
              "dl",
              {},
              [
                ["Action", d.proposed_action],
                ["Subject", `${d.subject.kind} ${d.subject.id}`],
                ["Threat level", d.threat_level],
                ["Confidence", `${Math.round(d.confidence * 100)} %`],
                ["Source", d.source],
                ["Submitted by", d.submitted_by],
                ["Parameters", JSON.stringify(d.parameters)],
                ["Evidence", (d.evidence?.refs || []).join(", ") || "—"],
              ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
            ),
            h("p", {}, d.rationale),
          ]
        : h("p", { class: "muted" }, "Select a decision to see its rationale and evidence."),
    );
  }

  function draw() {
    const now = Date.now();
    counter.textContent = `${decisions.length} open decision${decisions.length === 1 ? "" : "s"}`;
    clear(
      tbody,
      decisions.map((d) => {
        const actions = actionsFor(d);
        return h(
          "tr",
          { dataset: { id: d.id, status: d.status }, class: d.overdue ? "overdue" : "", onclick: () => select(d.id), "aria-selected": String(d.id === selected) },
          h("td", {}, badge(d.priority)),
          h("td", {}, h("button", { type: "button", class: "link", onclick: () => select(d.id) }, d.summary)),
          h("td", {}, d.proposed_action),
          h("td", {}, badge(d.status.replaceAll("_", " "), d.status)),
          h("td", {}, d.assignee ? (d.assignee === currentUser().subject ? "you" : d.assignee.slice(0, 8)) : "—"),
          h("td", { class: "sla", dataset: { deadline: d.sla_deadline } }, countdown(d.sla_deadline, now)),
          h(
            "td",
            { class: "actions" },
            actions.map(([command, label, key]) =>
              h("button", { type: "button", class: command === "approve" || command === "claim" ? "" : "secondary", dataset: { command }, title: `${label} (${key})`, onclick: (e) => (e.stopPropagation(), act(d, command)) }, label),
            ),
          ),
        );
      }),
    );
    if (!decisions.some((d) => d.id === selected)) selected = decisions[0]?.id ?? null;
    select(selected);
  }

  const tick = setInterval(() => {
    const now = Date.now();
    for (const cell of tbody.querySelectorAll("td.sla")) {
      cell.textContent = countdown(cell.dataset.deadline, now);
      cell.classList.toggle("late", new Date(cell.dataset.deadline) < now);
    }
  }, 1000);

  function onKey(e) {
    if (e.target.closest("input, textarea, select, dialog") || e.altKey || e.ctrlKey || e.metaKey) return;
    const i = decisions.findIndex((d) => d.id === selected);
    if (e.key === "j" || e.key === "ArrowDown") {
      select(decisions[Math.min(decisions.length - 1, i + 1)]?.id ?? null);
      e.preventDefault();
      return;
    }
    if (e.key === "k" || e.key === "ArrowUp") {
      select(decisions[Math.max(0, i - 1)]?.id ?? null);
      e.preventDefault();
      return;
    }
    const d = decisions[i];
    const hit = d && actionsFor(d).find(([, , key]) => key === e.key);
    if (hit) {
      e.preventDefault();
      act(d, hit[0]);
    }
  }
  document.addEventListener("keydown", onKey);
  ctx.onLeave(() => {
    clearInterval(tick);
    clearTimeout(reloadTimer);
    document.removeEventListener("keydown", onKey);
  });
  ctx.onLeave(listen("decisions", scheduleLoad));

  await load();
  return page(
    "Decision queue",
    counter,
    h(
      "div",
      { class: "split" },
      h("div", { class: "scroll" }, table(["Priority", "Summary", "Action", "Status", "Assignee", "SLA", "Actions"], tbody, "Open decisions by priority, then SLA deadline")),
      detail,
    ),
    h(
      "details",
      { class: "shortcuts" },
      h("summary", {}, "Keyboard shortcuts"),
      h("dl", {}, SHORTCUTS.map(([k, v]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, v)])),
    ),
  );
}
