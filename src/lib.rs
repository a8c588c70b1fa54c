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
//!   expiry and scan cursors.
//! - [`blocking`]: clients blocked in BLPOP and friends.
//! - [`clients`]: per-connection state and the client registry.
//! - [`persistence`]: snapshot format, writer, loader, save scheduler.
//! - [`config`]: command-line options and the live configuration.
//! - [`glob`]: Redis's glob-style pattern matching (KEYS, SCAN MATCH, CONFIG GET).
//! - [`rng`]: a small PRNG for random picks.

pub mod blocking;
pub mod clients;
pub mod commands;
pub mod config;
pub mod connection;
pub mod errors;
pub mod glob;
pub mod keyspace;
pub mod persistence;
pub mod protocol;
pub mod reply;
pub mod rng;
pub mod server;
pub mod state;

use std::sync::Arc;

use config::Config;
use state::Shared;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not listen: {0}")]
    Bind(std::io::Error),
    #[error("{0}")]
    Load(String),
}

/// Starts the server with `config` and runs it until shutdown.
pub async fn run_server(config: Config) -> Result<(), StartError> {
    let shared = Arc::new(Shared::new(config));
    let listeners = server::bind(&shared).await.map_err(StartError::Bind)?;
    let port = shared.bound_port.load(std::sync::atomic::Ordering::Relaxed);
    tracing::info!(
        "forkless {} ready to accept connections tcp port={port}",
        env!("CARGO_PKG_VERSION")
    );
    spawn_signal_handler(shared.clone());
    tokio::spawn(commands::server::info::sample_metrics(shared.clone()));
    server::run(shared.clone(), listeners).await;
    tracing::info!("forkless is now ready to exit, bye bye...");
    Ok(())
}

fn spawn_signal_handler(shared: Arc<Shared>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("could not install signal handlers");
            return;
        };
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!("received {name}, scheduling shutdown...");
            shared.begin_shutdown();
        }
    });
}
