//! `report.md`: a readable account of a pack — what happened, when, who
//! decided what and why, and a timeline. It is rendered from the same rows
//! as the JSON files, and holds nothing about the export itself (who, when),
//! so it is as deterministic as they are. Events are summarised while they
//! stream: counts and the first and last few in the timeline, never the
//! whole list in memory.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;

use crate::records::{Alert, AuditRecord, Decision, Event, Execution};
use crate::scope::Resolved;

/// Events shown at the start and at the end of the timeline.
const TIMELINE_HEAD: usize = 20;
const TIMELINE_TAIL: usize = 5;
/// Distinct sources counted by name; the rest are counted together.
const MAX_SOURCES: usize = 1000;

/// What the report says about the events, gathered one event at a time.
#[derive(Default)]
pub struct EventSummary {
    pub count: u64,
    first: Option<String>,
    last: Option<String>,
    by_type: BTreeMap<String, u64>,
    by_severity: BTreeMap<String, u64>,
    techniques: BTreeMap<String, u64>,
    sources: BTreeMap<String, u64>,
    other_sources: u64,
    max_score: i64,
    head: Vec<Line>,
    tail: VecDeque<Line>,
}

#[derive(Clone)]
struct Line {
    at: String,
    what: String,
    who: String,
    detail: String,
}

impl EventSummary {
    pub fn add(&mut self, e: &Event) {
        self.count += 1;
        self.first.get_or_insert_with(|| e.observed_at.clone());
        self.last = Some(e.observed_at.clone());
        *self.by_type.entry(e.event_type.clone()).or_default() += 1;
        *self.by_severity.entry(e.severity.clone()).or_default() += 1;
        if let Some(t) = &e.technique {
            *self.techniques.entry(t.clone()).or_default() += 1;
        }
        if let Some(n) = self.sources.get_mut(&e.source_ip) {
            *n += 1;
        } else if self.sources.len() < MAX_SOURCES {
            self.sources.insert(e.source_ip.clone(), 1);
        } else {
            self.other_sources += 1;
        }
        self.max_score = self.max_score.max(e.score);
        let line = Line {
            at: e.observed_at.clone(),
            what: format!("event `{}`", e.event_type),
            who: format!("sensor `{}`", e.sensor_id),
            detail: format!(
                "from {} to {} — score {} ({}), id `{}`",
                e.source_ip,
                e.dest_ip.as_deref().unwrap_or("—"),
                e.score,
                e.severity,
                e.id
            ),
        };
        if self.head.len() < TIMELINE_HEAD {
            self.head.push(line);
        } else {
            if self.tail.len() == TIMELINE_TAIL {
                self.tail.pop_front();
            }
            self.tail.push_back(line);
        }
    }
}

pub struct Input<'a> {
    pub subject: &'a Resolved,
    pub alerts: &'a [Alert],
    pub decisions: &'a [Decision],
    pub executions: &'a [Execution],
    pub audit: &'a [AuditRecord],
    pub events: &'a EventSummary,
}

/// A table cell: one line, pipes escaped.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    let mut items: Vec<_> = map.iter().collect();
    // Largest first; ties by name, so the order is fixed.
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    items
        .iter()
        .map(|(k, n)| format!("{} {n}", cell(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render(input: &Input) -> String {
    let s = input.subject;
    let ev = input.events;
    let mut out = String::new();
    let _ = writeln!(out, "# Evidence: {} `{}`\n", s.kind.as_str(), s.id);
    let _ = writeln!(
        out,
        "This pack holds the {} and every record related to it as Vigil stored them. \
         `manifest.json` lists each file with its SHA-256 and is signed in `manifest.sig`; \
         check both with `vigil verify <pack.zip> --key <keys.json>`.\n",
        s.kind.as_str()
    );

    let _ = writeln!(out, "## Summary\n");
    match (&ev.first, &ev.last) {
        (Some(first), Some(last)) => {
            let _ = writeln!(
                out,
                "- **Events:** {} between {first} and {last}; highest score {}.",
                ev.count, ev.max_score
            );
            let _ = writeln!(out, "- **By type:** {}.", counts(&ev.by_type));
            let _ = writeln!(out, "- **By severity:** {}.", counts(&ev.by_severity));
            if !ev.techniques.is_empty() {
                let _ = writeln!(out, "- **ATT&CK techniques:** {}.", counts(&ev.techniques));
            }
            let mut sources = counts(&ev.sources);
            if ev.other_sources > 0 {
                let _ = write!(
                    sources,
                    ", and {} events from other sources",
                    ev.other_sources
                );
            }
            let _ = writeln!(out, "- **Sources:** {sources}.");
        }
        _ => {
            let _ = writeln!(out, "- **Events:** none.");
        }
    }
    for a in input.alerts {
        let _ = writeln!(
            out,
            "- **Alert** `{}`: {} `{}` from {} on sensor `{}`, {} events, severity {}, {} (first seen {}, last seen {}).",
            a.id,
            a.severity,
            a.event_type,
            a.source_ip,
            a.sensor_id,
            a.event_count,
            a.severity,
            a.status,
            a.first_seen,
            a.last_seen
        );
    }
    let _ = writeln!(
        out,
        "- **Decisions:** {}; **playbook runs:** {}; **audit entries:** {}.\n",
        input.decisions.len(),
        input.executions.len(),
        input.audit.len()
    );

    if !input.decisions.is_empty() {
        let _ = writeln!(out, "## Decisions\n");
    }
    for d in input.decisions {
        let _ = writeln!(
            out,
            "### `{}` against {} `{}` — {}\n",
            d.action, d.subject.kind, d.subject.id, d.status
        );
        let _ = writeln!(
            out,
            "- Proposed by `{}` (submitted by `{}`) at {}; priority P{}, threat level {}, confidence {}.",
            cell(&d.source),
            d.submitted_by,
            d.created_at,
            d.priority,
            d.threat_level,
            d.confidence
        );
        let _ = writeln!(out, "- Summary: {}", cell(&d.summary));
        let _ = writeln!(out, "- Rationale: {}", cell(&d.rationale));
        if let Some(first) = &d.first_approver {
            let _ = writeln!(out, "- First approver: `{first}`.");
        }
        if let Some(outcome) = &d.outcome_detail {
            let _ = writeln!(out, "- Outcome: {}", cell(outcome));
        }
        let _ = writeln!(
            out,
            "\n| when | who | did | from → to | why |\n| --- | --- | --- | --- | --- |"
        );
        for t in &d.transitions {
            let why = [t.reason.as_deref(), t.note.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" — ");
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} → {} | {} |",
                t.at,
                cell(&t.actor),
                t.command,
                t.from.as_deref().unwrap_or("—"),
                t.to,
                cell(&why)
            );
        }
        let _ = writeln!(out);
    }

    // The timeline: everything with a time, in order.
    let mut lines: Vec<Line> = Vec::new();
    lines.extend(ev.head.iter().cloned());
    if ev.count > (ev.head.len() + ev.tail.len()) as u64 {
        let hidden = ev.count - (ev.head.len() + ev.tail.len()) as u64;
        if let Some(last_head) = ev.head.last() {
            lines.push(Line {
                at: last_head.at.clone(),
                what: "…".into(),
                who: String::new(),
                detail: format!("{hidden} more events (all of them are in `events/`)"),
            });
        }
    }
    lines.extend(ev.tail.iter().cloned());
    for a in input.alerts {
        lines.push(Line {
            at: a.created_at.clone(),
            what: "alert opened".into(),
            who: "Vigil".into(),
            detail: format!(
                "`{}` ({} `{}` from {})",
                a.id, a.severity, a.event_type, a.source_ip
            ),
        });
    }
    for x in input.executions {
        lines.push(Line {
            at: x.started_at.clone(),
            what: format!("playbook `{}` ran ({})", cell(&x.playbook_name), x.mode),
            who: format!("`{}`", x.started_by),
            detail: format!("{}, execution `{}`", x.status, x.id),
        });
    }
    for d in input.decisions {
        for t in &d.transitions {
            lines.push(Line {
                at: t.at.clone(),
                what: format!("decision `{}`: {}", d.action, t.command),
                who: format!("`{}`", cell(&t.actor)),
                detail: format!(
                    "{} → {}{}",
                    t.from.as_deref().unwrap_or("—"),
                    t.to,
                    t.reason
                        .as_deref()
                        .or(t.note.as_deref())
                        .map(|w| format!(": {}", cell(w)))
                        .unwrap_or_default()
                ),
            });
        }
    }
    // Stable: ties keep the order above (events, alerts, runs, decisions).
    lines.sort_by(|a, b| a.at.cmp(&b.at));
    let _ = writeln!(
        out,
        "## Timeline\n\n| when (UTC) | what | who | detail |\n| --- | --- | --- | --- |"
    );
    for l in &lines {
        let _ = writeln!(out, "| {} | {} | {} | {} |", l.at, l.what, l.who, l.detail);
    }

    let _ = writeln!(out, "\n## Audit trail\n");
    if input.audit.is_empty() {
        let _ = writeln!(out, "No audit entries touch these records.");
    } else {
        let _ = writeln!(
            out,
            "Each entry's hash chains to the one before it in the whole log; `audit.json` holds them in full.\n\n| # | when (UTC) | who | action | subject | hash |\n| --- | --- | --- | --- | --- | --- |"
        );
        for a in input.audit {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | {} `{}` | `{}…` |",
                a.id,
                vigil_core::time::rfc3339(a.entry.at),
                cell(&a.entry.actor),
                cell(&a.entry.action),
                a.entry.subject_kind.as_deref().unwrap_or("—"),
                cell(a.entry.subject_id.as_deref().unwrap_or("")),
                &a.hash[..a.hash.len().min(16)]
            );
        }
    }
    out
}
