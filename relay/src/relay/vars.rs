//! Reading one `VIGIL_*` variable: a bad value is an error naming it.

use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Variable `name` as a whole number in `min..=max`, `default` when unset;
/// anything else is an error naming the variable.
pub fn number(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    let n: u64 = raw
        .trim()
        .parse()
        .with_context(|| format!("{name} must be a whole number, not {raw:?}"))?;
    if !(min..=max).contains(&n) {
        bail!("{name} must be between {min} and {max}, not {n}");
    }
    Ok(n)
}

/// `VIGIL_EVENT_RETENTION_DAYS` (default 90), as the app's
/// `event_retention_days`: older events are refused, and deleted.
pub fn event_retention_ms(var: &impl Fn(&str) -> Option<String>) -> Result<i64> {
    Ok(number(var, "VIGIL_EVENT_RETENTION_DAYS", 90, 1, 36_500)? as i64 * 24 * 3600 * 1000)
}

/// Variable `name` as a duration such as `7d`, `12h` or `90s`, `default`
/// when unset; at least one second.
pub fn duration(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: Duration,
) -> Result<Duration> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    let d = humantime::parse_duration(raw.trim()).with_context(|| {
        format!("{name} must be a duration such as 7d, 12h or 90s, not {raw:?}")
    })?;
    if d < Duration::from_secs(1) {
        bail!("{name} must be at least 1s, not {raw:?}");
    }
    Ok(d)
}
