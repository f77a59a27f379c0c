//! The rollups summed over a window. A window is cut into [`parts`]: the
//! day rows of the whole UTC days inside it and the hour rows of the hours
//! at its edges, so 30 days cost about 30 rows per key instead of 720. The
//! reads a request needs go in one [`Batch`]: one statement (one round
//! trip on a libSQL server), a `UNION ALL` of one member per table and
//! part, each grouped by SQLite over its own range of the primary key; the
//! parts' groups are added up here ([`Rows`]).

use std::collections::BTreeMap;

use vigil_core::ApiError;
use vigil_core::rollup::{BUCKET_BOUNDS_S, DAY_MS, HOUR_MS};
use vigil_core::sql::{Sql, Value, int, text};

use crate::kpi::Histogram;
use crate::window::Window;

/// A dimension events are counted by (`rollup_events_by.dim`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    Severity,
    Type,
    Sensor,
    Zone,
    Country,
}

impl Dim {
    /// Its name in the `dim` column (one of `vigil_core::rollup::EVENT_DIMS`).
    pub fn name(self) -> &'static str {
        match self {
            Dim::Severity => "severity",
            Dim::Type => "type",
            Dim::Sensor => "sensor",
            Dim::Zone => "zone",
            Dim::Country => "country",
        }
    }
}

/// Events of one key: how many, their score sum and the highest score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventAgg {
    pub events: i64,
    pub score_sum: i64,
    pub max_score: i64,
}

impl EventAgg {
    fn add(&mut self, o: &EventAgg) {
        self.events += o.events;
        self.score_sum += o.score_sum;
        self.max_score = self.max_score.max(o.max_score);
    }
}

/// Alerts of one severity (the one they opened with).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertAgg {
    pub opened: i64,
    pub acknowledged: i64,
    pub resolved: i64,
    pub ack_ms_sum: i64,
}

impl AlertAgg {
    pub fn add(&mut self, o: &AlertAgg) {
        self.opened += o.opened;
        self.acknowledged += o.acknowledged;
        self.resolved += o.resolved;
        self.ack_ms_sum += o.ack_ms_sum;
    }
}

/// One group of decision rollups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecisionAgg {
    pub priority: i64,
    /// `submitted`, `escalated`, or the status decided into.
    pub outcome: String,
    pub reason: String,
    pub analyst: String,
    pub count: i64,
    /// Of `count`, the decisions' first decisions.
    pub decided: i64,
    pub ttd_ms_sum: i64,
    pub sla_breaches: i64,
}

/// A range of rollup rows: `(span, from, to)`, `from <= start < to`.
pub type Part = (&'static str, i64, i64);

/// The rows to read for `[from, to)`: with `whole_days`, the day rows of
/// the whole UTC days inside the window and the hour rows before and after
/// them (for a window that runs up to now, its last day's row, which holds
/// nothing later yet: see [`Window::open_end`]); else hour rows only (an
/// hourly series). Never empty.
pub fn parts(w: &Window, whole_days: bool) -> Vec<Part> {
    let (from, to) = (w.from_or_min(), w.to);
    if !whole_days {
        return vec![("hour", from, to)];
    }
    // The first midnight at or after `from` (all time: from the start), the last at or before `to`.
    let first_day = match w.from {
        Some(f) if f.rem_euclid(DAY_MS) == 0 => f,
        Some(f) => f.div_euclid(DAY_MS) * DAY_MS + DAY_MS,
        None => i64::MIN,
    };
    let last_day = to.div_euclid(DAY_MS) * DAY_MS;
    let (days_end, hours_after) = if w.open_end && to > last_day {
        (last_day + DAY_MS, None)
    } else {
        (last_day, Some(("hour", last_day, to)))
    };
    if first_day >= days_end {
        return vec![("hour", from, to)];
    }
    [
        Some(("hour", from, first_day)),
        Some(("day", first_day, days_end)),
        hours_after,
    ]
    .into_iter()
    .flatten()
    .filter(|(_, a, b)| a < b)
    .collect()
}

/// Several reads of the rollups as one statement. Every member returns
/// `(tag, at, keys…, sums…)`: what it is, the bucket start (0 for a whole
/// window), its key columns and its sums, padded with NULLs to the widest
/// member's (a `UNION ALL` has one width; a batch of one read is not padded).
#[derive(Default)]
pub struct Batch {
    members: Vec<Member>,
    params: Vec<Value>,
}

struct Member {
    tag: &'static str,
    /// The bucket start expression.
    at: String,
    keys: Vec<&'static str>,
    sums: Vec<&'static str>,
    /// `FROM … WHERE …`, and whether to group by the bucket and the keys.
    from: String,
    grouped: bool,
}

impl Batch {
    /// `table`'s rows in `parts`, where `filter` (its `?` given by
    /// `filter_params`), grouped by bucket (`bucket_ms` wide, or the whole
    /// window) and `keys`, with `sums` (SQL aggregates), tagged `tag`.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        tag: &'static str,
        table: &str,
        parts: &[Part],
        filter: &str,
        filter_params: &[Value],
        keys: &[&'static str],
        sums: &[&'static str],
        bucket_ms: Option<i64>,
    ) {
        let at = match bucket_ms {
            Some(b) if b == HOUR_MS => "start".to_string(),
            Some(b) => format!("(start / {b}) * {b}"),
            None => "0".into(),
        };
        let filter = if filter.is_empty() {
            String::new()
        } else {
            format!(" AND {filter}")
        };
        for (span, from, to) in parts {
            self.members.push(Member {
                tag,
                at: at.clone(),
                keys: keys.to_vec(),
                sums: sums.to_vec(),
                from: format!("FROM {table} WHERE span = ? AND start >= ? AND start < ?{filter}"),
                grouped: true,
            });
            self.params.extend([
                Value::Text((*span).into()),
                Value::Integer(*from),
                Value::Integer(*to),
            ]);
            self.params.extend(filter_params.iter().cloned());
        }
    }

    /// Events by each of `dims` (over every sensor, or `sensor`'s own rows:
    /// by severity or type) over the whole window; tag `e`, keys (dim, key).
    pub fn events(&mut self, w: &Window, sensor: &str, dims: &[Dim]) {
        if dims.is_empty() {
            return;
        }
        let marks = vec!["?"; dims.len()].join(", ");
        let mut params = vec![Value::Text(sensor.into())];
        params.extend(dims.iter().map(|d| Value::Text(d.name().into())));
        self.add(
            "e",
            "rollup_events_by",
            &parts(w, true),
            &format!("sensor_id = ? AND dim IN ({marks})"),
            &params,
            &["dim", "key"],
            &EVENT_SUMS,
            None,
        );
    }

    /// Events per bucket (`bucket_ms` wide) over every sensor, by the keys
    /// of `dim` (`None`: their total, from the severities); tag `s`, key
    /// (the dimension's key, or none).
    pub fn event_series(&mut self, w: &Window, dim: Option<Dim>, bucket_ms: i64) {
        self.add(
            "s",
            "rollup_events_by",
            &parts(w, bucket_ms >= DAY_MS),
            "sensor_id = '' AND dim = ?",
            &[Value::Text(dim.unwrap_or(Dim::Severity).name().into())],
            if dim.is_some() { &["key"] } else { &[] },
            &EVENT_SUMS,
            Some(bucket_ms),
        );
    }

    /// Alerts by the severity they opened with; tag `a`.
    pub fn alerts(&mut self, w: &Window, bucket_ms: Option<i64>) {
        self.add(
            "a",
            "rollup_alerts",
            &parts(w, bucket_ms.is_none_or(|b| b >= DAY_MS)),
            "",
            &[],
            &["severity"],
            &[
                "sum(opened)",
                "sum(acknowledged)",
                "sum(resolved)",
                "sum(ack_ms_sum)",
            ],
            bucket_ms,
        );
    }

    /// Decisions by priority, outcome, reason and analyst; tag `d`.
    pub fn decisions(&mut self, w: &Window, bucket_ms: Option<i64>) {
        self.add(
            "d",
            "rollup_decisions",
            &parts(w, bucket_ms.is_none_or(|b| b >= DAY_MS)),
            "",
            &[],
            &["priority", "outcome", "reason", "analyst"],
            &[
                "sum(count)",
                "sum(decided)",
                "sum(ttd_ms_sum)",
                "sum(sla_breaches)",
            ],
            bucket_ms,
        );
    }

    /// The duration histograms by series (`tta`, `ttd:P1`…); tag `h`.
    pub fn durations(&mut self, w: &Window) {
        self.add(
            "h",
            "rollup_durations",
            &parts(w, true),
            "",
            &[],
            &["series", "bucket"],
            &["sum(count)"],
            None,
        );
    }

    /// The first hour anything was counted in (events, alerts or
    /// decisions), as its `at`; tag `f`.
    pub fn first_hour(&mut self) {
        self.members.push(Member {
            tag: "f",
            at: "min(h)".into(),
            keys: Vec::new(),
            sums: Vec::new(),
            from: "FROM (
               SELECT min(start) AS h FROM rollup_events_by WHERE span = 'hour' AND sensor_id = '' AND dim = 'severity'
               UNION ALL SELECT min(start) FROM rollup_alerts WHERE span = 'hour'
               UNION ALL SELECT min(start) FROM rollup_decisions WHERE span = 'hour')"
                .into(),
            grouped: false,
        });
    }

    /// Run every read in one statement.
    pub async fn run(self, db: &impl Sql) -> Result<Rows, ApiError> {
        let keys = self.members.iter().map(|m| m.keys.len()).max().unwrap_or(0);
        let sums = self.members.iter().map(|m| m.sums.len()).max().unwrap_or(0);
        if self.members.is_empty() {
            return Ok(Rows(Vec::new()));
        }
        let sql = self
            .members
            .iter()
            .map(|m| {
                let mut columns = vec![format!("'{}'", m.tag), m.at.clone()];
                for (values, width) in [(&m.keys, keys), (&m.sums, sums)] {
                    columns.extend(values.iter().map(|v| v.to_string()));
                    columns.resize(columns.len() + width - values.len(), "NULL".into());
                }
                let group = if m.grouped {
                    let by: Vec<String> = (2..=keys + 2).map(|i| i.to_string()).collect();
                    format!(" GROUP BY {}", by.join(", "))
                } else {
                    String::new()
                };
                format!("SELECT {} {}{group}", columns.join(", "), m.from)
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let rows = db.query(&sql, &self.params).await?;
        Ok(Rows(
            rows.into_iter()
                .filter_map(|mut r| {
                    let tag = text(&r, 0)?;
                    let at = int(&r, 1).unwrap_or(0);
                    let sums = (0..4).map(|i| int(&r, 2 + keys + i).unwrap_or(0)).collect();
                    r.truncate(2 + keys);
                    Some(Tagged {
                        tag,
                        at,
                        keys: r.split_off(2),
                        sums,
                    })
                })
                .collect(),
        ))
    }
}

const EVENT_SUMS: [&str; 3] = ["sum(events)", "sum(score_sum)", "max(max_score)"];

/// One row of a [`Batch`]: one part's group.
pub struct Tagged {
    tag: String,
    at: i64,
    keys: Vec<Value>,
    /// The sums, 0 past the member's own.
    sums: Vec<i64>,
}

impl Tagged {
    fn key(&self, i: usize) -> String {
        text(&self.keys, i).unwrap_or_default()
    }

    fn sum(&self, i: usize) -> i64 {
        self.sums.get(i).copied().unwrap_or(0)
    }
}

/// What a [`Batch`] read, added up across parts.
pub struct Rows(Vec<Tagged>);

impl Rows {
    fn tagged<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a Tagged> {
        self.0.iter().filter(move |r| r.tag == tag)
    }

    /// Events by each of `dims` (in that order); `''` is the key of events
    /// without a zone or a country.
    pub fn events_by(&self, dims: &[Dim]) -> Vec<BTreeMap<String, EventAgg>> {
        let mut out = vec![BTreeMap::<String, EventAgg>::new(); dims.len()];
        for r in self.tagged("e") {
            let dim = r.key(0);
            if let Some(i) = dims.iter().position(|d| d.name() == dim) {
                out[i].entry(r.key(1)).or_default().add(&event_agg(r));
            }
        }
        out
    }

    /// Events per bucket start and key (`keyed`: the dimension's keys; else
    /// one series, `total`).
    pub fn events_series(&self, keyed: bool) -> Vec<(i64, String, EventAgg)> {
        let mut out: BTreeMap<(i64, String), EventAgg> = BTreeMap::new();
        for r in self.tagged("s") {
            let key = if keyed { r.key(0) } else { "total".into() };
            out.entry((r.at, key)).or_default().add(&event_agg(r));
        }
        out.into_iter().map(|((at, k), a)| (at, k, a)).collect()
    }

    /// Alerts per bucket start and severity.
    pub fn alerts_series(&self) -> Vec<(i64, String, AlertAgg)> {
        let mut out: BTreeMap<(i64, String), AlertAgg> = BTreeMap::new();
        for r in self.tagged("a") {
            out.entry((r.at, r.key(0))).or_default().add(&AlertAgg {
                opened: r.sum(0),
                acknowledged: r.sum(1),
                resolved: r.sum(2),
                ack_ms_sum: r.sum(3),
            });
        }
        out.into_iter().map(|((at, k), a)| (at, k, a)).collect()
    }

    /// Alerts by severity over the whole window.
    pub fn alerts_by_severity(&self) -> BTreeMap<String, AlertAgg> {
        let mut out: BTreeMap<String, AlertAgg> = BTreeMap::new();
        for (_, severity, agg) in self.alerts_series() {
            out.entry(severity).or_default().add(&agg);
        }
        out
    }

    /// Decisions per bucket start, by priority, outcome, reason and analyst.
    pub fn decisions_series(&self) -> Vec<(i64, DecisionAgg)> {
        let mut out: BTreeMap<(i64, i64, String, String, String), [i64; 4]> = BTreeMap::new();
        for r in self.tagged("d") {
            let key = (
                r.at,
                int(&r.keys, 0).unwrap_or(0),
                r.key(1),
                r.key(2),
                r.key(3),
            );
            let sums = out.entry(key).or_default();
            for (i, s) in sums.iter_mut().enumerate() {
                *s += r.sum(i);
            }
        }
        out.into_iter()
            .map(
                |((at, priority, outcome, reason, analyst), [count, decided, ttd, sla])| {
                    (
                        at,
                        DecisionAgg {
                            priority,
                            outcome,
                            reason,
                            analyst,
                            count,
                            decided,
                            ttd_ms_sum: ttd,
                            sla_breaches: sla,
                        },
                    )
                },
            )
            .collect()
    }

    /// Decisions over the whole window.
    pub fn decisions(&self) -> Vec<DecisionAgg> {
        self.decisions_series()
            .into_iter()
            .map(|(_, d)| d)
            .collect()
    }

    /// The duration histograms by series (`tta`, `ttd:P1`…).
    pub fn histograms(&self) -> BTreeMap<String, Histogram> {
        let mut out: BTreeMap<String, Histogram> = BTreeMap::new();
        for r in self.tagged("h") {
            let Some(bucket) = int(&r.keys, 1) else {
                continue;
            };
            let h = out
                .entry(r.key(0))
                .or_insert_with(|| vec![0; BUCKET_BOUNDS_S.len() + 1]);
            if let Some(slot) = h.get_mut(bucket as usize) {
                *slot += r.sum(0);
            }
        }
        out
    }

    /// The first hour anything was counted in, if [`Batch::first_hour`] asked.
    pub fn first_hour(&self) -> Option<i64> {
        self.tagged("f")
            .next()
            .and_then(|r| (r.at != 0).then_some(r.at))
    }
}

fn event_agg(r: &Tagged) -> EventAgg {
    EventAgg {
        events: r.sum(0),
        score_sum: r.sum(1),
        max_score: r.sum(2),
    }
}

/// The window's events by each of `dims` over every sensor (one statement).
pub async fn events_by(
    db: &impl Sql,
    w: &Window,
    dims: &[Dim],
) -> Result<Vec<BTreeMap<String, EventAgg>>, ApiError> {
    events_by_of(db, w, "", dims).await
}

/// [`events_by`] of one sensor's own rows (`dims`: severity, type).
pub async fn events_by_of(
    db: &impl Sql,
    w: &Window,
    sensor: &str,
    dims: &[Dim],
) -> Result<Vec<BTreeMap<String, EventAgg>>, ApiError> {
    let mut b = Batch::default();
    b.events(w, sensor, dims);
    Ok(b.run(db).await?.events_by(dims))
}

/// The window's events per bucket start (`bucket_ms` wide: an hour or a
/// day) and key of `dim` (`None`: one series, key `total`, the sum over
/// severities).
pub async fn events_series(
    db: &impl Sql,
    w: &Window,
    bucket_ms: i64,
    dim: Option<Dim>,
) -> Result<Vec<(i64, String, EventAgg)>, ApiError> {
    let mut b = Batch::default();
    b.event_series(w, dim, bucket_ms);
    Ok(b.run(db).await?.events_series(dim.is_some()))
}

/// The window's alert counts by severity.
pub async fn alerts_by_severity(
    db: &impl Sql,
    w: &Window,
) -> Result<BTreeMap<String, AlertAgg>, ApiError> {
    let mut b = Batch::default();
    b.alerts(w, None);
    Ok(b.run(db).await?.alerts_by_severity())
}

/// The window's duration histograms by series (`tta`, `ttd:P1`…).
pub async fn histograms(
    db: &impl Sql,
    w: &Window,
) -> Result<BTreeMap<String, Histogram>, ApiError> {
    let mut b = Batch::default();
    b.durations(w);
    Ok(b.run(db).await?.histograms())
}

/// Add histograms bucket by bucket.
pub fn merged<'a>(histograms: impl IntoIterator<Item = &'a Histogram>) -> Histogram {
    let mut out = vec![0; BUCKET_BOUNDS_S.len() + 1];
    for h in histograms {
        for (o, n) in out.iter_mut().zip(h) {
            *o += n;
        }
    }
    out
}

/// The first hour anything was counted in (events, alerts or decisions).
pub async fn first_hour(db: &impl Sql) -> Result<Option<i64>, ApiError> {
    let mut b = Batch::default();
    b.first_hour();
    Ok(b.run(db).await?.first_hour())
}
