-- Decisions: what an engine proposes and a person disposes, with every
-- transition kept as history. Status changes are decided by the state
-- machine in vigil-core (`decision::transition`); `version` makes them
-- optimistic (the ETag), so two analysts never overwrite each other.

CREATE TABLE decisions (
    id             TEXT PRIMARY KEY,
    source         TEXT NOT NULL,                -- the proposing engine
    subject_kind   TEXT NOT NULL CHECK (subject_kind IN ('alert', 'threat', 'incident', 'sensor')),
    subject_id     TEXT NOT NULL,
    action         TEXT NOT NULL,
    parameters     TEXT NOT NULL CHECK (json_valid(parameters)),
    threat_level   TEXT NOT NULL CHECK (threat_level IN ('low', 'medium', 'high', 'critical')),
    confidence     REAL NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    summary        TEXT NOT NULL,
    rationale      TEXT NOT NULL,
    evidence       TEXT NOT NULL CHECK (json_valid(evidence)),
    priority       INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 4),
    sla_deadline   INTEGER NOT NULL,
    status         TEXT NOT NULL,
    version        INTEGER NOT NULL,
    assignee       TEXT,
    first_approver TEXT,
    submitted_by   TEXT NOT NULL,
    outcome_detail TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX decisions_queue ON decisions (priority, sla_deadline, id);
CREATE INDEX decisions_by_status ON decisions (status, sla_deadline);

CREATE TABLE decision_transitions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    decision_id TEXT NOT NULL REFERENCES decisions (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    command     TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    note        TEXT,
    reason      TEXT
);
CREATE INDEX decision_transitions_by_decision ON decision_transitions (decision_id, id);
