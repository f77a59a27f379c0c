//! The score: 0–100 from documented factors, kept with its breakdown so an
//! analyst sees why; the severity follows from it.
//!
//! score = type base (0–50, the event type's `profile`)
//!       + destination zone (low 0, medium 5, high 10, critical 20; none 0)
//!       + repeat activity of the source in the last hour (2 per earlier
//!         event, at most 15)
//!       + severity hint (info 0, low 2, medium 5, high 10, critical 15)
//!   then × the sensor's confidence (0–1), rounded, clamped to 0–100.
//!
//! Severity: < 20 info, < 40 low, < 60 medium, < 80 high, else critical.

use serde::Serialize;

use crate::classify::Criticality;

/// Earlier events of a source that can change its score (8 × 2 points
/// reaches the cap of 15): the caller need count no further.
pub const REPEATS_THAT_COUNT: u32 = 8;
use crate::event::{Event, Severity};

/// One factor's contribution.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Factor {
    pub factor: &'static str,
    pub points: f64,
    pub why: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Score {
    pub score: u8,
    pub severity: Severity,
    pub breakdown: Vec<Factor>,
}

pub fn severity_of(score: u8) -> Severity {
    match score {
        0..20 => Severity::Info,
        20..40 => Severity::Low,
        40..60 => Severity::Medium,
        60..80 => Severity::High,
        _ => Severity::Critical,
    }
}

/// Score `event`, whose destination is in a zone of `zone` criticality (if
/// any) and whose source sent `recent_from_source` earlier events in the last hour.
pub fn score(event: &Event, zone: Option<Criticality>, recent_from_source: u32) -> Score {
    let (_, base) = event.event_type.profile();
    let zone_points = match zone {
        None | Some(Criticality::Low) => 0.0,
        Some(Criticality::Medium) => 5.0,
        Some(Criticality::High) => 10.0,
        Some(Criticality::Critical) => 20.0,
    };
    let recent_from_source = recent_from_source.min(REPEATS_THAT_COUNT);
    let repeat_points = (f64::from(recent_from_source) * 2.0).min(15.0);
    let hint_points = match event.severity_hint {
        None | Some(Severity::Info) => 0.0,
        Some(Severity::Low) => 2.0,
        Some(Severity::Medium) => 5.0,
        Some(Severity::High) => 10.0,
        Some(Severity::Critical) => 15.0,
    };
    let subtotal = f64::from(base) + zone_points + repeat_points + hint_points;
    let total = (subtotal * event.confidence).round().clamp(0.0, 100.0) as u8;
    let breakdown = vec![
        Factor {
            factor: "type",
            points: f64::from(base),
            why: format!("{:?} events start at {base}", event.event_type),
        },
        Factor {
            factor: "zone",
            points: zone_points,
            why: format!("destination zone criticality {zone:?}"),
        },
        Factor {
            factor: "repeat",
            points: repeat_points,
            why: if recent_from_source == REPEATS_THAT_COUNT {
                format!(
                    "{REPEATS_THAT_COUNT} or more earlier events from the source in the last hour"
                )
            } else {
                format!("{recent_from_source} earlier events from the source in the last hour")
            },
        },
        Factor {
            factor: "severity_hint",
            points: hint_points,
            why: format!("the sensor's hint {:?}", event.severity_hint),
        },
        Factor {
            factor: "confidence",
            points: (f64::from(total) - subtotal).round(),
            why: format!("× the sensor's confidence {}", event.confidence),
        },
    ];
    Score {
        score: total,
        severity: severity_of(total),
        breakdown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventType;

    fn event(t: EventType, hint: Option<Severity>, confidence: f64) -> Event {
        Event {
            event_id: "e".into(),
            sensor_id: "s".into(),
            observed_at_ms: 0,
            event_type: t,
            source_ip: "203.0.113.9".parse().unwrap(),
            source_port: None,
            dest_ip: None,
            dest_port: None,
            protocol: None,
            severity_hint: hint,
            confidence,
            payload: Default::default(),
            tags: vec![],
            ingested_by: None,
        }
    }

    #[test]
    fn the_documented_formula() {
        let s = score(&event(EventType::BruteForce, None, 1.0), None, 0);
        assert_eq!((s.score, s.severity), (25, Severity::Low));
        let s = score(
            &event(EventType::ExploitAttempt, Some(Severity::High), 1.0),
            Some(Criticality::Critical),
            3,
        );
        assert_eq!(s.score, 40 + 20 + 6 + 10);
        assert_eq!(s.severity, Severity::High);
        let s = score(
            &event(EventType::ExploitAttempt, Some(Severity::High), 0.5),
            Some(Criticality::Critical),
            3,
        );
        assert_eq!(s.score, 38);
        let s = score(
            &event(EventType::DataExfiltration, Some(Severity::Critical), 1.0),
            Some(Criticality::Critical),
            100,
        );
        assert_eq!(
            (s.score, s.severity),
            (100, Severity::Critical),
            "clamped, repeat capped at 15"
        );
    }

    #[test]
    fn repeats_beyond_those_that_count_change_nothing() {
        let e = event(EventType::BruteForce, None, 1.0);
        let at_cap = score(&e, None, REPEATS_THAT_COUNT);
        assert_eq!(at_cap, score(&e, None, 10_000));
        assert!(score(&e, None, REPEATS_THAT_COUNT - 1).score < at_cap.score);
    }

    #[test]
    fn the_breakdown_adds_up() {
        let s = score(
            &event(EventType::C2Beacon, Some(Severity::Medium), 0.8),
            Some(Criticality::High),
            2,
        );
        let sum: f64 = s.breakdown.iter().map(|f| f.points).sum();
        assert_eq!(sum.round() as u8, s.score);
        assert_eq!(s.breakdown.len(), 5);
    }

    #[test]
    fn severity_bands() {
        assert_eq!(severity_of(0), Severity::Info);
        assert_eq!(severity_of(19), Severity::Info);
        assert_eq!(severity_of(20), Severity::Low);
        assert_eq!(severity_of(59), Severity::Medium);
        assert_eq!(severity_of(60), Severity::High);
        assert_eq!(severity_of(80), Severity::Critical);
    }
}
