-- Threat events (normalized and scored by vigil-ingest) and the alerts they raise.

CREATE TABLE threat_events (
    id             TEXT PRIMARY KEY,
    sensor_id      TEXT NOT NULL,
    event_id       TEXT NOT NULL,                -- the sensor's own id
    observed_at    INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    event_type     TEXT NOT NULL,
    source_ip      TEXT NOT NULL,
    source_class   TEXT NOT NULL,
    source_port    INTEGER,
    dest_ip        TEXT,
    dest_port      INTEGER,
    dest_zone      TEXT,
    protocol       TEXT,
    technique      TEXT,
    score          INTEGER NOT NULL CHECK (score BETWEEN 0 AND 100),
    severity       TEXT NOT NULL,
    breakdown      TEXT NOT NULL CHECK (json_valid(breakdown)),
    confidence     REAL NOT NULL,
    payload        TEXT NOT NULL CHECK (json_valid(payload)),
    tags           TEXT NOT NULL CHECK (json_valid(tags)),
    alert_id       TEXT,
    UNIQUE (sensor_id, event_id)                 -- de-duplication
);
CREATE INDEX threat_events_by_time ON threat_events (observed_at, id);
CREATE INDEX threat_events_by_source ON threat_events (source_ip, observed_at);
-- The explorer's filters, each newest first.
CREATE INDEX threat_events_by_sensor ON threat_events (sensor_id, observed_at, id);
CREATE INDEX threat_events_by_severity ON threat_events (severity, observed_at, id);
CREATE INDEX threat_events_by_type ON threat_events (event_type, observed_at, id);

CREATE TABLE alerts (
    id           TEXT PRIMARY KEY,
    group_key    TEXT NOT NULL,                  -- source | type | sensor
    status       TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    source_ip    TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    sensor_id    TEXT NOT NULL,
    severity     TEXT NOT NULL,
    max_score    INTEGER NOT NULL,
    event_count  INTEGER NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX alerts_open_by_group ON alerts (group_key, status, last_seen);
CREATE INDEX alerts_by_time ON alerts (last_seen, id);
