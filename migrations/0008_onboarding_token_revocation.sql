-- An admin can revoke an onboarding token that was not used yet.
ALTER TABLE sensor_onboarding_tokens ADD COLUMN revoked_at INTEGER;
