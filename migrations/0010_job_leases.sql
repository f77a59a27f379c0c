-- The relay's scheduled jobs (SLA escalation, sensor staleness, retention,
-- automatic playbooks). Several relays may run against one database; a relay
-- runs a job only while it holds that job's lease, so each job has one runner
-- at a time, and a crashed runner's lease simply expires.
CREATE TABLE job_leases (
    job          TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,     -- the relay instance (host, pid, start time)
    expires_at   INTEGER NOT NULL,
    -- How far a job that follows the outbox has got (the last event id it handled).
    position     INTEGER NOT NULL DEFAULT 0,
    last_run_at  INTEGER,
    last_outcome TEXT               -- JSON: what the last run did, or its error
) WITHOUT ROWID;
