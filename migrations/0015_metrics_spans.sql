-- Rollups a 30-day dashboard reads in milliseconds (issue 20's aim). 0012's
-- events table was one row per hour × sensor × type × severity × zone ×
-- country: with 10 million events that is ~2,000 rows an hour, and a 30-day
-- summary scanned 1.4 million of them (2.4–2.8 s). Now:
--
-- - events are counted per dimension (one row per hour and sensor, per
--   hour and type, …) instead of per combination, which is what every
--   reader asks for: top lists, series by one dimension, the map, the
--   fleet; and per sensor by severity and by type (a sensor's stats);
-- - every rollup has a `span`: 'hour' rows, and 'day' rows (UTC days) that
--   each writer adds to in the same statement as the hour's, so a day row is
--   always the sum of its hours. A window reads day rows for the whole days
--   inside it and hour rows for the hours at its edges.
--
-- `start` is the hour's or the day's start in epoch milliseconds.
-- `vigil metrics rebuild` recomputes all of it from the raw rows.

CREATE TABLE rollup_events_by (
    span       TEXT NOT NULL,      -- 'hour' or 'day'
    sensor_id  TEXT NOT NULL,      -- '' for every sensor, else that sensor's own breakdown
    dim        TEXT NOT NULL,      -- severity, type, sensor, zone, country ('' sensor); severity, type (a sensor)
    start      INTEGER NOT NULL,
    key        TEXT NOT NULL,      -- '' stands for none (no zone, no country)
    events     INTEGER NOT NULL,
    score_sum  INTEGER NOT NULL,
    max_score  INTEGER NOT NULL,
    PRIMARY KEY (span, sensor_id, dim, start, key)
) WITHOUT ROWID;

INSERT INTO rollup_events_by (span, sensor_id, dim, start, key, events, score_sum, max_score)
SELECT 'hour', '', 'severity', hour, severity, sum(events), sum(score_sum), max(max_score)
  FROM rollup_events GROUP BY hour, severity
UNION ALL
SELECT 'hour', '', 'type', hour, event_type, sum(events), sum(score_sum), max(max_score)
  FROM rollup_events GROUP BY hour, event_type
UNION ALL
SELECT 'hour', '', 'sensor', hour, sensor_id, sum(events), sum(score_sum), max(max_score)
  FROM rollup_events GROUP BY hour, sensor_id
UNION ALL
SELECT 'hour', '', 'zone', hour, zone, sum(events), sum(score_sum), max(max_score)
  FROM rollup_events GROUP BY hour, zone
UNION ALL
SELECT 'hour', '', 'country', hour, country, sum(events), sum(score_sum), max(max_score)
  FROM rollup_events GROUP BY hour, country
UNION ALL
SELECT 'hour', sensor_id, 'severity', hour, severity, sum(events), sum(score_sum), max(max_score)
  FROM rollup_events GROUP BY sensor_id, hour, severity
UNION ALL
SELECT 'hour', sensor_id, 'type', hour, event_type, sum(events), sum(score_sum), max(max_score)
  FROM rollup_events GROUP BY sensor_id, hour, event_type;

INSERT INTO rollup_events_by (span, sensor_id, dim, start, key, events, score_sum, max_score)
SELECT 'day', sensor_id, dim, (start / 86400000) * 86400000, key, sum(events), sum(score_sum), max(max_score)
  FROM rollup_events_by WHERE span = 'hour' GROUP BY 2, 3, 4, 5;

DROP TABLE rollup_events;

-- The other rollups keep their keys, with the span in front.
CREATE TABLE rollup_alerts_by_span (
    span          TEXT NOT NULL,
    start         INTEGER NOT NULL,
    severity      TEXT NOT NULL,
    opened        INTEGER NOT NULL,
    acknowledged  INTEGER NOT NULL,
    resolved      INTEGER NOT NULL,
    ack_ms_sum    INTEGER NOT NULL,
    PRIMARY KEY (span, start, severity)
) WITHOUT ROWID;
INSERT INTO rollup_alerts_by_span
SELECT 'hour', hour, severity, opened, acknowledged, resolved, ack_ms_sum FROM rollup_alerts;
INSERT INTO rollup_alerts_by_span
SELECT 'day', (hour / 86400000) * 86400000, severity, sum(opened), sum(acknowledged), sum(resolved), sum(ack_ms_sum)
  FROM rollup_alerts GROUP BY 2, 3;
DROP TABLE rollup_alerts;
ALTER TABLE rollup_alerts_by_span RENAME TO rollup_alerts;

CREATE TABLE rollup_decisions_by_span (
    span          TEXT NOT NULL,
    start         INTEGER NOT NULL,
    priority      INTEGER NOT NULL,
    outcome       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    analyst       TEXT NOT NULL,
    count         INTEGER NOT NULL,
    decided       INTEGER NOT NULL,
    ttd_ms_sum    INTEGER NOT NULL,
    sla_breaches  INTEGER NOT NULL,
    PRIMARY KEY (span, start, priority, outcome, reason, analyst)
) WITHOUT ROWID;
INSERT INTO rollup_decisions_by_span
SELECT 'hour', hour, priority, outcome, reason, analyst, count, decided, ttd_ms_sum, sla_breaches FROM rollup_decisions;
INSERT INTO rollup_decisions_by_span
SELECT 'day', (hour / 86400000) * 86400000, priority, outcome, reason, analyst,
       sum(count), sum(decided), sum(ttd_ms_sum), sum(sla_breaches)
  FROM rollup_decisions GROUP BY 2, 3, 4, 5, 6;
DROP TABLE rollup_decisions;
ALTER TABLE rollup_decisions_by_span RENAME TO rollup_decisions;

CREATE TABLE rollup_durations_by_span (
    span    TEXT NOT NULL,
    start   INTEGER NOT NULL,
    series  TEXT NOT NULL,
    bucket  INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (span, start, series, bucket)
) WITHOUT ROWID;
INSERT INTO rollup_durations_by_span
SELECT 'hour', hour, series, bucket, count FROM rollup_durations;
INSERT INTO rollup_durations_by_span
SELECT 'day', (hour / 86400000) * 86400000, series, bucket, sum(count)
  FROM rollup_durations GROUP BY 2, 3, 4;
DROP TABLE rollup_durations;
ALTER TABLE rollup_durations_by_span RENAME TO rollup_durations;
