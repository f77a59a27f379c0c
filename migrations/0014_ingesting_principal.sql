-- Who ingested each event: the principal of the request (a user id, or
-- `key:<id>` for an API key, a sensor's included), so that a decision a
-- playbook opens on an alert can count the people whose events raised it
-- as its submitters: an analyst who posts events cannot then approve what
-- the playbook asked for (issue 22, item 5). NULL for events stored before.
ALTER TABLE threat_events ADD COLUMN ingested_by TEXT;

-- The ingesters of the alert's events when a playbook opened the decision
-- (a JSON array of principals; empty for decisions an engine or a person
-- submitted).
ALTER TABLE decisions ADD COLUMN ingested_by TEXT NOT NULL DEFAULT '[]';
