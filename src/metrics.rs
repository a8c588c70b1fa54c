//! Instantaneous metrics: the command and network counters sampled ten times a
//! second, from which INFO derives `instantaneous_ops_per_sec` and the
//! kbps rates (Redis's STATS_METRIC samples).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::Shared;

/// Samples kept for the instantaneous rates (Redis's STATS_METRIC_SAMPLES).
const SAMPLES: usize = 16;
/// How often [`sample_metrics`] samples.
const SAMPLE_PERIOD: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    commands: u64,
    input: u64,
    output: u64,
}

/// Recent counter samples, from which INFO derives per-second rates.
#[derive(Debug, Default)]
pub struct Instantaneous {
    samples: VecDeque<Sample>,
}

impl Instantaneous {
    fn push(&mut self, s: Sample) {
        if self.samples.len() > SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }

    /// The rate of one counter over the sampled window, per second.
    fn rate(&self, pick: fn(&Sample) -> u64) -> f64 {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return 0.0;
        };
        let secs = last.at.duration_since(first.at).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        pick(last).saturating_sub(pick(first)) as f64 / secs
    }

    pub fn ops_per_sec(&self) -> u64 {
        self.rate(|s| s.commands).round() as u64
    }

    pub fn input_kbps(&self) -> f64 {
        self.rate(|s| s.input) / 1024.0
    }

    pub fn output_kbps(&self) -> f64 {
        self.rate(|s| s.output) / 1024.0
    }
}

/// Samples the command and network counters (and the memory peak) every
/// 100 ms until shutdown.
pub async fn sample_metrics(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SAMPLE_PERIOD) => {}
            _ = shutdown.changed() => return,
        }
        let input = shared.net.net_input_bytes.load(Ordering::Relaxed);
        let output = shared.net.net_output_bytes.load(Ordering::Relaxed);
        crate::alloc::sample_peak();
        // Not parked in the lock behind a running script: skip this sample.
        if shared.scripts.running().is_some() {
            continue;
        }
        let mut state = shared.lock();
        let commands = state.stats.total_commands_processed;
        state.instantaneous.push(Sample {
            at: Instant::now(),
            commands,
            input,
            output,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_over_the_window() {
        let mut m = Instantaneous::default();
        assert_eq!(m.ops_per_sec(), 0);
        let t = Instant::now();
        for i in 0..20u64 {
            m.push(Sample {
                at: t + Duration::from_millis(100 * i),
                commands: 50 * i,
                input: 1024 * i,
                output: 0,
            });
        }
        assert_eq!(m.ops_per_sec(), 500);
        assert!((m.input_kbps() - 10.0).abs() < 1e-9);
        assert!(m.samples.len() <= SAMPLES + 1);
    }
}
