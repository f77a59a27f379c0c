-- The sensor registry with onboarding tokens, and playbooks with their
-- execution history. A sensor's status (online/stale/offline) is not stored:
-- it follows from `last_heartbeat` when read (vigil-ingest `sensor`).

CREATE TABLE sensors (
    id             TEXT PRIMARY KEY,              -- also `sensor_id` in events and MQTT topics
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('network', 'honeypot', 'wireless', 'physical', 'other')),
    location       TEXT,
    description    TEXT,
    last_heartbeat INTEGER,
    heartbeat      TEXT CHECK (heartbeat IS NULL OR json_valid(heartbeat)),  -- the last one's body
    -- The last status published as `sensor.status` (the staleness job publishes the rest).
    published_status TEXT NOT NULL DEFAULT 'offline',
    version        INTEGER NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX sensors_by_name ON sensors (name, id);
CREATE INDEX sensors_by_heartbeat ON sensors (last_heartbeat);

-- Single use, expiring; only the SHA-256 of the token is kept.
CREATE TABLE sensor_onboarding_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    note        TEXT,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    sensor_id   TEXT                              -- the sensor it registered
);

CREATE TABLE playbooks (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    trigger     TEXT NOT NULL CHECK (json_valid(trigger)),
    actions     TEXT NOT NULL CHECK (json_valid(actions)),
    version     INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE playbook_executions (
    id          TEXT PRIMARY KEY,
    playbook_id TEXT NOT NULL,                    -- kept when the playbook is deleted
    playbook_name TEXT NOT NULL,
    alert_id    TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('manual', 'automatic')),
    started_by  TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('completed', 'completed_with_errors')),
    outcomes    TEXT NOT NULL CHECK (json_valid(outcomes)),   -- one per action, in order
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL
);
CREATE INDEX playbook_executions_by_time ON playbook_executions (started_at, id);
CREATE INDEX playbook_executions_by_playbook ON playbook_executions (playbook_id, started_at, id);
CREATE INDEX playbook_executions_by_alert ON playbook_executions (alert_id, started_at, id);

-- Alerts listed by status and by sensor, newest first.
CREATE INDEX alerts_by_status ON alerts (status, last_seen, id);
CREATE INDEX alerts_by_sensor ON alerts (sensor_id, last_seen, id);
