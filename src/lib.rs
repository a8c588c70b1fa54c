//! forkless: a Redis-compatible in-memory data server whose snapshots need no fork.
//!
//! # Layout
//!
//! - [`protocol`]: the RESP request codec (multibulk and inline, Redis's limits).
//! - [`reply`]: replies and their RESP2/RESP3 encoding.
//! - [`errors`]: every error reply's exact text.
//! - [`connection`]: one client: buffered reads, pipelined execution, batched writes.
//! - [`server`]: listeners, accept loop, active expiry job, shutdown drain.
//! - [`state`]: the shared server state and the lock that makes commands atomic.
//! - [`commands`]: the command table, dispatch, and one module per family.
//! - [`keyspace`]: databases of persistent maps; the O(1) snapshot invariant;
//!   the value types' representations (hashes, sets); expiry and scan cursors;
//!   per-key access words (LRU/LFU) and the memory a snapshot pins.
//! - [`pubsub`]: channel/pattern registry, subscriber queues and their
//!   output-buffer limit, keyspace notifications.
//! - [`blocking`]: clients blocked in BLPOP and friends.
//! - [`clients`]: per-connection state and the client registry.
//! - [`transaction`]: a client's MULTI queue and watched keys.
//! - [`pause`]: CLIENT PAUSE's deadline, shared by all connections.
//! - [`slowlog`], [`latency`], [`metrics`]: the slow log, the latency monitor
//!   and the instantaneous rates INFO reports.
//! - [`persistence`]: snapshot format, writer, loader, save scheduler.
//! - [`rdb`]: Redis's RDB format: import, export, DUMP/RESTORE payloads.
//! - [`migrate`]: MIGRATE's connection to the target server.
//! - [`config`]: command-line options and the live configuration.
//! - [`cli`]: the command line read as redis-server reads it.
//! - [`security`]: AUTH's password check and protected mode.
//! - [`limits`]: per-client query and output buffer limits.
//! - [`params`]: the configuration parameter table (CONFIG GET/SET, redis.conf).
//! - [`conffile`]: reading redis.conf and CONFIG REWRITE.
//! - [`geo`]: geohash scores, search areas and distances as Redis's geo
//!   commands compute them.
//! - [`glob`]: Redis's glob-style pattern matching (KEYS, SCAN MATCH, CONFIG GET).
//! - [`longdouble`]: Redis's long double sums (INCRBYFLOAT), through a small C helper.
//! - [`numbers`]: Redis's strict integer parsing (string2ll).
//! - [`rng`]: a small PRNG for random picks.
//! - [`scripting`]: the Lua state, its sandbox and libraries, the script
//!   cache and function libraries; the running script's watch (BUSY, KILL).
//! - [`alloc`]: the memory allocator chosen at build time and its statistics.
//! - [`alloc_count`]: the counting layer over it: `used_memory` in nanoseconds.
//! - [`eviction`]: maxmemory, the eviction policies and their sampled pool.
//! - [`replication`]: the replication stream, its backlog, a replica's sync
//!   from the O(1) snapshot and a replica's link to its primary.

pub mod alloc;
pub mod alloc_count;
pub mod blocking;
pub mod busypoll;
pub mod cli;
pub mod clients;
pub mod commands;
pub mod conffile;
pub mod config;
pub mod connection;
pub mod errors;
pub mod eviction;
pub mod geo;
pub mod glob;
pub mod keyspace;
pub mod latency;
pub mod limits;
pub mod longdouble;
pub mod metrics;
pub mod migrate;
pub mod numbers;
pub mod params;
pub mod pause;
pub mod persistence;
pub mod protocol;
pub mod pubsub;
pub mod rdb;
pub mod replication;
pub mod reply;
pub mod rng;
pub mod scripting;
pub mod security;
pub mod server;
pub mod slowlog;
pub mod state;
pub mod transaction;

use std::sync::Arc;

use config::Config;
use state::Shared;

// Unit tests run on the server's allocator too (integration tests that link
// the library may install their own).
#[cfg(test)]
#[global_allocator]
static GLOBAL: alloc::Global = alloc::GLOBAL;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not listen: {0}")]
    Bind(std::io::Error),
    #[error("{0}")]
    Load(String),
    #[error("the final save failed: {0}")]
    Save(String),
}

/// Starts the server with `config` and runs it until shutdown.
pub async fn run_server(config: Config) -> Result<(), StartError> {
    alloc::set_background_thread(config.jemalloc_bg_thread);
    busypoll::set_window_us(config.busy_poll_us);
    let shared = Arc::new(Shared::new(config));
    let _ = shared.me.set(Arc::downgrade(&shared));
    alloc::mark_startup();
    let listeners = server::bind(&shared).await.map_err(StartError::Bind)?;
    let port = shared.bound_port.load(std::sync::atomic::Ordering::Relaxed);
    // As Redis: the port opens at once and clients get -LOADING until the
    // data set is in. The flag is up before the first accept.
    if persistence::dump_exists(&shared) {
        shared.loading.begin(0);
        tracing::info!("Listening on tcp port {port} while the data set loads");
    }
    let serving = tokio::spawn(server::run(shared.clone(), listeners));
    let loader = shared.clone();
    let loaded = tokio::task::spawn_blocking(move || persistence::load_at_startup(&loader))
        .await
        .unwrap_or_else(|e| Err(format!("the loading thread failed: {e}")));
    if let Err(e) = loaded {
        serving.abort();
        return Err(StartError::Load(e));
    }
    spawn_signal_handler(shared.clone());
    start_configured_replica(&shared);
    tracing::info!(
        "forkless {} ready to accept connections tcp port={port}",
        env!("CARGO_PKG_VERSION")
    );
    let save_points = tokio::spawn(persistence::scheduler::run(shared.clone()));
    tokio::spawn(metrics::sample_metrics(shared.clone()));
    tokio::spawn(busypoll::run());
    let _ = serving.await;
    save_points.abort();
    // Shutdown begun some other way than SIGTERM/SIGINT/SHUTDOWN (which save and
    // exit themselves): connections are drained, so this save is the final state.
    let result = tokio::task::spawn_blocking(move || {
        let mut state = shared.lock();
        persistence::shutdown_save(&shared, &mut state, Default::default())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    result.map_err(StartError::Save)?;
    tracing::info!("forkless is now ready to exit, bye bye...");
    Ok(())
}

/// The `replicaof` directive (config file or command line): replicate from
/// the start, as Redis does.
fn start_configured_replica(shared: &Arc<Shared>) {
    let target = shared
        .config()
        .extra
        .get("replicaof")
        .cloned()
        .unwrap_or_default();
    let mut words = target.split_whitespace();
    if let (Some(host), Some(port)) = (words.next(), words.next()) {
        match port.parse::<u16>() {
            Ok(port) => {
                let mut state = shared.lock();
                commands::replication::start_replica(shared, &mut state, host.to_string(), port);
            }
            Err(_) => tracing::warn!("replicaof: invalid master port '{port}'"),
        }
    }
}

fn spawn_signal_handler(shared: Arc<Shared>) {
    ignore_file_size_signal();
    use tokio::signal::unix::{signal, SignalKind};
    // Registered here, before the ready line, so a signal right after it
    // is caught rather than killing the process.
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("could not install signal handlers");
        return;
    };
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!("Received {name} scheduling shutdown...");
            // The save runs under the state lock (no write lands after it) on a
            // blocking thread; on success the process exits from there.
            let shared = shared.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                // As Redis 7.0: a primary waits for its replicas first.
                let timeout = replication::shutdown::timeout(&shared);
                let never = std::sync::atomic::AtomicBool::new(false);
                replication::shutdown::wait_for_replicas(&shared, timeout, &never);
                let mut state = shared.lock();
                persistence::shutdown_and_exit(&shared, &mut state, Default::default())
            })
            .await;
            let why = outcome.unwrap_or_else(|e| e.to_string());
            tracing::warn!(
                "{name} received but errors trying to shut down the server, check the logs for more information: {why}"
            );
        }
    });
}

/// A file size limit (RLIMIT_FSIZE) must make a save fail with EFBIG, not kill
/// the server: catching SIGXFSZ (25 on these targets) turns it into that error.
fn ignore_file_size_signal() {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    tokio::spawn(async {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut xfsz) = signal(SignalKind::from_raw(25)) {
            while xfsz.recv().await.is_some() {}
        }
    });
}
