//! Per-client memory limits: `client-query-buffer-limit` (unparsed input) and
//! `client-output-buffer-limit` (replies not yet written), with Redis's
//! semantics: a client over the hard limit, or over the soft limit for longer
//! than its seconds, is disconnected without the rest of its output.
//!
//! Redis leaves normal clients unlimited (`normal 0 0 0`); forkless bounds them
//! by default so one client that never reads cannot grow the server's memory
//! without end (see [`DEFAULT_NORMAL`]).

use std::time::{Duration, Instant};

/// One class's limits; 0 disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObufLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

/// Normal clients: 1 GiB hard, or 256 MiB held for 60 s.
pub const DEFAULT_NORMAL: ObufLimit = ObufLimit {
    hard: 1 << 30,
    soft: 256 << 20,
    soft_seconds: 60,
};

/// The three classes Redis configures (forkless has no replicas; the class is
/// kept so configuration written for Redis is accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObufLimits {
    pub normal: ObufLimit,
    pub replica: ObufLimit,
    pub pubsub: ObufLimit,
}

impl Default for ObufLimits {
    fn default() -> Self {
        ObufLimits {
            normal: DEFAULT_NORMAL,
            replica: ObufLimit {
                hard: 256 << 20,
                soft: 64 << 20,
                soft_seconds: 60,
            },
            pubsub: ObufLimit {
                hard: 32 << 20,
                soft: 8 << 20,
                soft_seconds: 60,
            },
        }
    }
}

impl ObufLimits {
    /// As CONFIG GET prints it (bytes, `slave` for the replica class as Redis 7.0 does).
    pub fn to_config_string(&self) -> String {
        let one = |l: &ObufLimit| format!("{} {} {}", l.hard, l.soft, l.soft_seconds);
        format!(
            "normal {} slave {} pubsub {}",
            one(&self.normal),
            one(&self.replica),
            one(&self.pubsub)
        )
    }

    /// Applies `<class> <hard> <soft> <seconds>` groups, as CONFIG SET does.
    pub fn apply(
        &mut self,
        text: &str,
        parse_memory: fn(&str) -> Option<i64>,
    ) -> Result<(), String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() || !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        let mut next = *self;
        for group in words.chunks(4) {
            let class = match group[0].to_ascii_lowercase().as_str() {
                "normal" => &mut next.normal,
                "replica" | "slave" => &mut next.replica,
                "pubsub" => &mut next.pubsub,
                _ => {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".into(),
                    )
                }
            };
            let hard = parse_memory(group[1]);
            let soft = parse_memory(group[2]);
            let secs = group[3].parse::<i64>().ok();
            match (hard, soft, secs) {
                (Some(h), Some(s), Some(t)) if h >= 0 && s >= 0 && t >= 0 => {
                    *class = ObufLimit {
                        hard: h as u64,
                        soft: s as u64,
                        soft_seconds: t as u64,
                    };
                }
                _ => return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .into(),
                ),
            }
        }
        *self = next;
        Ok(())
    }
}

fn from_pubsub(p: crate::pubsub::OutputLimit) -> ObufLimit {
    ObufLimit {
        hard: p.hard_bytes as u64,
        soft: p.soft_bytes as u64,
        soft_seconds: p.soft_seconds,
    }
}

/// `client-output-buffer-limit` as CONFIG GET prints it; the pubsub class is
/// the pub/sub queue's own limit (`Config::pubsub_output_limit`).
pub fn output_limit_config_text(c: &crate::config::Config) -> String {
    let mut all = c.client_output_buffer_limit;
    all.pubsub = from_pubsub(c.pubsub_output_limit);
    all.to_config_string()
}

/// CONFIG SET client-output-buffer-limit: every class, or nothing on error.
pub fn set_output_limit_config(c: &mut crate::config::Config, v: &str) -> Result<(), String> {
    let mut all = c.client_output_buffer_limit;
    all.pubsub = from_pubsub(c.pubsub_output_limit);
    all.apply(v, crate::params::parse_memory)?;
    c.client_output_buffer_limit = all;
    c.pubsub_output_limit = crate::pubsub::OutputLimit {
        hard_bytes: usize::try_from(all.pubsub.hard).unwrap_or(usize::MAX),
        soft_bytes: usize::try_from(all.pubsub.soft).unwrap_or(usize::MAX),
        soft_seconds: all.pubsub.soft_seconds,
    };
    Ok(())
}

/// Tracks how long a client's pending output has been above its soft limit.
#[derive(Debug, Default)]
pub struct ObufWatch {
    over_soft_since: Option<Instant>,
}

impl ObufWatch {
    /// Whether `pending` bytes of output break `limit` now. Call it whenever
    /// the pending size changes.
    pub fn exceeded(&mut self, limit: &ObufLimit, pending: u64, now: Instant) -> bool {
        if limit.hard > 0 && pending > limit.hard {
            return true;
        }
        if limit.soft > 0 && pending > limit.soft {
            let since = *self.over_soft_since.get_or_insert(now);
            return now.duration_since(since) >= Duration::from_secs(limit.soft_seconds);
        }
        self.over_soft_since = None;
        false
    }

    /// How long the client may stay where it is before the soft limit closes it.
    pub fn soft_deadline(&self, limit: &ObufLimit) -> Option<Instant> {
        let since = self.over_soft_since?;
        (limit.soft > 0).then(|| since + Duration::from_secs(limit.soft_seconds))
    }
}

/// Whether unparsed input of `len` bytes breaks `client-query-buffer-limit`.
pub fn query_buffer_exceeded(len: usize, limit: u64) -> bool {
    limit > 0 && len as u64 > limit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(v: &str) -> Option<i64> {
        crate::params::parse_memory(v)
    }

    #[test]
    fn config_string_round_trips() {
        let mut l = ObufLimits::default();
        let text = l.to_config_string();
        l.apply(&text, mem).unwrap();
        assert_eq!(l, ObufLimits::default());
        l.apply("normal 1mb 512kb 10 replica 0 0 0", mem).unwrap();
        assert_eq!(
            l.normal,
            ObufLimit {
                hard: 1 << 20,
                soft: 512 << 10,
                soft_seconds: 10
            }
        );
        assert_eq!(l.replica.hard, 0);
        assert!(l.apply("normal 1 2", mem).is_err());
        assert!(l.apply("bogus 1 2 3", mem).is_err());
        assert!(l.apply("normal 1 2 3 pubsub x 2 3", mem).is_err());
        // A failed SET leaves every class unchanged.
        assert_eq!(l.normal.hard, 1 << 20);
    }

    #[test]
    fn pubsub_class_is_the_pubsub_queue_limit() {
        let mut c = crate::config::Config::default();
        set_output_limit_config(&mut c, "pubsub 1mb 0 0 normal 2mb 1mb 5").unwrap();
        assert_eq!(c.pubsub_output_limit.hard_bytes, 1 << 20);
        assert_eq!(c.client_output_buffer_limit.normal.hard, 2 << 20);
        assert_eq!(
            output_limit_config_text(&c),
            "normal 2097152 1048576 5 slave 268435456 67108864 60 pubsub 1048576 0 0"
        );
        assert!(set_output_limit_config(&mut c, "pubsub 1 2").is_err());
        assert_eq!(c.pubsub_output_limit.hard_bytes, 1 << 20);
    }

    #[test]
    fn hard_limit_closes_at_once_soft_after_its_seconds() {
        let limit = ObufLimit {
            hard: 100,
            soft: 10,
            soft_seconds: 2,
        };
        let mut w = ObufWatch::default();
        let t0 = Instant::now();
        assert!(!w.exceeded(&limit, 5, t0));
        assert!(w.exceeded(&limit, 101, t0));
        assert!(!w.exceeded(&limit, 50, t0));
        assert!(!w.exceeded(&limit, 50, t0 + Duration::from_secs(1)));
        assert!(w.exceeded(&limit, 50, t0 + Duration::from_secs(2)));
        // Dropping under the soft limit resets the clock.
        assert!(!w.exceeded(&limit, 5, t0 + Duration::from_secs(3)));
        assert!(!w.exceeded(&limit, 50, t0 + Duration::from_secs(4)));
        let unlimited = ObufLimit {
            hard: 0,
            soft: 0,
            soft_seconds: 0,
        };
        assert!(!w.exceeded(&unlimited, u64::MAX, t0));
    }

    #[test]
    fn query_buffer_limit() {
        assert!(!query_buffer_exceeded(10, 0));
        assert!(!query_buffer_exceeded(10, 10));
        assert!(query_buffer_exceeded(11, 10));
    }
}
