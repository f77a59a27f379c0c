//! Time in Vigil: integer milliseconds since the Unix epoch (UTC) in the
//! database, RFC 3339 with millisecond precision and `Z` in APIs. Parsing and
//! formatting both go through `chrono` (calendar, leap years, offsets).

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `2026-11-27T18:16:07.123Z` for a millisecond timestamp. Instants beyond
/// chrono's range (±262,000 years) are clamped to it.
pub fn rfc3339(millis: i64) -> String {
    let at = DateTime::from_timestamp_millis(millis).unwrap_or(if millis < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parse RFC 3339 (`2026-11-27T18:16:07Z`, with optional fraction and a `Z`
/// or `±hh:mm` offset) into UTC milliseconds; digits past the millisecond
/// are dropped. Dates that do not exist (`2026-02-31`) are refused.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-27T16:00:00Z.
    const NOW: i64 = 1_795_795_200_000;

    #[test]
    fn formats_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_737_600_123), "2026-11-27T00:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(NOW), "2026-11-27T16:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert!(rfc3339(i64::MAX).ends_with('Z'));
        assert!(rfc3339(i64::MIN).ends_with('Z'));
    }

    #[test]
    fn what_is_formatted_parses_back() {
        for ms in [0, 1, 999, NOW + 123, 951_782_400_000, -86_400_001] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{ms}");
        }
    }

    #[test]
    fn parses_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("2026-11-27T16:00:00Z"), Some(NOW));
        assert_eq!(parse_rfc3339("2026-11-27t16:00:00z"), Some(NOW));
        assert_eq!(parse_rfc3339("2026-11-27T17:00:00+01:00"), Some(NOW));
        assert_eq!(parse_rfc3339("2026-11-27T14:30:00-01:30"), Some(NOW));
        assert_eq!(parse_rfc3339("2026-11-27T16:00:00-00:00"), Some(NOW));
        assert_eq!(parse_rfc3339("2026-11-27T16:00:00.25Z"), Some(NOW + 250));
        assert_eq!(
            parse_rfc3339("2026-11-27T16:00:00.123456789Z"),
            Some(NOW + 123)
        );
        assert_eq!(
            parse_rfc3339("2026-11-27T17:00:00.5+01:00"),
            Some(NOW + 500)
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    }

    #[test]
    fn knows_the_calendar() {
        assert_eq!(parse_rfc3339("2026-02-31T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-04-31T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2100-02-29T00:00:00Z"), None);
        assert_eq!(
            parse_rfc3339("2028-02-29T00:00:00Z"),
            Some(1_835_395_200_000)
        );
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(
            parse_rfc3339("2026-12-31T23:59:59.999Z"),
            Some(1_798_761_599_999)
        );
    }

    #[test]
    fn refuses_what_is_not_rfc3339() {
        for bad in [
            "",
            "2026-11-27",
            "2026-13-01T00:00:00Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27T16:60:00Z",
            "2026-11-27T16:00:00",
            "2026-11-27T16:00:00.Z",
            "2026-11-27T16:00:00+0100",
            "2026-11-27T16:00:00+24:00",
            "26-11-27T16:00:00Z",
            "yesterday",
            // Multi-byte characters where the offset is: refused, never a panic.
            "2026-11-27T16:00:00+0é00",
            "2026-11-27T16:00:00+é:00",
            "2026-11-27T16:00:00.5ééé",
            "2026-11-27T16:00:00+01:0é",
            "2026-11-27T16:00:00€",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
