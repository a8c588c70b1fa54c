//! The server loop: listeners, the accept loop, background jobs and shutdown.
//!
//! Shutdown follows mini-redis: a watch channel tells every connection and job to
//! stop; the accept loop stops taking clients, connections finish the batch they
//! are running and close, and [`run`] returns once they are gone (bounded wait).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::keyspace::expiry;
use crate::keyspace::unix_ms;
use crate::state::{NetStats, Shared};

/// How long shutdown waits for connections to close.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Binds every configured address on the configured port.
pub async fn bind(shared: &Shared) -> std::io::Result<Vec<TcpListener>> {
    let (addrs, port) = {
        let c = shared.config();
        (c.bind.clone(), c.port)
    };
    let mut listeners = Vec::new();
    let mut port_in_use = port;
    for addr in addrs {
        let addr = addr.trim_start_matches('-');
        let host = if addr.contains(':') && !addr.starts_with('[') {
            format!("[{addr}]")
        } else {
            addr.to_string()
        };
        let listener = TcpListener::bind(format!("{host}:{port_in_use}")).await?;
        // With port 0, every address shares the port the first bind got.
        port_in_use = listener.local_addr()?.port();
        listeners.push(listener);
    }
    shared
        .bound_port
        .store(port_in_use as u64, Ordering::Relaxed);
    Ok(listeners)
}

/// Runs until shutdown is requested, then drains connections.
pub async fn run(shared: Arc<Shared>, listeners: Vec<TcpListener>) {
    let mut jobs = JoinSet::new();
    jobs.spawn(active_expiry(shared.clone()));
    jobs.spawn(crate::replication::cron(shared.clone()));
    let mut accepts = JoinSet::new();
    for listener in listeners {
        accepts.spawn(accept_loop(shared.clone(), listener));
    }
    let mut shutdown = shared.shutdown.subscribe();
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    let connections: Vec<JoinSet<()>> = accepts.join_all().await;
    let drain = async {
        for mut set in connections {
            while set.join_next().await.is_some() {}
        }
    };
    if tokio::time::timeout(DRAIN_LIMIT, drain).await.is_err() {
        tracing::warn!("connections did not close within {DRAIN_LIMIT:?}; exiting anyway");
    }
    jobs.abort_all();
}

/// Accepts clients until shutdown; returns the set of connection tasks to drain.
async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) -> JoinSet<()> {
    let mut connections = JoinSet::new();
    let mut shutdown = shared.shutdown.subscribe();
    let local = listener.local_addr().ok();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                match accepted {
                    Ok((stream, peer)) => accept(&shared, &mut connections, stream, peer, local),
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
        while connections.try_join_next().is_some() {}
    }
    connections
}

fn accept(
    shared: &Arc<Shared>,
    connections: &mut JoinSet<()>,
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
) {
    NetStats::add(&shared.net.total_connections_received, 1);
    let maxclients = shared.config().maxclients;
    if shared.clients.len() >= maxclients {
        NetStats::add(&shared.net.rejected_connections, 1);
        connections.spawn(async move {
            let _ = stream
                .write_all(b"-ERR max number of clients reached\r\n")
                .await;
        });
        return;
    }
    if crate::security::refuses(&shared.config(), &peer) {
        NetStats::add(&shared.net.rejected_connections, 1);
        tracing::debug!("protected mode: refused {peer}");
        connections.spawn(async move {
            let _ = stream
                .write_all(crate::security::PROTECTED_MODE_DENIED.as_bytes())
                .await;
        });
        return;
    }
    let laddr = local.map(|a| a.to_string()).unwrap_or_default();
    let info = shared.clients.register(peer.to_string(), laddr);
    connections.spawn(crate::connection::serve(shared.clone(), stream, info));
}

/// Reclaims expired keys that nobody reads, `hz` times a second, within 25% of
/// one core, releasing the state lock between slices.
async fn active_expiry(shared: Arc<Shared>) {
    loop {
        let hz = shared.config().hz.clamp(1, 500);
        let period = Duration::from_millis(1000 / hz as u64);
        tokio::time::sleep(period).await;
        // A running script holds the lock: skip the cycle rather than park
        // this worker in the lock.
        if shared.scripts.running().is_some() {
            continue;
        }
        let budget = period / 4;
        let started = std::time::Instant::now();
        loop {
            let out = {
                let mut state = shared.lock();
                // A replica waits for its primary's DELs (Redis 7).
                if !state.active_expire || state.repl.is_replica() {
                    break;
                }
                let now = unix_ms();
                let out = expiry::expire_slice(&mut state.keyspace, now);
                crate::pubsub::notify::flush_expired_all(&mut state, now);
                if state.blocking.has_ready() {
                    crate::blocking::serve_ready(&mut state, now);
                }
                out
            };
            if !out.more || started.elapsed() >= budget {
                break;
            }
            tokio::task::yield_now().await;
        }
        let threshold = shared.config().latency_monitor_threshold;
        let ms = started.elapsed().as_millis() as u64;
        if threshold > 0 && ms >= threshold {
            shared.lock().latency.record("expire-cycle", ms, threshold);
        }
        // What the commands' eviction slices left over (Redis's eviction
        // time proc): one more slice per cycle.
        let mut state = shared.lock();
        if state.eviction.settings.maxmemory > 0 && !state.repl.is_replica() {
            crate::eviction::perform(&mut state, unix_ms());
        }
    }
}
