//! The time a metric covers: a named range (`24h`, `7d`, `30d`, `all`) or
//! explicit `from`/`to` (RFC 3339), in whole rollup hours, and the buckets
//! a time series is cut into. `7d` and `30d` are whole UTC days (today so
//! far and the 6 or 29 before it), so a dashboard over them reads day rows
//! only; `24h` is the last 24 hours, up to the end of the current hour.

use vigil_core::rollup::{HOUR_MS, hour_of};
use vigil_core::{ApiError, FieldError};

pub const DAY_MS: i64 = 24 * HOUR_MS;
/// Most buckets one series may have.
pub const MAX_BUCKETS: i64 = 10_000;
pub const RANGES: &str = "24h, 7d, 30d, all";

/// Rollup hours `from <= hour < to` (`from` is an hour's start). `from` is
/// `None` for `all` (from the first hour anything was counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// `24h`, `7d`, `30d`, `all`, or `custom` for `from`/`to`.
    pub label: String,
    pub from: Option<i64>,
    pub to: i64,
    /// A named range: it runs up to now, so nothing after `to` has been
    /// counted in its last day yet and that day's row stands for its hours
    /// (events may be observed up to 5 minutes ahead, a sensor's clock skew:
    /// those count in today's). `from`/`to` windows end exactly at `to`.
    pub open_end: bool,
}

/// A 422 naming `field` and what it may be.
pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError {
        field: field.into(),
        message: message.into(),
    }])
}

impl Window {
    /// From the `range`, `from` and `to` query parameters at `now`: `range`
    /// (default `24h`: the current hour and the 23 before it; `7d`, `30d`:
    /// the current UTC day and the 6 or 29 before it) or `from`/`to`
    /// (either may be left out: `to` defaults to now, `from` to a day
    /// before `to`), not both.
    pub fn parse(
        range: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        now: i64,
    ) -> Result<Window, ApiError> {
        let next_hour = hour_of(now) + HOUR_MS;
        if from.is_none() && to.is_none() {
            let label = range.unwrap_or("24h");
            let today = now.div_euclid(DAY_MS) * DAY_MS;
            let from = match label {
                "24h" => Some(next_hour - 24 * HOUR_MS),
                "7d" => Some(today - 6 * DAY_MS),
                "30d" => Some(today - 29 * DAY_MS),
                "all" => None,
                _ => return Err(invalid("range", format!("must be one of {RANGES}"))),
            };
            return Ok(Window {
                label: label.into(),
                from,
                to: next_hour,
                open_end: true,
            });
        }
        if range.is_some() {
            return Err(invalid("range", "give either range or from/to, not both"));
        }
        let time = |field: &str, value: Option<&str>| -> Result<Option<i64>, ApiError> {
            value
                .map(|v| {
                    vigil_core::time::parse_rfc3339(v)
                        .ok_or_else(|| invalid(field, "must be an RFC 3339 time"))
                })
                .transpose()
        };
        let to = time("to", to)?.unwrap_or(now);
        let from = time("from", from)?.unwrap_or(to - DAY_MS);
        if from > to {
            return Err(invalid("from", "must not be after to"));
        }
        Ok(Window {
            label: "custom".into(),
            from: Some(hour_of(from)),
            // The hour `to` falls in is counted whole (rollups are hourly).
            to: hour_of(to - 1) + HOUR_MS,
            open_end: false,
        })
    }

    /// `from` for SQL: the start of time for `all`.
    pub fn from_or_min(&self) -> i64 {
        self.from.unwrap_or(i64::MIN)
    }

    /// The hours the window spans, once `all` is resolved to `first` (the
    /// first counted hour, if any).
    pub fn hours(&self, first: Option<i64>) -> i64 {
        let from = self.from.or(first).unwrap_or(self.to - HOUR_MS);
        ((self.to - from) / HOUR_MS).max(1)
    }
}

/// How a series is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    pub const ALLOWED: &str = "hour, day";

    pub fn parse(value: Option<&str>) -> Result<Bucket, ApiError> {
        match value.unwrap_or("hour") {
            "hour" => Ok(Bucket::Hour),
            "day" => Ok(Bucket::Day),
            _ => Err(invalid(
                "bucket",
                format!("must be one of {}", Bucket::ALLOWED),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }

    pub fn width(self) -> i64 {
        match self {
            Bucket::Hour => HOUR_MS,
            Bucket::Day => DAY_MS,
        }
    }

    /// The start of the bucket `ms` falls in (UTC days).
    pub fn start(self, ms: i64) -> i64 {
        ms.div_euclid(self.width()) * self.width()
    }

    /// Every bucket start from the one holding `from` to the one holding
    /// `to - 1`: the zero-filled axis of a series. More than
    /// [`MAX_BUCKETS`] is a 422.
    pub fn axis(self, from: i64, to: i64) -> Result<Vec<i64>, ApiError> {
        let first = self.start(from);
        let last = self.start(to - 1);
        let n = (last - first) / self.width() + 1;
        if n > MAX_BUCKETS {
            return Err(invalid(
                "bucket",
                format!(
                    "the range spans {n} {}s; at most {MAX_BUCKETS} buckets: narrow the range or use bucket=day",
                    self.name()
                ),
            ));
        }
        Ok((0..n.max(0)).map(|i| first + i * self.width()).collect())
    }
}

/// `YYYY-MM-DD` to the UTC midnight starting that day, in milliseconds.
pub fn parse_date(text: &str) -> Option<i64> {
    if text.len() != 10 {
        return None;
    }
    vigil_core::time::parse_rfc3339(&format!("{text}T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_010_000_000 + 1234;

    #[test]
    fn named_ranges_are_whole_hours_up_to_the_current_one() {
        let w = Window::parse(None, None, None, NOW).unwrap();
        assert_eq!(w.label, "24h");
        assert_eq!(w.to, hour_of(NOW) + HOUR_MS);
        assert_eq!(w.from, Some(w.to - 24 * HOUR_MS));
        assert_eq!(w.hours(None), 24);
        let all = Window::parse(Some("all"), None, None, NOW).unwrap();
        assert_eq!(all.from, None);
        assert_eq!(all.hours(Some(all.to - 5 * HOUR_MS)), 5);
        // 30 days: today so far (18 hours: NOW is 17:00) and the 29 days before.
        let month = Window::parse(Some("30d"), None, None, NOW).unwrap();
        assert_eq!(
            month.from,
            Some(NOW.div_euclid(DAY_MS) * DAY_MS - 29 * DAY_MS)
        );
        assert_eq!(month.hours(None), 29 * 24 + 18);
        assert!(month.open_end);
        let err = Window::parse(Some("1y"), None, None, NOW).unwrap_err();
        assert_eq!(err.status, 422);
        assert_eq!(err.errors[0].field, "range");
        assert!(err.errors[0].message.contains("24h, 7d, 30d, all"));
    }

    #[test]
    fn from_and_to_are_checked() {
        let w = Window::parse(
            None,
            Some("2026-09-21T10:30:00Z"),
            Some("2026-09-21T12:00:00Z"),
            NOW,
        )
        .unwrap();
        assert_eq!(w.to - w.from.unwrap(), 2 * HOUR_MS);
        let after = Window::parse(
            None,
            Some("2026-09-22T00:00:00Z"),
            Some("2026-09-21T00:00:00Z"),
            NOW,
        )
        .unwrap_err();
        assert_eq!(after.errors[0].field, "from");
        let bad = Window::parse(None, Some("yesterday"), None, NOW).unwrap_err();
        assert_eq!(bad.errors[0].field, "from");
        let both = Window::parse(Some("7d"), Some("2026-09-21T00:00:00Z"), None, NOW);
        assert_eq!(both.unwrap_err().errors[0].field, "range");
    }

    #[test]
    fn axes_are_zero_filled_and_bounded() {
        let from = 10 * DAY_MS + 3 * HOUR_MS;
        let axis = Bucket::Hour.axis(from, from + 3 * HOUR_MS).unwrap();
        assert_eq!(axis, vec![from, from + HOUR_MS, from + 2 * HOUR_MS]);
        let days = Bucket::Day.axis(from, from + DAY_MS).unwrap();
        assert_eq!(days, vec![10 * DAY_MS, 11 * DAY_MS]);
        let err = Bucket::Hour.axis(0, 10_001 * HOUR_MS).unwrap_err();
        assert_eq!(err.errors[0].field, "bucket");
        assert!(Bucket::Hour.axis(0, 10_000 * HOUR_MS).is_ok());
        assert_eq!(Bucket::parse(Some("week")).unwrap_err().status, 422);
        assert_eq!(parse_date("2026-11-29"), Some(1_795_910_400_000));
        assert_eq!(parse_date("2026-11-29T00:00:00Z"), None);
    }
}
