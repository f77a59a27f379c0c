//! Summaries of decision durations (time to decision, to acknowledge).

use serde::Serialize;

/// Mean, median and 90th percentile of durations, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DurationSummary {
    pub count: usize,
    pub mean_seconds: f64,
    pub median_seconds: f64,
    pub p90_seconds: f64,
}

/// Summarize durations in milliseconds (nearest-rank percentiles); `None` when empty.
pub fn summarize(mut millis: Vec<i64>) -> Option<DurationSummary> {
    if millis.is_empty() {
        return None;
    }
    millis.sort_unstable();
    let n = millis.len();
    let rank = |p: f64| millis[((p * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0;
    Some(DurationSummary {
        count: n,
        mean_seconds: millis.iter().sum::<i64>() as f64 / n as f64 / 1000.0,
        median_seconds: rank(0.5),
        p90_seconds: rank(0.9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_summaries() {
        assert_eq!(summarize(vec![]), None);
        let s = summarize((1..=10).map(|i| i * 1000).collect()).unwrap();
        assert_eq!(
            (s.count, s.mean_seconds, s.median_seconds, s.p90_seconds),
            (10, 5.5, 5.0, 9.0)
        );
        let one = summarize(vec![2500]).unwrap();
        assert_eq!((one.median_seconds, one.p90_seconds), (2.5, 2.5));
    }
}
