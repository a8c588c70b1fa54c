//! The primary's side of a replica's connection.
//!
//! PSYNC runs as a command under the state lock: it decides between a
//! partial and a full sync ([`psync`]), and for a full sync takes the O(1)
//! keyspace clone at the current offset, the same clone a BGSAVE takes. From
//! that moment every write is appended to the replica's [`ReplicaOut`] by
//! the writer itself, which never waits. Once the reply is out the
//! connection hands itself to [`serve`]: a thread streams the clone in
//! forkless's snapshot format with the `$EOF:` framing of Redis's diskless
//! sync, then the buffered stream follows from the replica's first ACK
//! (Redis's `repl_start_cmd_stream_on_ack`), so the replica reads nothing
//! after the snapshot's end mark until it asks for it.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ReplicaLink, ReplicaOut, SyncState};
use crate::keyspace::Keyspace;
use crate::protocol::RequestParser;
use crate::state::{NetStats, Shared, State};

/// What a PSYNC hands the connection once its reply is written.
pub enum Handoff {
    Full {
        snapshot: Keyspace,
        pins: crate::keyspace::pinned::SnapshotGuard,
        out: Arc<ReplicaOut>,
    },
    Partial {
        out: Arc<ReplicaOut>,
    },
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Handoff::Full { .. } => "Handoff::Full",
            Handoff::Partial { .. } => "Handoff::Partial",
        })
    }
}

/// Answers PSYNC `replid offset` (or SYNC, with `replid` `?`) from the
/// replica `client_id` at `ip`:`port`: the status line and the handoff.
pub fn psync(
    state: &mut State,
    client_id: u64,
    ip: String,
    port: u16,
    replid: &str,
    offset: i64,
) -> (String, Handoff) {
    let repl = &mut state.repl;
    let out = Arc::new(ReplicaOut::default());
    let link = |state: SyncState, ack: u64| ReplicaLink {
        client_id,
        ip: ip.clone(),
        port,
        out: out.clone(),
        state,
        ack_offset: ack,
        last_ack: Instant::now(),
    };
    if let Some(missing) = repl.try_partial(replid, offset) {
        repl.sync_partial_ok += 1;
        out.push(
            &missing,
            &crate::limits::ObufLimit {
                hard: 0,
                soft: 0,
                soft_seconds: 0,
            },
        );
        repl.attach(link(SyncState::Online, offset as u64 - 1));
        tracing::info!(
            "Partial resynchronization request from {ip}:{port} accepted. Sending {} bytes of backlog starting from offset {offset}.",
            missing.len()
        );
        let line = format!("CONTINUE {}", repl.replid);
        return (line, Handoff::Partial { out });
    }
    if replid != "?" {
        repl.sync_partial_err += 1;
    }
    repl.sync_full += 1;
    repl.ensure_backlog();
    let mut line = format!("FULLRESYNC {} {}", repl.replid, repl.offset);
    if let (true, Some(db)) = (repl.is_replica(), repl.stream_db) {
        // This replica's stream continues its primary's past that stream's
        // last SELECT: the replica must start in the database it selected.
        line.push_str(&format!(" {db}"));
    }
    repl.attach(link(SyncState::SendBulk, 0));
    let started = Instant::now();
    let snapshot = state.keyspace.clone();
    let pins = crate::keyspace::pinned::SnapshotGuard::new();
    state.persistence.latest_clone_usec = started.elapsed().as_micros() as u64;
    tracing::info!(
        "Full resync requested by replica {ip}:{port}; streaming the snapshot taken at offset {} (clone in {} us)",
        state.repl.offset,
        state.persistence.latest_clone_usec
    );
    (
        line,
        Handoff::Full {
            snapshot,
            pins,
            out,
        },
    )
}

/// A `Write` that hands 64 KiB chunks to the connection's task.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
}

const CHUNK: usize = 64 * 1024;

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

/// The nice value of the threads that encode a replica's snapshot: the
/// writers' thread keeps the CPU when they compete for it (a sync only takes
/// longer), since writers must not wait for the transfer. Measured with
/// `replication_vs_redis` (benches/README.md): nice 0 gave the writers the
/// worst p99; nice 10, 19 and SCHED_IDLE scattered more than they differed
/// on a shared machine, and 10, the mildest (a shorter sync pins less),
/// had the best writer p99 in the one batch that interleaved 10 and 19.
const SYNC_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`SYNC_NICE`]; the
/// encoder thread it starts inherits it (Linux gives a new thread its
/// creator's nice value).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id, with
        // no pointers; a failure only leaves the priority as it was.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, SYNC_NICE)
        };
        if rc != 0 {
            tracing::debug!(
                "cannot lower the sync thread's priority: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Streams the snapshot (header, records, CRC) through `tx` on a thread.
fn spawn_snapshot_writer(
    snapshot: Keyspace,
    pins: crate::keyspace::pinned::SnapshotGuard,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
) {
    let spawned = std::thread::Builder::new()
        .name("repl-sync".into())
        .spawn(move || {
            lower_priority();
            let mut out = crate::persistence::writer::CrcWriter::new(ChunkWriter {
                buf: Vec::with_capacity(CHUNK),
                tx,
            });
            let progress = crate::persistence::writer::Progress::default();
            let now = crate::keyspace::unix_ms();
            let result =
                crate::persistence::writer::write_body(&snapshot, &mut out, now, &progress)
                    .map_err(|e| e.to_string())
                    .and_then(|_| {
                        let crc = out.hasher.clone().finalize();
                        out.write_all(&crc.to_le_bytes())
                            .and_then(|_| out.flush())
                            .map_err(|e| e.to_string())
                    });
            if let Err(e) = result {
                tracing::warn!("streaming the snapshot to a replica failed: {e}");
            }
            drop(snapshot);
            drop(pins);
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the replica sync thread: {e}");
    }
}

/// Serves a replica's connection after PSYNC/SYNC until it ends.
pub async fn serve(
    shared: &Shared,
    stream: &mut TcpStream,
    client: &crate::clients::ClientState,
    handoff: Handoff,
) -> std::io::Result<()> {
    let id = client.id;
    let result = stream_to_replica(shared, stream, client, handoff).await;
    lock(shared).await.repl.detach(id);
    if let Err(e) = &result {
        tracing::info!("Connection with replica {} lost: {e}", client.addr);
    }
    result
}

async fn stream_to_replica(
    shared: &Shared,
    stream: &mut TcpStream,
    client: &crate::clients::ClientState,
    handoff: Handoff,
) -> std::io::Result<()> {
    let out = match handoff {
        Handoff::Partial { out } => out,
        Handoff::Full {
            snapshot,
            pins,
            out,
        } => {
            send_snapshot(shared, stream, client, snapshot, pins, &out).await?;
            out
        }
    };
    let mut rbuf = BytesMut::with_capacity(4096);
    let mut parser = RequestParser::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut shutdown = shared.shutdown.subscribe();
    // Once online, always online: the flag is read under the lock only until then.
    let mut online = false;
    loop {
        online = online
            || lock(shared)
                .await
                .repl
                .replicas
                .iter()
                .any(|r| r.client_id == client.id && r.state == SyncState::Online);
        if online {
            match out.take() {
                Some(chunks) if !chunks.is_empty() => {
                    for chunk in chunks {
                        stream.write_all(&chunk).await?;
                        NetStats::add(&shared.net.net_output_bytes, chunk.len() as u64);
                    }
                    continue;
                }
                Some(_) => {}
                None => return Err(dropped()),
            }
        } else if out.is_dropped() {
            return Err(dropped());
        }
        tokio::select! {
            // Until the replica's first ACK its stream only accumulates:
            // waking this task on every write would cost the writers'
            // thread a poll and a lock per write (a drop is seen at the tick).
            _ = out.ready.notified(), if online => {}
            n = stream.read_buf(&mut rbuf) => {
                if n? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                if let Some(off) = read_acks(&mut parser, &mut rbuf)? {
                    lock(shared).await.repl.ack(client.id, off);
                }
            }
            _ = tick.tick() => {
                let mut state = lock(shared).await;
                let timeout = state.repl.settings.timeout;
                if let Some(r) = state.repl.replica_mut(client.id) {
                    if r.state == SyncState::Online && r.last_ack.elapsed().as_secs() > timeout {
                        tracing::warn!("Disconnecting timedout replica: {}", client.addr);
                        return Err(std::io::ErrorKind::TimedOut.into());
                    }
                }
            }
            _ = client.info.kill_signal.notified() => return Ok(()),
            _ = shutdown.changed() => return Ok(()),
        }
        if client.info.is_killed() {
            return Ok(());
        }
    }
}

fn dropped() -> std::io::Error {
    std::io::Error::other("replica dropped for its output buffer limit")
}

/// The highest offset of the REPLCONF ACK lines from the replica.
fn read_acks(parser: &mut RequestParser, rbuf: &mut BytesMut) -> std::io::Result<Option<u64>> {
    let mut acks = Vec::new();
    loop {
        match parser.next(rbuf, 1 << 20) {
            Ok(Some(cmd)) => {
                let is_ack = cmd.len() >= 3
                    && cmd[0].eq_ignore_ascii_case(b"replconf")
                    && cmd[1].eq_ignore_ascii_case(b"ack");
                if is_ack {
                    if let Some(off) = std::str::from_utf8(&cmd[2])
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                    {
                        acks.push(off);
                    }
                }
            }
            Ok(None) => break,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    }
    Ok(acks.into_iter().max())
}

/// Locks the state from a task, never parking its worker thread behind a
/// running script (which holds the lock for as long as it runs).
async fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    while shared.scripts.running().is_some() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    shared.lock()
}

async fn send_snapshot(
    shared: &Shared,
    stream: &mut TcpStream,
    client: &crate::clients::ClientState,
    snapshot: Keyspace,
    pins: crate::keyspace::pinned::SnapshotGuard,
    out: &ReplicaOut,
) -> std::io::Result<()> {
    let mark = super::random_id();
    stream
        .write_all(format!("$EOF:{mark}\r\n").as_bytes())
        .await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    spawn_snapshot_writer(snapshot, pins, tx);
    let mut shutdown = shared.shutdown.subscribe();
    let started = Instant::now();
    let mut sent = 0u64;
    loop {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Some(chunk) => {
                    stream.write_all(&chunk).await?;
                    sent += chunk.len() as u64;
                }
                None => break,
            },
            _ = client.info.kill_signal.notified() => {
                return Err(std::io::ErrorKind::ConnectionAborted.into())
            }
            _ = shutdown.changed() => return Err(std::io::ErrorKind::ConnectionAborted.into()),
        }
        if out.is_dropped() {
            return Err(dropped());
        }
    }
    stream.write_all(mark.as_bytes()).await?;
    NetStats::add(&shared.net.net_output_bytes, sent + 40);
    let mut state = lock(shared).await;
    if let Some(r) = state.repl.replica_mut(client.id) {
        r.state = SyncState::WaitAck;
        r.last_ack = Instant::now();
    }
    tracing::info!(
        "Synchronization with replica {} succeeded ({sent} bytes of snapshot in {:.3} s)",
        client.addr,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
