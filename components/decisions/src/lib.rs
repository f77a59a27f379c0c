//! The `decisions` component (`/api/decisions/...`): the human-in-the-loop
//! queue. Engines (API keys with `decisions:submit`, or analysts) propose; a
//! person claims and approves, rejects, dismisses or escalates; dispatch-type
//! actions need a second approver; executors report the outcome.
//!
//! - [`queue`]: submitting (idempotent), the queue, one decision with its history.
//! - [`transitions`]: every command, through the state machine in `vigil-core`.
//! - [`stats`]: queue depth, time to decision, SLA breaches, outcomes.
//!
//! How a decision is stored, and the variables (safety policy, SLA,
//! dispatch-type actions), live in `vigil_api::decisions`: playbooks in the
//! threats component open decisions the same way. A bad variable is a 503
//! naming it on every request that needs the rules ([`VARIABLES`]).

mod queue;
mod stats;
mod transitions;

use vigil_api::decisions::record::Decision;
use vigil_api::router::{DEFAULT_BODY_LIMIT, Reply, schema_of};

/// Every Spin variable this component reads: the shared ones and the
/// decision rules'. `xtask/tests/variables.rs` checks each is mapped into
/// it in `spin.toml`.
pub const VARIABLES: &[&[&str]] = &[
    vigil_api::settings::VARIABLES,
    vigil_api::decisions::settings::VARIABLES,
];
use vigil_api::{Access, Component, Permission, Route, health};

const DECISION: &[Reply] = &[Reply::json(
    200,
    "The decision after the transition; `ETag` is its version",
    schema_of::<Decision>,
)];
/// Transitions: not found, not allowed for this person, illegal from this state,
/// stale ETag, missing If-Match, database.
const TRANSITION_ERRORS: &[u16] = &[404, 409, 412, 428, 503];

const fn command(
    path: &'static str,
    needs: Permission,
    handler: vigil_api::router::Handler,
    summary: &'static str,
) -> Route {
    Route::new("POST", path, Access::Needs(needs), handler)
        .summary(summary)
        .replies(DECISION)
        .errors(TRANSITION_ERRORS)
}

pub static COMPONENT: Component = Component {
    name: "decisions",
    version: env!("CARGO_PKG_VERSION"),
    routes: &[
        health::route("/api/decisions/health"),
        Route::new(
            "POST",
            "/api/decisions",
            Access::Needs(Permission::DecisionsSubmit),
            queue::submit,
        )
        .summary("Propose an action for a person to decide; needs an Idempotency-Key")
        .request(schema_of::<queue::Submission>)
        .replies(&[Reply::json(
            201,
            "The new decision (or, for a retry, the original)",
            schema_of::<Decision>,
        )])
        .errors(&[409, 503]),
        Route::new(
            "GET",
            "/api/decisions",
            Access::Needs(Permission::DecisionsRead),
            queue::list,
        )
        .summary("The queue: by priority, then deadline; filters and cursor pagination")
        .replies(&[Reply::json(
            200,
            "A page of decisions",
            schema_of::<queue::Queue>,
        )])
        .errors(&[422, 503]),
        Route::new("GET", "/api/decisions/stats", Access::Needs(Permission::DecisionsRead), stats::stats)
            .summary("Queue depth, time to decision, SLA breaches, outcomes by reason and analyst, escalation rate")
            .replies(&[Reply::json(200, "The figures for `range` (24h, 7d, 30d or all)", schema_of::<stats::Stats>)])
            .errors(&[422, 503]),
        Route::new(
            "GET",
            "/api/decisions/{id}",
            Access::Needs(Permission::DecisionsRead),
            queue::get,
        )
        .summary("One decision with its full history")
        .replies(&[Reply::json(
            200,
            "The decision; `ETag` is its version",
            schema_of::<queue::DecisionWithHistory>,
        )])
        .errors(&[404, 503]),
        command(
            "/api/decisions/{id}/claim",
            Permission::DecisionsDecide,
            transitions::claim,
            "Claim a pending (or, supervisors, an escalated) decision",
        )
        .request(schema_of::<transitions::OptionalNote>),
        command(
            "/api/decisions/{id}/release",
            Permission::DecisionsDecide,
            transitions::release,
            "Give a claimed decision back to the queue",
        )
        .request(schema_of::<transitions::OptionalNote>),
        command(
            "/api/decisions/{id}/approve",
            Permission::DecisionsDecide,
            transitions::approve,
            "Approve (dispatch-type actions then await a second approver)",
        )
        .request(schema_of::<transitions::OptionalNote>),
        command(
            "/api/decisions/{id}/reject",
            Permission::DecisionsDecide,
            transitions::reject,
            "Reject, with a note",
        )
        .request(schema_of::<transitions::RequiredNote>),
        command(
            "/api/decisions/{id}/dismiss",
            Permission::DecisionsDecide,
            transitions::dismiss,
            "Dismiss, with a reason (and a note for `unknown`)",
        )
        .request(schema_of::<transitions::Dismissal>),
        command(
            "/api/decisions/{id}/escalate",
            Permission::DecisionsDecide,
            transitions::escalate,
            "Escalate to the supervisors, with a note",
        )
        .request(schema_of::<transitions::RequiredNote>),
        command(
            "/api/decisions/{id}/second-approval",
            Permission::DecisionsSecondApprove,
            transitions::second_approval,
            "Second approval of a dispatch-type action, by another supervisor",
        )
        .request(schema_of::<transitions::SecondApproval>),
        command(
            "/api/decisions/{id}/outcome",
            Permission::DecisionsReportOutcome,
            transitions::outcome,
            "The executor reports whether the action was carried out",
        )
        .request(schema_of::<transitions::Outcome>),
        Route::new(
            "POST",
            "/api/decisions/escalate-overdue",
            Access::Needs(Permission::DecisionsEscalateOverdue),
            transitions::escalate_overdue,
        )
        .summary("Escalate every open decision past its SLA deadline (the scheduler calls this)")
        .replies(&[Reply::json(
            200,
            "What was escalated",
            schema_of::<transitions::Escalated>,
        )])
        .errors(&[503]),
    ],
    body_limit: DEFAULT_BODY_LIMIT,
};

#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(req: spin_sdk::http::IncomingRequest, out: spin_sdk::http::ResponseOutparam) {
    vigil_api::send(vigil_api::serve(&COMPONENT, req).await, out).await
}
