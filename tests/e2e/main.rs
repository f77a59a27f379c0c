//! Vigil's end-to-end suite. Every case runs on three legs: the built-in
//! wasmtime host, `spin up` with a local SQLite file, and `spin up` with the
//! database on a libSQL server (`sqld`, the Turso path). Each leg starts once,
//! with its own database, and is shared by its cases, which run one at a time
//! in their listed order; the legs run side by side. Against `VIGIL_BASE_URL`
//! the cases run once, on that app.
//!
//! The harness is `libtest-mimic`, so the arguments and the output are
//! libtest's (a filter, `--exact`, `--skip`, `--list`, `--ignored`), and what
//! does not run is counted: a leg whose tools are missing (`VIGIL_SPIN`/`spin`,
//! `VIGIL_SQLD`/`sqld` on PATH), or a case that cannot run against the app at
//! hand ([`vigil_e2e::skip`]), is reported ignored with the reason.
//!
//! `cargo xtask test` builds what this needs.

mod api_keys;
mod cli;
mod console;
mod decisions;
mod export;
mod hardening_auth;
mod hardening_config;
mod http_basics;
mod login;
mod matrix;
mod metrics;
mod mfa;
mod mqtt;
mod playbooks;
mod relay;
mod sensors;
mod threats;
mod tokens;
mod turso;
mod users;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use vigil_e2e::{Leg, Skip, TestApp};

pub type Case = (&'static str, fn(&TestApp));

/// A case that runs once per run: its label, the case, and why it cannot
/// run here, if it cannot.
type OnceCase = (String, fn(), Option<String>);

fn app_cases() -> Vec<Case> {
    [
        http_basics::CASES,
        tokens::CASES,
        users::CASES,
        login::CASES,
        api_keys::CASES,
        mfa::CASES,
        hardening_auth::CASES,
        decisions::CASES,
        hardening_config::CASES,
        threats::CASES,
        sensors::CASES,
        playbooks::CASES,
        export::CASES,
        metrics::CASES,
        matrix::CASES,
        console::CASES,
        // Late: one of them deletes old outbox rows.
        relay::CASES,
        mqtt::CASES,
        users::FINAL_CASES,
    ]
    .concat()
}

/// A count that threads can wait on.
#[derive(Default)]
struct Counter {
    n: Mutex<usize>,
    changed: Condvar,
}

impl Counter {
    fn wait_for(&self, n: usize) {
        let mut now = self.n.lock().unwrap_or_else(PoisonError::into_inner);
        while *now < n {
            now = self
                .changed
                .wait(now)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn bump(&self) {
        *self.n.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.changed.notify_all();
    }
}

/// Holds a turn of a [`Counter`] used as a queue: ends it even on a panic.
struct Turn<'a>(&'a Counter);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.bump();
    }
}

/// Where a leg's app comes from.
enum Start {
    Leg(Leg),
    External(String),
}

/// One leg: its app, started by its first case and stopped after its last,
/// and the queue that runs its cases one at a time in their listed order.
struct LegRun {
    name: &'static str,
    start: Start,
    app: Mutex<Option<Result<TestApp, String>>>,
    /// Tickets of the cases that run, handed out in list order.
    turns: Counter,
    tickets: usize,
}

impl LegRun {
    fn run(&self, ticket: usize, case: fn(&TestApp), done: &Counter) -> Result<Completion, Failed> {
        self.turns.wait_for(ticket);
        let _turn = Turn(&self.turns);
        let _done = Turn(done);
        let mut slot = self.app.lock().unwrap_or_else(PoisonError::into_inner);
        let app = slot.get_or_insert_with(|| {
            match &self.start {
                Start::Leg(leg) => TestApp::start(*leg),
                Start::External(url) => TestApp::external(url.clone()),
            }
            .map_err(|e| format!("{e:#}"))
        });
        let outcome = match app {
            Err(why) => Err(format!("the {} app did not start: {why}", self.name).into()),
            Ok(app) => outcome(
                catch_unwind(AssertUnwindSafe(|| {
                    app.reset_login_throttle();
                    case(app)
                })),
                Some(app),
            ),
        };
        if ticket + 1 == self.tickets {
            *slot = None; // The leg's last case: stop its app.
        }
        outcome
    }
}

/// A case's result for libtest-mimic: a [`Skip`] is an ignored case with its
/// reason; a panic a failure with, when there is one, the app's own account
/// (5xx causes are logged there, never sent to the client).
fn outcome(result: std::thread::Result<()>, app: Option<&TestApp>) -> Result<Completion, Failed> {
    let payload = match result {
        Ok(()) => return Ok(Completion::Completed),
        Err(payload) => payload,
    };
    if let Some(Skip(why)) = payload.downcast_ref::<Skip>() {
        return Ok(Completion::ignored_with(why));
    }
    let mut msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    if let Some(app) = app {
        let logs = app.component_logs();
        let errors: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("\"level\":\"error\""))
            .collect();
        for line in &errors[errors.len().saturating_sub(5)..] {
            msg += &format!("\n    app log: {line}");
        }
    }
    Err(msg.into())
}

/// Whether `args` would run a trial named `name`.
fn runs(args: &Arguments, name: &str) -> bool {
    let probe = Trial::test(name, || Ok(()));
    !args.is_filtered_out(&probe) && !args.is_ignored(&probe)
}

fn main() {
    let mut args = Arguments::from_args();
    let external = std::env::var("VIGIL_BASE_URL").ok();
    let cases = app_cases();

    let mut legs = Vec::new();
    let mut missing = Vec::new();
    match &external {
        Some(url) => legs.push(("external", Start::External(url.clone()))),
        None => {
            for leg in [Leg::Host, Leg::Spin, Leg::SpinSqld] {
                match leg.missing() {
                    None => legs.push((leg.name(), Start::Leg(leg))),
                    Some(why) => missing.push((leg.name(), why)),
                }
            }
        }
    }

    // Round-robin over the legs: every case comes after the one before it
    // on its leg, so a pool of any size always has a case that can run.
    let mut tickets = vec![0; legs.len()];
    let mut plan = Vec::new();
    for (name, case) in &cases {
        for (leg, (leg_name, _)) in legs.iter().enumerate() {
            let label = format!("{leg_name}::{name}");
            let ticket = runs(&args, &label).then(|| {
                tickets[leg] += 1;
                tickets[leg] - 1
            });
            plan.push((label, leg, ticket, *case));
        }
    }
    let legs: Vec<Arc<LegRun>> = legs
        .into_iter()
        .zip(&tickets)
        .map(|((name, start), tickets)| {
            Arc::new(LegRun {
                name,
                start,
                app: Mutex::new(None),
                turns: Counter::default(),
                tickets: *tickets,
            })
        })
        .collect();
    let leg_cases: usize = tickets.iter().sum();
    let done = Arc::new(Counter::default());

    let mut trials = Vec::new();
    let mut runnable = 0;
    for (label, leg, ticket, case) in plan {
        let (leg, done) = (legs[leg].clone(), done.clone());
        runnable += usize::from(ticket.is_some());
        trials.push(Trial::ignorable_test(label, move || {
            // Filtered out or ignored: libtest-mimic does not call this.
            let ticket = ticket.expect("only cases that run are called");
            leg.run(ticket, case, &done)
        }));
    }
    for (leg, why) in missing {
        for (name, _) in &cases {
            let why = format!("the {leg} leg cannot run here: {why}");
            trials.push(Trial::ignorable_test(format!("{leg}::{name}"), move || {
                Ok(Completion::ignored_with(why))
            }));
        }
    }

    // Cases that start what they need themselves, once per run, one at a
    // time after every leg's cases.
    let mut once: Vec<OnceCase> = Vec::new();
    let own_app = external
        .as_ref()
        .map(|_| "starts its own app and database (VIGIL_BASE_URL is set)".to_string());
    let sqld = Leg::SpinSqld
        .missing()
        .map(|why| format!("the sqld cases cannot run here: {why}"));
    once.extend(
        cli::CASES
            .iter()
            .map(|(n, f)| (format!("cli::{n}"), *f, own_app.clone())),
    );
    once.extend(
        cli::SQLD_CASES
            .iter()
            .map(|(n, f)| (format!("cli::{n}"), *f, own_app.clone().or(sqld.clone()))),
    );
    once.extend(
        turso::CASES
            .iter()
            .map(|(n, f)| (format!("turso::{n}"), *f, own_app.clone().or(sqld.clone()))),
    );
    let turns = Arc::new(Counter::default());
    let mut next = 0;
    for (label, case, cannot) in once {
        let ticket = (cannot.is_none() && runs(&args, &label)).then(|| {
            next += 1;
            next - 1
        });
        runnable += usize::from(ticket.is_some());
        let (turns, done) = (turns.clone(), done.clone());
        trials.push(Trial::ignorable_test(label, move || {
            if let Some(why) = cannot {
                return Ok(Completion::ignored_with(why));
            }
            let ticket = ticket.expect("only cases that run are called");
            done.wait_for(leg_cases);
            turns.wait_for(ticket);
            let _turn = Turn(&turns);
            outcome(catch_unwind(case), None)
        }));
    }

    // A thread per case that runs: each waits for its turn, so the legs run
    // side by side, each at its own pace (a pool of one per leg would hold
    // the fast legs to the slowest one's pace, case by case).
    args.test_threads = args.test_threads.or(Some(runnable.max(1)));
    let conclusion = libtest_mimic::run(&args, trials);
    drop(legs); // Stop the apps (a leg stops its own after its last case).
    conclusion.exit();
}
