-- Sensor control: each sensor's configuration, a JSON object the sensor
-- software reads. Changed through `PATCH /api/sensors/{id}` (If-Match,
-- audited, published as `sensor.updated`); the relay publishes it retained
-- to `vigil/sensors/{id}/control`, so a sensor that (re)connects gets it.
ALTER TABLE sensors ADD COLUMN config TEXT NOT NULL DEFAULT '{}'
    CHECK (json_valid(config) AND json_type(config) = 'object');
