//! Priority and the SLA deadline, which follow the threat level.

use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ThreatLevel {
    Low,
    Medium,
    High,
    Critical,
}

/// P1 is the most urgent.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    /// 1 for P1 … 4 for P4 (as stored).
    pub fn rank(self) -> i64 {
        self as i64 + 1
    }

    pub fn from_rank(rank: i64) -> Option<Priority> {
        [Priority::P1, Priority::P2, Priority::P3, Priority::P4]
            .get(usize::try_from(rank - 1).ok()?)
            .copied()
    }

    pub fn from_threat_level(level: ThreatLevel) -> Priority {
        match level {
            ThreatLevel::Critical => Priority::P1,
            ThreatLevel::High => Priority::P2,
            ThreatLevel::Medium => Priority::P3,
            ThreatLevel::Low => Priority::P4,
        }
    }
}

/// Time allowed for a decision, by priority (configurable; defaults 15 min,
/// 1 h, 4 h, 24 h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaPolicy {
    pub p1_ms: i64,
    pub p2_ms: i64,
    pub p3_ms: i64,
    pub p4_ms: i64,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        const MIN: i64 = 60_000;
        SlaPolicy {
            p1_ms: 15 * MIN,
            p2_ms: 60 * MIN,
            p3_ms: 4 * 60 * MIN,
            p4_ms: 24 * 60 * MIN,
        }
    }
}

impl SlaPolicy {
    /// From the minutes allowed for P1,P2,P3,P4 (`"15,60,240,1440"`), as
    /// the `decision_sla_minutes` setting holds them.
    pub fn from_minutes(list: &str) -> Result<SlaPolicy, String> {
        const WHAT: &str =
            "must be four whole numbers of minutes from 1 to 525600 (a year), P1 to P4";
        let minutes: Vec<i64> = list
            .split(',')
            .map(|m| {
                m.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|m| (1..=525_600).contains(m))
            })
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{:?} {WHAT}", list.trim()))?;
        match minutes[..] {
            [p1, p2, p3, p4] => Ok(SlaPolicy {
                p1_ms: p1 * 60_000,
                p2_ms: p2 * 60_000,
                p3_ms: p3 * 60_000,
                p4_ms: p4 * 60_000,
            }),
            _ => Err(format!("{:?} {WHAT}", list.trim())),
        }
    }

    pub fn deadline(&self, priority: Priority, submitted_at: i64) -> i64 {
        submitted_at
            + match priority {
                Priority::P1 => self.p1_ms,
                Priority::P2 => self.p2_ms,
                Priority::P3 => self.p3_ms,
                Priority::P4 => self.p4_ms,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_and_deadline_follow_the_threat_level() {
        let sla = SlaPolicy::default();
        assert_eq!(
            Priority::from_threat_level(ThreatLevel::Critical),
            Priority::P1
        );
        assert_eq!(sla.deadline(Priority::P1, 0), 15 * 60_000);
        assert_eq!(sla.deadline(Priority::P4, 0), 24 * 60 * 60_000);
        assert!(Priority::P1 < Priority::P2, "P1 sorts first");
    }
}
