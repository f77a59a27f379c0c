-- Country and autonomous system of a public source address, from the
-- MaxMind-format databases the threats component is configured with.
ALTER TABLE threat_events ADD COLUMN source_country TEXT;
ALTER TABLE threat_events ADD COLUMN source_asn INTEGER;
ALTER TABLE threat_events ADD COLUMN source_as_org TEXT;
