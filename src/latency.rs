//! The latency monitor: per-event histories of spikes at or above
//! `latency-monitor-threshold`, as LATENCY LATEST / HISTORY / DOCTOR show them.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

/// Samples kept per latency event (Redis's LATENCY_TS_LEN).
const LATENCY_SAMPLES: usize = 160;

/// One latency event's history.
#[derive(Debug, Default, Clone)]
pub struct LatencySeries {
    /// (unix seconds, milliseconds), oldest first.
    pub samples: VecDeque<(i64, u64)>,
    pub max: u64,
}

/// The latency monitor's events, by name.
#[derive(Debug, Default)]
pub struct LatencyMonitor {
    pub events: BTreeMap<&'static str, LatencySeries>,
    /// `latency-monitor-threshold` as of the last command, for recorders
    /// that run without the configuration at hand.
    pub threshold: u64,
}

impl LatencyMonitor {
    /// Adds a sample; samples in the same second keep the larger.
    pub fn add(&mut self, event: &'static str, ms: u64, unix_secs: i64) {
        let series = self.events.entry(event).or_default();
        series.max = series.max.max(ms);
        match series.samples.back_mut() {
            Some((t, v)) if *t == unix_secs => *v = (*v).max(ms),
            _ => {
                series.samples.push_back((unix_secs, ms));
                if series.samples.len() > LATENCY_SAMPLES {
                    series.samples.pop_front();
                }
            }
        }
    }

    /// Records `ms` if the monitor is on and it reaches `threshold`.
    pub fn record(&mut self, event: &'static str, ms: u64, threshold: u64) {
        if threshold > 0 && ms >= threshold {
            self.add(event, ms, unix_secs());
        }
    }

    /// Records a snapshot event whenever the monitor is on (see the module doc).
    pub fn record_snapshot(&mut self, event: &'static str, usec: u64, threshold: u64) {
        if threshold > 0 {
            self.add(event, usec / 1000, unix_secs());
        }
    }

    /// A background save finished after `usec` (recorded as `snapshot-save`).
    pub fn record_background_save(&mut self, usec: u64) {
        self.record_snapshot("snapshot-save", usec, self.threshold);
    }

    pub fn reset(&mut self, names: &[Bytes]) -> usize {
        if names.is_empty() {
            let n = self.events.len();
            self.events.clear();
            return n;
        }
        let before = self.events.len();
        self.events.retain(|name, _| {
            !names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        });
        before - self.events.len()
    }
}

pub fn unix_secs() -> i64 {
    crate::keyspace::unix_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn latency_samples_merge_per_second() {
        let mut m = LatencyMonitor::default();
        m.add("command", 5, 100);
        m.add("command", 9, 100);
        m.add("command", 2, 101);
        let s = &m.events["command"];
        assert_eq!(s.samples, VecDeque::from(vec![(100, 9), (101, 2)]));
        assert_eq!(s.max, 9);
        m.record("command", 1, 0);
        m.record("expire-cycle", 3, 5);
        assert!(!m.events.contains_key("expire-cycle"));
        assert_eq!(m.reset(&[b("COMMAND")]), 1);
        assert!(m.events.is_empty());
    }
}
