-- What the relay received over MQTT and could not store (malformed payload,
-- wrong topic, a key that does not speak for the topic's sensor): kept with
-- the reason, never dropped silently, and counted in the relay's metrics.
CREATE TABLE dead_letters (
    id            INTEGER PRIMARY KEY,
    received_at   INTEGER NOT NULL,
    topic         TEXT NOT NULL,
    sensor_id     TEXT,              -- from the topic, when it names one
    reason        TEXT NOT NULL,
    payload       BLOB NOT NULL,     -- the first 16 KiB
    payload_bytes INTEGER NOT NULL   -- the whole message's size
);
CREATE INDEX dead_letters_by_time ON dead_letters (received_at);
