//! Repeat activity of a source, for a whole batch at once: the score counts
//! a source's stored events observed in the hour before each event, up to
//! [`REPEATS_THAT_COUNT`]. So the caller reads, per source, only the latest
//! that many observation times once, and this keeps them up to date as the
//! batch's own events are stored, in order.

use std::collections::HashMap;

use crate::score::REPEATS_THAT_COUNT;

/// The window the score looks back over.
pub const WINDOW_MS: i64 = 3600 * 1000;

#[derive(Debug, Default)]
pub struct RecentBySource {
    /// Per source: the latest observation times stored, newest first, at
    /// most `REPEATS_THAT_COUNT`.
    latest: HashMap<String, Vec<i64>>,
}

impl RecentBySource {
    /// From what the database holds: each source with its latest
    /// observation times (any order; extra ones are ignored).
    pub fn new(stored: impl IntoIterator<Item = (String, Vec<i64>)>) -> RecentBySource {
        let mut r = RecentBySource::default();
        for (source, times) in stored {
            for t in times {
                r.record(&source, t);
            }
        }
        r
    }

    /// Stored events of `source` observed within the hour before
    /// `observed_at_ms` (or after it), capped at `REPEATS_THAT_COUNT`.
    pub fn count(&self, source: &str, observed_at_ms: i64) -> u32 {
        self.latest.get(source).map_or(0, |times| {
            times
                .iter()
                .filter(|t| **t > observed_at_ms - WINDOW_MS)
                .count() as u32
        })
    }

    /// An event of `source` observed at `observed_at_ms` was stored.
    pub fn record(&mut self, source: &str, observed_at_ms: i64) {
        let times = self.latest.entry(source.to_string()).or_default();
        let at = times.partition_point(|t| *t >= observed_at_ms);
        times.insert(at, observed_at_ms);
        times.truncate(REPEATS_THAT_COUNT as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition: every stored event of the source observed after
    /// `t - 1h`, capped.
    fn by_definition(stored: &[(String, i64)], source: &str, t: i64) -> u32 {
        (stored
            .iter()
            .filter(|(s, at)| s == source && *at > t - WINDOW_MS)
            .count() as u32)
            .min(REPEATS_THAT_COUNT)
    }

    #[test]
    fn agrees_with_the_definition_over_a_batch() {
        // Stored before the batch: "a" often and long ago, "b" a little.
        let mut stored: Vec<(String, i64)> = (0..30)
            .map(|i| ("a".to_string(), 10_000_000 + i * 200_000))
            .chain([("b".to_string(), 14_000_000)])
            .collect();
        let mut latest: HashMap<String, Vec<i64>> = HashMap::new();
        for (s, t) in &stored {
            latest.entry(s.clone()).or_default().push(*t);
        }
        let mut recent = RecentBySource::new(latest);
        // The batch, out of order, with a source never seen.
        let batch = [
            ("a", 16_000_000),
            ("b", 14_500_000),
            ("a", 12_000_000),
            ("c", 15_000_000),
            ("c", 15_000_001),
            ("a", 9_000_000),
            ("b", 20_000_000),
        ];
        for (source, t) in batch {
            assert_eq!(
                recent.count(source, t),
                by_definition(&stored, source, t),
                "{source} at {t}"
            );
            recent.record(source, t);
            stored.push((source.to_string(), t));
        }
    }

    #[test]
    fn keeps_only_what_can_count() {
        let mut recent = RecentBySource::default();
        for t in 0..100 {
            recent.record("a", t);
        }
        assert_eq!(recent.latest["a"], [99, 98, 97, 96, 95, 94, 93, 92]);
        assert_eq!(recent.count("a", 50), REPEATS_THAT_COUNT);
        assert_eq!(recent.count("z", 50), 0);
    }
}
