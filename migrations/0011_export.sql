-- Evidence packs, as built and signed: the download is these exact bytes,
-- so what was handed out can be proven later (chain of custody).
CREATE TABLE export_packs (
    id              TEXT PRIMARY KEY,
    subject_kind    TEXT NOT NULL CHECK (subject_kind IN ('alert', 'decision', 'threat', 'sensor')),
    subject_id      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    created_by      TEXT NOT NULL,
    kid             TEXT NOT NULL,                -- the key that signed manifest.sig
    manifest_sha256 TEXT NOT NULL,                -- SHA-256 of manifest.json's bytes
    files           INTEGER NOT NULL,             -- content files listed in the manifest
    events          INTEGER NOT NULL,
    size            INTEGER NOT NULL,             -- bytes of the ZIP
    content         BLOB NOT NULL                 -- the ZIP
);
CREATE INDEX export_packs_by_time ON export_packs (created_at, id);

-- A pack reads an alert's events in time order (and so do alert pages and
-- playbooks' evidence), which otherwise scans every event.
CREATE INDEX threat_events_by_alert ON threat_events (alert_id, observed_at, id);
