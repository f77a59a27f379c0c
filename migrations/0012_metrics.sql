-- Hourly rollups, kept in the same transaction as the rows they count
-- (vigil_core::rollup), so the metrics component answers from a few
-- thousand rows however many events there are. `hour` is the UTC hour's
-- start in epoch milliseconds. `vigil metrics rebuild` recomputes them
-- from the raw rows.

-- Events by the hour they were observed. '' stands for "none" (no zone, no
-- country): a key column must not be NULL for the upsert to find its row.
CREATE TABLE rollup_events (
    hour        INTEGER NOT NULL,
    sensor_id   TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    severity    TEXT NOT NULL,
    zone        TEXT NOT NULL,
    country     TEXT NOT NULL,
    events      INTEGER NOT NULL,
    score_sum   INTEGER NOT NULL,
    max_score   INTEGER NOT NULL,
    PRIMARY KEY (hour, sensor_id, event_type, severity, zone, country)
) WITHOUT ROWID;

-- Alerts opened, acknowledged and resolved in the hour, by the severity the
-- alert opened with (it can rise later; the opening one never changes, so a
-- rebuild finds the same key). ack_ms_sum: time from opening to acknowledgement.
CREATE TABLE rollup_alerts (
    hour          INTEGER NOT NULL,
    severity      TEXT NOT NULL,
    opened        INTEGER NOT NULL,
    acknowledged  INTEGER NOT NULL,
    resolved      INTEGER NOT NULL,
    ack_ms_sum    INTEGER NOT NULL,
    PRIMARY KEY (hour, severity)
) WITHOUT ROWID;

-- Decisions: `outcome` is `submitted` (at creation), `escalated` (each
-- escalation), or the status a deciding transition went to (approved,
-- awaiting_second_approval, rejected, dismissed), by `analyst` (who decided)
-- and dismiss `reason` ('' for none). `decided` counts the transitions that were
-- the decision's first decision; `ttd_ms_sum` and `sla_breaches` are theirs.
CREATE TABLE rollup_decisions (
    hour          INTEGER NOT NULL,
    priority      INTEGER NOT NULL,
    outcome       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    analyst       TEXT NOT NULL,
    count         INTEGER NOT NULL,
    decided       INTEGER NOT NULL,
    ttd_ms_sum    INTEGER NOT NULL,
    sla_breaches  INTEGER NOT NULL,
    PRIMARY KEY (hour, priority, outcome, reason, analyst)
) WITHOUT ROWID;

-- Fixed-bucket histograms of durations (vigil_core::rollup::BUCKET_BOUNDS_S):
-- `series` is `ttd:P1`…`ttd:P4` (time to first decision) or `tta` (time to
-- acknowledge an alert); percentiles are read from them.
CREATE TABLE rollup_durations (
    hour    INTEGER NOT NULL,
    series  TEXT NOT NULL,
    bucket  INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (hour, series, bucket)
) WITHOUT ROWID;

-- What a rebuild needs to find each alert's transitions again.
ALTER TABLE alerts ADD COLUMN opened_severity TEXT;
ALTER TABLE alerts ADD COLUMN acknowledged_at INTEGER;
ALTER TABLE alerts ADD COLUMN resolved_at INTEGER;
UPDATE alerts SET opened_severity = severity;
UPDATE alerts SET acknowledged_at = (SELECT min(a.at) FROM audit_log a
        WHERE a.subject_kind = 'alert' AND a.subject_id = alerts.id AND a.action = 'alert.acknowledged'),
    resolved_at = (SELECT min(a.at) FROM audit_log a
        WHERE a.subject_kind = 'alert' AND a.subject_id = alerts.id AND a.action = 'alert.resolved');
CREATE INDEX alerts_by_creation ON alerts (created_at);

-- Weekly reports as the relay's weekly job persisted them (the report's JSON).
CREATE TABLE weekly_reports (
    week_ending  TEXT PRIMARY KEY,      -- YYYY-MM-DD, a Sunday (UTC)
    report       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
