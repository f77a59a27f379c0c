//! Submitting proposals (idempotent), the queue, and one decision with its history.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spin_sdk::http::Response;
use vigil_api::db::{Columns, Value};
use vigil_api::listing::{self, Filters};
use vigil_api::{ApiError, Ctx, FieldError, db, response};
use vigil_core::decision::{self, Action, Proposal, Status, ThreatLevel, proposal_of, refuse};
use vigil_core::id::new_id;
use vigil_core::time::{now_millis, rfc3339};

use vigil_api::decisions::record::{self, COLUMNS, Decision, Evidence, Served, Subject};
use vigil_api::decisions::{self, NewDecision, settings};

/// How long an `Idempotency-Key` is remembered (24 hours).
const IDEMPOTENCY_MS: i64 = 24 * 3600 * 1000;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// The proposing engine.
    #[schemars(length(min = 1, max = 64))]
    source: String,
    subject: Subject,
    proposed_action: Action,
    /// Action parameters. `target` (a string) is checked against the
    /// protected assets in canonical form; for `block_ip` and `isolate_host`
    /// it must be an IP address or a host name, and is stored canonical
    /// (`::ffff:10.0.0.5` and `10.0.0.5/32` as `10.0.0.5`, `DB.internal.` as
    /// `db.internal`).
    #[serde(default)]
    parameters: serde_json::Map<String, serde_json::Value>,
    threat_level: ThreatLevel,
    #[schemars(range(min = 0.0, max = 1.0))]
    confidence: f64,
    /// One line.
    #[schemars(length(min = 1, max = 200))]
    summary: String,
    #[serde(default)]
    #[schemars(length(max = 4000))]
    rationale: String,
    #[serde(default)]
    evidence: Evidence,
}

impl Submission {
    /// Check every field, and put `parameters.target` in its canonical form.
    fn validate(&mut self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: &str| {
            errors.push(FieldError {
                field: field.into(),
                message: message.into(),
            })
        };
        if self.source.trim().is_empty() || self.source.len() > 64 {
            bad("source", "must be 1-64 characters");
        }
        if self.subject.id.trim().is_empty() || self.subject.id.len() > 128 {
            bad("subject.id", "must be 1-128 characters");
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            bad("confidence", "must be between 0 and 1");
        }
        if self.summary.trim().is_empty()
            || self.summary.chars().count() > 200
            || self.summary.contains('\n')
        {
            bad("summary", "must be one line of 1-200 characters");
        }
        if self.rationale.chars().count() > 4000 {
            bad("rationale", "must be at most 4000 characters");
        }
        if self.evidence.refs.len() > 100 {
            bad("evidence.refs", "at most 100 references");
        }
        if serde_json::to_string(&self.parameters).map_or(0, |p| p.len()) > 16 * 1024 {
            bad("parameters", "must be at most 16 KiB of JSON");
        }
        match decision::proposal_target(self.proposed_action, self.parameters.get("target")) {
            Err(why) => bad("parameters.target", &why),
            Ok(Some(target)) if self.proposed_action.targets_network() => {
                self.parameters
                    .insert("target".into(), target.to_string().into());
            }
            Ok(_) => {}
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(errors))
        }
    }

    fn new_decision(&self) -> NewDecision {
        NewDecision {
            source: self.source.clone(),
            subject: self.subject.clone(),
            action: self.proposed_action,
            parameters: self.parameters.clone(),
            threat_level: self.threat_level,
            confidence: self.confidence,
            summary: self.summary.clone(),
            rationale: self.rationale.clone(),
            evidence: self.evidence.clone(),
            ingested_by: vec![],
        }
    }

    pub fn proposal(&self) -> Result<Proposal<'_>, ApiError> {
        proposal_of(
            self.proposed_action,
            self.confidence,
            &self.summary,
            &self.evidence,
            &self.parameters,
        )
    }
}

/// `POST /api/decisions`. An `Idempotency-Key` is required: a retry gets the
/// original answer; the same key with another body is a 409.
pub fn submit(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let key = ctx
        .header("idempotency-key")
        .map(str::trim)
        .filter(|k| (1..=128).contains(&k.len()))
        .ok_or_else(|| {
            ApiError::new(400, "idempotency-key-required", "Idempotency-Key required").with_detail(
                "send an Idempotency-Key header (1-128 characters) so a retry cannot submit twice",
            )
        })?
        .to_string();
    let mut submission: Submission = ctx.json()?;
    submission.validate()?;
    let violations = decision::check_submission(&submission.proposal()?, &settings::get()?.safety);
    if !violations.is_empty() {
        return Err(refuse(violations));
    }
    let who = ctx.principal().subject.clone();
    let scope = format!("decisions.submit:{who}");
    let request_hash = hex::encode(Sha256::digest(&ctx.body));
    let now = now_millis();
    let id = new_id();
    let conn = db::open()?;
    static REPLAY: Columns = Columns::new("request_hash, response_status, response_body");
    let (status, body) = db::transaction(conn, |conn| {
        let seen = db::query(
            conn,
            &format!(
                "SELECT {REPLAY} FROM idempotency_keys WHERE scope = ?1 AND key = ?2 AND expires_at > ?3"
            ),
            &[
                Value::Text(scope.clone()),
                Value::Text(key.clone()),
                Value::Integer(now),
            ],
        )?;
        if let Some(row) = seen.first().map(|r| REPLAY.row(r)) {
            if row.text("request_hash").as_deref() != Some(request_hash.as_str()) {
                return Err(
                    ApiError::new(409, "idempotency-key-reused", "Idempotency-Key reused")
                        .with_detail("this Idempotency-Key was used with a different request"),
                );
            }
            return Ok((
                row.int("response_status").unwrap_or(200) as u16,
                row.text("response_body").unwrap_or_default(),
            ));
        }
        let created = decisions::open_pending(
            conn,
            &id,
            &submission.new_decision(),
            &who,
            ctx.audit_entry("decision.submitted", "decision", &id, now),
            now,
        )?;
        let body = serde_json::to_string(&created).expect("decision serializes");
        db::query(
            conn,
            "INSERT INTO idempotency_keys (scope, key, request_hash, response_status, response_body, created_at, expires_at)
             VALUES (?1, ?2, ?3, 201, ?4, ?5, ?6)",
            &[
                Value::Text(scope.clone()),
                Value::Text(key.clone()),
                Value::Text(request_hash.clone()),
                Value::Text(body.clone()),
                Value::Integer(now),
                Value::Integer(now + IDEMPOTENCY_MS),
            ],
        )?;
        Ok((201, body))
    })?;
    let decision: serde_json::Value =
        serde_json::from_str(&body).map_err(|_| ApiError::internal())?;
    let mut response = response::json(status, &decision);
    if let Some(id) = decision["id"].as_str() {
        response.set_header("location", format!("/api/decisions/{id}"));
        response.set_header("etag", format!("\"{}\"", decision["version"]));
    }
    Ok(response)
}

#[derive(Serialize, JsonSchema)]
pub struct Queue {
    decisions: Vec<Decision>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// `GET /api/decisions`: by priority, then deadline. Filters: `status`,
/// `priority` (P1-P4), `assignee`, `action`, `source`, `overdue=true`;
/// `limit` (1-200, default 50) and `cursor`.
pub fn list(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let now = now_millis();
    let mut f = Filters::default();
    if let Some(status) = ctx.query_param("status") {
        decision::parse_wire::<Status>(&status)
            .ok_or_else(|| ApiError::invalid_field("status", "is not a decision status"))?;
        f.add("status = ?", vec![Value::Text(status)]);
    }
    if let Some(p) = ctx.query_param("priority") {
        let rank = ["P1", "P2", "P3", "P4"]
            .iter()
            .position(|x| *x == p)
            .ok_or_else(|| ApiError::invalid_field("priority", "is P1, P2, P3 or P4"))?;
        f.add("priority = ?", vec![Value::Integer(rank as i64 + 1)]);
    }
    if let Some(action) = ctx.query_param("action") {
        decision::parse_wire::<Action>(&action)
            .ok_or_else(|| ApiError::invalid_field("action", "is not an action"))?;
        f.add("action = ?", vec![Value::Text(action)]);
    }
    for column in ["assignee", "source"] {
        if let Some(v) = ctx.query_param(column) {
            f.add(&format!("{column} = ?"), vec![Value::Text(v)]);
        }
    }
    match ctx.query_param("overdue").as_deref() {
        None => {}
        Some("true") => {
            f.add("sla_deadline < ?", vec![Value::Integer(now)]);
            f.add_fixed(
                "status IN ('pending', 'claimed', 'escalated', 'awaiting_second_approval')",
            );
        }
        Some(_) => return Err(ApiError::invalid_field("overdue", "can only be true")),
    }
    let limit = listing::limit(ctx)?;
    if let Some(c) = listing::cursor(ctx, 3)? {
        let (rank, deadline) = (listing::cursor_int(&c[0])?, listing::cursor_int(&c[1])?);
        f.add(
            "(priority, sla_deadline, id) > (?, ?, ?)",
            vec![
                Value::Integer(rank),
                Value::Integer(deadline),
                Value::Text(c[2].clone()),
            ],
        );
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM decisions {} ORDER BY priority, sla_deadline, id LIMIT {}",
        f.where_clause(),
        f.limit_placeholder(limit + 1)
    );
    let conn = db::open()?;
    let mut decisions: Vec<Decision> = db::query(conn, &sql, &f.params)?
        .iter()
        .filter_map(|r| record::from_row(r, now))
        .collect();
    let next_cursor = listing::page(&mut decisions, limit, |last| {
        vec![
            last.priority.rank().to_string(),
            last.deadline_ms.to_string(),
            last.id.clone(),
        ]
    });
    Ok(response::json(
        200,
        &Queue {
            decisions,
            next_cursor,
        },
    ))
}

#[derive(Serialize, JsonSchema)]
pub struct HistoryEntry {
    #[schemars(extend("format" = "date-time"))]
    at: String,
    actor: String,
    command: String,
    from: Option<Status>,
    to: Status,
    note: Option<String>,
    reason: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct DecisionWithHistory {
    #[serde(flatten)]
    decision: Decision,
    history: Vec<HistoryEntry>,
}

/// `GET /api/decisions/{id}`: the decision and every transition it went through.
pub fn get(ctx: &mut Ctx) -> Result<Response, ApiError> {
    let now = now_millis();
    let conn = db::open()?;
    let decision = record::load(conn, ctx.param("id"), now)?;
    static HISTORY: Columns =
        Columns::new("at, actor, command, from_status, to_status, note, reason");
    let rows = db::query(
        conn,
        &format!("SELECT {HISTORY} FROM decision_transitions WHERE decision_id = ?1 ORDER BY id"),
        &[Value::Text(decision.id.clone())],
    )?;
    let history = rows
        .iter()
        .filter_map(|row| {
            let r = HISTORY.row(row);
            Some(HistoryEntry {
                at: rfc3339(r.int("at")?),
                actor: r.text("actor")?,
                command: r.text("command")?,
                from: r.text("from_status").and_then(|s| decision::parse_wire(&s)),
                to: decision::parse_wire(&r.text("to_status")?)?,
                note: r.text("note"),
                reason: r.text("reason"),
            })
        })
        .collect();
    let etag = decision.etag();
    let mut response = response::json(200, &DecisionWithHistory { decision, history });
    response.set_header("etag", etag);
    Ok(response)
}
