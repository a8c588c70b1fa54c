//! The server's shared state and the lock that makes commands atomic.
//!
//! [`Shared`] is what every connection task holds. Its [`State`] sits behind one
//! mutex: a connection locks it once per batch of pipelined commands and runs them
//! back to back, so each command sees and leaves a whole state, as in Redis. The
//! lock is held only for the commands themselves; reading from sockets, parsing
//! and encoding replies happen outside it, on both cores. A snapshot takes the lock
//! only for the O(1) keyspace clone (see [`crate::keyspace`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Instant;

use crate::blocking::Blocking;
use crate::clients::ClientRegistry;
use crate::config::Config;
use crate::keyspace::encodings::Encodings;
use crate::keyspace::Keyspace;
use crate::persistence::PersistState;
use crate::rng::Rng;

/// Everything commands read and change, guarded by [`Shared::state`].
pub struct State {
    pub keyspace: Keyspace,
    /// Changes since the last successful save (Redis's `server.dirty`).
    pub dirty: u64,
    pub blocking: Blocking,
    pub rng: Rng,
    pub stats: Stats,
    pub persistence: PersistState,
    /// Recent counter samples for INFO's instantaneous rates.
    pub instantaneous: crate::metrics::Instantaneous,
    /// False after DEBUG SET-ACTIVE-EXPIRE 0: only lazy expiry reclaims keys.
    pub active_expire: bool,
    pub slowlog: crate::slowlog::SlowLog,
    pub latency: crate::latency::LatencyMonitor,
    /// Pub/sub channels, patterns and keyspace-notification settings.
    pub pubsub: crate::pubsub::PubSub,
    /// The collection encoding limits, copied from the config (CONFIG SET updates them).
    pub encodings: Encodings,
    /// Watched keys and the transactions a write made fail.
    pub watches: crate::transaction::Watches,
    /// Slow log and latency thresholds, copied from the config.
    pub monitor_limits: MonitorLimits,
    /// When the command about to run started, for connections that run a
    /// batch: each command's end is the next one's start, so timing a
    /// command costs one clock read (see `commands::dispatch`). `None`
    /// outside a batch.
    pub command_clock: Option<Instant>,
    /// The Lua state, the EVAL script cache and the function libraries.
    pub scripting: crate::scripting::Scripting,
    /// maxmemory settings (copied from the config), the eviction pool and
    /// its counters.
    pub eviction: crate::eviction::Eviction,
    /// Replication ids, offset, backlog, replicas and the link to a primary.
    pub repl: crate::replication::Replication,
}

impl State {
    pub fn new(databases: usize) -> State {
        State {
            keyspace: Keyspace::new(databases),
            dirty: 0,
            blocking: Blocking::default(),
            rng: Rng::from_entropy(),
            stats: Stats::default(),
            persistence: PersistState::default(),
            instantaneous: Default::default(),
            active_expire: true,
            slowlog: Default::default(),
            latency: Default::default(),
            pubsub: Default::default(),
            encodings: Encodings::default(),
            watches: Default::default(),
            monitor_limits: MonitorLimits::default(),
            command_clock: None,
            scripting: crate::scripting::Scripting::new(Default::default()),
            eviction: Default::default(),
            repl: Default::default(),
        }
    }
}

impl State {
    /// A command changed `key` in database `db`: touches the key's watchers
    /// and publishes keyspace event `event` of `class` (a
    /// [`crate::pubsub::notify`] constant), as Redis pairs `signalModifiedKey`
    /// with `notifyKeyspaceEvent`.
    pub fn key_changed(&mut self, db: usize, class: u32, event: &str, key: &[u8], now_ms: i64) {
        if !self.watches.is_empty() {
            self.watches.touch(db, key, self.keyspace.db(db));
        }
        self.key_event(db, class, event, key, now_ms);
    }

    /// Publishes keyspace event `event` of `class` for `key` without
    /// touching its watchers: for the changes Redis announces but does not
    /// count as modifying the key (a consumer group's metadata).
    pub fn key_event(&mut self, db: usize, class: u32, event: &str, key: &[u8], now_ms: i64) {
        if self.pubsub.notify_flags & class == 0 {
            return;
        }
        // Keys this command found expired were expired before it wrote: their
        // `expired` events go first, as in Redis.
        if self.keyspace.db(db).has_expired_log() {
            crate::pubsub::notify::flush_expired(self, db, now_ms);
        }
        crate::pubsub::notify::emit(&self.pubsub, class, event, key, db, now_ms);
    }
}

/// Counters INFO stats reports that change under the state lock.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub total_commands_processed: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub total_error_replies: u64,
    /// Error replies by their first word (`ERR`, `WRONGTYPE`), for INFO errorstats.
    pub error_codes: std::collections::BTreeMap<String, u64>,
    /// Per-command counters, for INFO commandstats.
    pub commands: std::collections::HashMap<CommandName, CommandStats, foldhash::fast::FixedState>,
}

/// A command's name as its table entry holds it: hashed and compared by
/// address, since each name is one `'static` string in the command table.
/// Counting a call then hashes one word, not the name's bytes.
#[derive(Debug, Clone, Copy)]
pub struct CommandName(pub &'static str);

impl PartialEq for CommandName {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for CommandName {}

impl std::hash::Hash for CommandName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.0.as_ptr() as usize);
    }
}

/// The slow log and latency monitor settings, copied from the config (CONFIG
/// SET updates them) so that dispatch reads no lock per command.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonitorLimits {
    /// `slowlog-log-slower-than` in µs; negative disables the slow log.
    pub slowlog_slower_than: i64,
    pub slowlog_max_len: usize,
    /// `latency-monitor-threshold` in ms; 0 disables the monitor.
    pub latency_threshold: u64,
}

impl MonitorLimits {
    pub fn of(config: &Config) -> MonitorLimits {
        MonitorLimits {
            slowlog_slower_than: config.slowlog_log_slower_than,
            slowlog_max_len: usize::try_from(config.slowlog_max_len).unwrap_or(usize::MAX),
            latency_threshold: config.latency_monitor_threshold,
        }
    }
}

/// One command's `cmdstat_<name>` counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommandStats {
    pub calls: u64,
    pub usec: u64,
    /// Refused before running (arity, MISCONF).
    pub rejected_calls: u64,
    /// Ran and answered with an error.
    pub failed_calls: u64,
}

impl Stats {
    /// The counters of command `name`.
    #[inline]
    pub fn command(&mut self, name: &'static str) -> &mut CommandStats {
        self.commands.entry(CommandName(name)).or_default()
    }

    /// Counts one error reply under its code, as Redis's errorstats does.
    pub fn record_error(&mut self, text: &str) {
        self.total_error_replies += 1;
        let code = text.split(' ').next().unwrap_or("ERR");
        // Redis stops adding new codes after 128 distinct ones.
        let full = self.error_codes.len() >= 128;
        match self.error_codes.get_mut(code) {
            Some(n) => *n += 1,
            None if !full => {
                self.error_codes.insert(code.to_string(), 1);
            }
            None => {}
        }
    }
}

/// Counters updated outside the state lock.
#[derive(Debug, Default)]
pub struct NetStats {
    pub total_connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    /// Socket reads and writes that moved data (INFO `total_*_processed`).
    pub reads_processed: AtomicU64,
    pub writes_processed: AtomicU64,
}

impl NetStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// What every connection task and background job holds (behind an `Arc`).
pub struct Shared {
    pub state: Mutex<State>,
    pub config: RwLock<Config>,
    pub clients: ClientRegistry,
    pub net: NetStats,
    pub started: Instant,
    pub run_id: String,
    /// The TCP port actually bound (differs from the configured one for port 0).
    pub bound_port: AtomicU64,
    /// Set to true to begin shutdown; connections and jobs watch it.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// The script holding the lock, read without it (BUSY, SCRIPT KILL).
    pub scripts: std::sync::Arc<crate::scripting::busy::ScriptWatch>,
    /// The start-up load in progress, read without the lock (`-LOADING`).
    pub loading: crate::persistence::loading::Loading,
    /// This very `Shared`, for the threads a command starts (a replica's link).
    pub me: std::sync::OnceLock<std::sync::Weak<Shared>>,
}

impl Shared {
    pub fn new(config: Config) -> Shared {
        let mut state = State::new(config.databases);
        // Commands read these copies under the state lock, not the config lock.
        state.pubsub.notify_flags = config.notify_keyspace_events;
        state.pubsub.limit = config.pubsub_output_limit;
        state.encodings = encodings_of(&config);
        state.monitor_limits = MonitorLimits::of(&config);
        state.eviction.settings = crate::eviction::Settings::of(&config);
        state.repl.settings = crate::replication::Settings::of(&config);
        crate::eviction::Settings::tracking(&config).install();
        let clients = ClientRegistry::default();
        clients.set_memory_limit(crate::eviction::client_limit(&config));
        let mut rng = Rng::from_entropy();
        let run_id: String = (0..40)
            .map(|_| char::from_digit((rng.next_u64() % 16) as u32, 16).unwrap_or('0'))
            .collect();
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let scripts = state.scripting.watch().clone();
        scripts.set_threshold_ms(busy_threshold(&config));
        Shared {
            state: Mutex::new(state),
            config: RwLock::new(config),
            clients,
            net: NetStats::default(),
            started: Instant::now(),
            run_id,
            bound_port: AtomicU64::new(0),
            shutdown,
            scripts,
            loading: Default::default(),
            me: Default::default(),
        }
    }

    /// An owning handle on this `Shared`, once the server runs.
    pub fn self_arc(&self) -> Option<std::sync::Arc<Shared>> {
        self.me.get().and_then(std::sync::Weak::upgrade)
    }

    /// Locks the state. A panic while holding the lock must not take the server
    /// down with it, so poisoning is ignored: every command leaves the state whole
    /// before it can panic (they validate first, then mutate).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> std::sync::RwLockReadGuard<'_, Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config_mut(&self) -> std::sync::RwLockWriteGuard<'_, Config> {
        self.config.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// `busy-reply-threshold` (alias `lua-time-limit`) in milliseconds.
pub fn busy_threshold(config: &Config) -> u64 {
    config.extra_i64("busy-reply-threshold", 5000).max(0) as u64
}

/// The encoding limits `config` sets (stored parameters, Redis's defaults when absent).
pub fn encodings_of(config: &Config) -> Encodings {
    let get = |name: &str, default: usize| {
        usize::try_from(config.extra_i64(name, default as i64)).unwrap_or(default)
    };
    let d = Encodings::default();
    Encodings {
        hash_max_listpack_entries: get("hash-max-listpack-entries", d.hash_max_listpack_entries),
        hash_max_listpack_value: get("hash-max-listpack-value", d.hash_max_listpack_value),
        set_max_intset_entries: get("set-max-intset-entries", d.set_max_intset_entries),
        zset_max_listpack_entries: get("zset-max-listpack-entries", d.zset_max_listpack_entries),
        zset_max_listpack_value: get("zset-max-listpack-value", d.zset_max_listpack_value),
        stream_node_max_entries: get("stream-node-max-entries", d.stream_node_max_entries),
        stream_node_max_bytes: get("stream-node-max-bytes", d.stream_node_max_bytes),
        list_max_listpack_size: config
            .extra_i64("list-max-listpack-size", d.list_max_listpack_size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_by_code() {
        let mut s = Stats::default();
        s.record_error("ERR syntax error");
        s.record_error("WRONGTYPE Operation against a key");
        s.record_error("ERR no such key");
        assert_eq!(s.total_error_replies, 3);
        assert_eq!(s.error_codes["ERR"], 2);
        assert_eq!(s.error_codes["WRONGTYPE"], 1);
    }
}
