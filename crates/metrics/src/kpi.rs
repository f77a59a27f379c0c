//! The formulas, on numbers already read: rates, percentiles from the
//! fixed-bucket histogram, the alert-fatigue score and the risk index.
//! Each is documented in the README (Metrics) with the same constants.

use schemars::JsonSchema;
use serde::Serialize;
use vigil_core::rollup::BUCKET_BOUNDS_S;

/// `part / whole`, 0 when there is no whole, at most 1.
pub fn rate(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        (part as f64 / whole as f64).clamp(0.0, 1.0)
    }
}

/// Counts per histogram bucket (index = bucket, see
/// [`vigil_core::rollup::bucket_of`]).
pub type Histogram = Vec<i64>;

/// The `q` quantile (0–1) of a histogram in seconds: the bucket holding the
/// rank `q·n`, interpolated linearly inside it; the open last bucket (a week
/// or more) answers its lower bound. `None` when empty.
pub fn percentile(histogram: &[i64], q: f64) -> Option<f64> {
    let n: i64 = histogram.iter().sum();
    if n <= 0 {
        return None;
    }
    let rank = (q * n as f64).max(f64::MIN_POSITIVE);
    let mut before = 0i64;
    for (bucket, &count) in histogram.iter().enumerate() {
        if count > 0 && (before + count) as f64 >= rank {
            let lower = if bucket == 0 {
                0
            } else {
                BUCKET_BOUNDS_S[bucket - 1]
            } as f64;
            let Some(&upper) = BUCKET_BOUNDS_S.get(bucket) else {
                return Some(lower);
            };
            let within = (rank - before as f64) / count as f64;
            return Some(lower + within * (upper as f64 - lower));
        }
        before += count;
    }
    None
}

/// Mean, median and p90 of durations: the mean exact (from the rollups'
/// sums), the percentiles from the histogram.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Durations {
    pub count: i64,
    pub mean_seconds: f64,
    pub median_seconds: f64,
    pub p90_seconds: f64,
}

pub fn durations(count: i64, sum_ms: i64, histogram: &[i64]) -> Option<Durations> {
    if count <= 0 {
        return None;
    }
    Some(Durations {
        count,
        mean_seconds: sum_ms as f64 / count as f64 / 1000.0,
        median_seconds: percentile(histogram, 0.5)?,
        p90_seconds: percentile(histogram, 0.9)?,
    })
}

/// Dismiss reasons that say the alert was a false positive.
pub const FALSE_POSITIVE_REASONS: [&str; 5] = [
    "false_positive",
    "false_positive_motion",
    "normal_behavior",
    "camera_fault",
    "weather",
];

/// Alerts per analyst-hour that count as a full load (fatigue component 1).
pub const FULL_ALERT_LOAD: f64 = 12.0;

/// Weights of the fatigue score's components (they add up to 1).
pub const FATIGUE_WEIGHTS: [f64; 4] = [0.35, 0.25, 0.2, 0.2];

/// What the alert-fatigue score is made of.
pub struct FatigueInputs {
    /// First decisions in the window, and those that dismissed as a false positive.
    pub decided: i64,
    pub false_positives: i64,
    pub alerts_opened: i64,
    /// People who decided something in the window (at least 1 is assumed).
    pub analysts: i64,
    pub hours: i64,
    /// High and critical events (each joined or opened an alert).
    pub alerting_events: i64,
    pub median_ack_seconds: Option<f64>,
    pub ack_sla_seconds: f64,
}

/// The alert-fatigue score (0–1) and each of its components.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Fatigue {
    /// 0.35·false_positive_share + 0.25·alert_load + 0.2·repeat_alert_share + 0.2·ack_delay.
    pub score: f64,
    /// Share of first decisions that dismissed the alert as a false positive.
    pub false_positive_share: f64,
    /// Alerts opened per analyst per hour of the window.
    pub alerts_per_analyst_hour: f64,
    /// alerts_per_analyst_hour / 12, at most 1.
    pub alert_load: f64,
    /// Share of alerting (high, critical) events that repeated an alert already open.
    pub repeat_alert_share: f64,
    pub median_time_to_acknowledge_seconds: Option<f64>,
    pub ack_sla_seconds: f64,
    /// Median time to acknowledge / the acknowledgement SLA, at most 1 (0 with none).
    pub ack_delay: f64,
}

pub fn fatigue(i: &FatigueInputs) -> Fatigue {
    let false_positive_share = rate(i.false_positives, i.decided);
    let per_hour = i.alerts_opened as f64 / (i.analysts.max(1) as f64 * i.hours.max(1) as f64);
    let alert_load = (per_hour / FULL_ALERT_LOAD).min(1.0);
    let repeat_alert_share = rate(i.alerting_events - i.alerts_opened, i.alerting_events);
    let ack_delay = i
        .median_ack_seconds
        .map_or(0.0, |m| (m / i.ack_sla_seconds.max(1.0)).min(1.0));
    let [w1, w2, w3, w4] = FATIGUE_WEIGHTS;
    Fatigue {
        score: w1 * false_positive_share
            + w2 * alert_load
            + w3 * repeat_alert_share
            + w4 * ack_delay,
        false_positive_share,
        alerts_per_analyst_hour: per_hour,
        alert_load,
        repeat_alert_share,
        median_time_to_acknowledge_seconds: i.median_ack_seconds,
        ack_sla_seconds: i.ack_sla_seconds,
        ack_delay,
    }
}

/// The risk index's half-life, in hours, and the hours it looks back.
pub const RISK_HALF_LIFE_HOURS: f64 = 6.0;
pub const RISK_HOURS: usize = 24;

/// One hour of events for the risk index: their score sum and count.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HourScores {
    pub score_sum: i64,
    pub events: i64,
}

/// The exponentially weighted mean score of the hours given newest first
/// (age 0, 1, …), each hour weighing 0.5^(age / 6): recent activity counts
/// most, an hour 6 hours old half as much. 0 with no events.
pub fn weighted_mean_score(hours_newest_first: &[HourScores]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (age, h) in hours_newest_first.iter().take(RISK_HOURS).enumerate() {
        let w = 0.5f64.powf(age as f64 / RISK_HALF_LIFE_HOURS);
        num += w * h.score_sum as f64;
        den += w * h.events as f64;
    }
    if den > 0.0 { num / den } else { 0.0 }
}

/// The risk index 0–100: round(0.7·S + 30·(1 − e^(−C/3))), where S is the
/// weighted mean score (0–100) and C the open critical alerts: scores alone
/// reach 70, three open critical alerts add 19, and many approach 30.
pub fn risk_index(weighted_mean_score: f64, open_critical: i64) -> u8 {
    let c = open_critical.max(0) as f64;
    let risk = 0.7 * weighted_mean_score + 30.0 * (1.0 - (-c / 3.0).exp());
    risk.round().clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_within_buckets() {
        // Bucket 0 is [0, 10) s, 1 is [10, 30), 2 is [30, 60).
        let h = vec![2, 1, 1];
        // Rank 2 of 4 is the end of bucket 0.
        assert_eq!(percentile(&h, 0.5), Some(10.0));
        // Rank 3.6: bucket 2, 0.6 of the way from 30 to 60.
        assert!((percentile(&h, 0.9).unwrap() - 48.0).abs() < 1e-9);
        assert_eq!(percentile(&[], 0.5), None);
        let mut open = vec![0; BUCKET_BOUNDS_S.len() + 1];
        open[BUCKET_BOUNDS_S.len()] = 3;
        assert_eq!(percentile(&open, 0.9), Some(604_800.0));
        let d = durations(4, 4 * 12_000, &h).unwrap();
        assert_eq!(d.mean_seconds, 12.0);
        assert_eq!(d.median_seconds, 10.0);
    }

    #[test]
    fn fatigue_by_hand() {
        let f = fatigue(&FatigueInputs {
            decided: 10,
            false_positives: 4,
            alerts_opened: 48,
            analysts: 2,
            hours: 4,
            alerting_events: 60,
            median_ack_seconds: Some(450.0),
            ack_sla_seconds: 900.0,
        });
        assert_eq!(f.false_positive_share, 0.4);
        assert_eq!(f.alerts_per_analyst_hour, 6.0);
        assert_eq!(f.alert_load, 0.5);
        assert_eq!(f.repeat_alert_share, 0.2);
        assert_eq!(f.ack_delay, 0.5);
        // 0.35·0.4 + 0.25·0.5 + 0.2·0.2 + 0.2·0.5 = 0.14 + 0.125 + 0.04 + 0.1
        assert!((f.score - 0.405).abs() < 1e-12);
        let idle = fatigue(&FatigueInputs {
            decided: 0,
            false_positives: 0,
            alerts_opened: 0,
            analysts: 0,
            hours: 24,
            alerting_events: 0,
            median_ack_seconds: None,
            ack_sla_seconds: 900.0,
        });
        assert_eq!(idle.score, 0.0);
    }

    #[test]
    fn risk_by_hand() {
        // Newest hour: mean 80 (weight 1); six hours older: mean 20 (weight 0.5).
        let mut hours = vec![HourScores::default(); 7];
        hours[0] = HourScores {
            score_sum: 160,
            events: 2,
        };
        hours[6] = HourScores {
            score_sum: 40,
            events: 2,
        };
        let s = weighted_mean_score(&hours);
        // (160 + 0.5·40) / (2 + 0.5·2) = 180 / 3 = 60
        assert!((s - 60.0).abs() < 1e-9);
        assert_eq!(risk_index(s, 0), 42);
        // 42 + 30·(1 − e^−1) = 42 + 18.96
        assert_eq!(risk_index(s, 3), 61);
        assert_eq!(risk_index(100.0, 1000), 100);
        assert_eq!(risk_index(0.0, 0), 0);
        assert_eq!(weighted_mean_score(&[]), 0.0);
    }
}
