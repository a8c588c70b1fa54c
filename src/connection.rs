//! One client connection: buffered reads, pipelined execution, batched writes.
//!
//! Every complete command in the read buffer is parsed, then all of them run under
//! one acquisition of the state lock and their replies go out in one write, as Redis
//! does for a pipeline. A blocking command that must wait ends the batch: its reply
//! is awaited outside the lock (while still reading, so a disconnect is noticed)
//! and the rest of the pipeline continues after it. Broken framing gets the
//! protocol error and closes the connection, after the commands before it ran.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clients::{ClientInfo, ClientState};
use crate::commands::{self, BlockRequest, CommandSpec, Ctx};
use crate::keyspace::unix_ms;
use crate::limits::ObufWatch;
use crate::protocol::{ProtocolError, RequestParser};
use crate::reply::Reply;
use crate::state::{NetStats, Shared};

const READ_CHUNK: usize = 16 * 1024;
/// A batch stops taking commands once its replies reach this size; they are
/// written before the pipeline continues.
const BATCH_OUTPUT: usize = 1024 * 1024;
/// Pub/sub bytes moved from the client's queue into one write.
const MESSAGE_BATCH: usize = 64 * 1024;

/// Serves one client until it quits, breaks the protocol, disconnects or the
/// server shuts down.
pub async fn serve(shared: Arc<Shared>, mut stream: TcpStream, info: Arc<ClientInfo>) {
    let _ = stream.set_nodelay(true);
    info.fd.store(
        std::os::fd::AsRawFd::as_raw_fd(&stream) as i64,
        Ordering::Relaxed,
    );
    let mut client = ClientState::new(info.id, info.addr.clone(), info.laddr.clone(), info.clone());
    client.authenticated = crate::security::starts_authenticated(&shared.config());
    let result = run(&shared, &mut stream, &mut client).await;
    if let Err(e) = result {
        tracing::debug!(client = client.id, "connection ended: {e}");
    }
    // Not parked in the lock behind a running script.
    while shared.scripts.running().is_some() {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    {
        let mut state = shared.lock();
        state.blocking.cancel_client(client.id);
        state.watches.unwatch(client.id, &mut client.tx.watched);
        state.pubsub.remove_client(&client.subs, client.id);
    }
    shared.clients.unregister(client.id);
}

async fn run(
    shared: &Shared,
    stream: &mut TcpStream,
    client: &mut ClientState,
) -> std::io::Result<()> {
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut pending: VecDeque<Vec<Bytes>> = VecDeque::new();
    let mut parser = RequestParser::default();
    let mut specs = SpecCache::default();
    let mut shutdown = shared.shutdown.subscribe();
    // Shutdown and a kill end the connection: their futures are made once
    // and polled by every wait, not rebuilt and re-registered per request.
    let info = client.info.clone();
    let killed = info.kill_signal.notified();
    tokio::pin!(killed);
    // One poll registers this task's waker with the kill signal; it stays
    // registered for the connection's life. The loop's waits then read the
    // kill flag instead of polling the signal again, which would take the
    // signal's lock on every request.
    let killed_already =
        std::future::poll_fn(|cx| Poll::Ready(killed.as_mut().poll(cx).is_ready())).await;
    if killed_already {
        return Ok(());
    }
    let shut_down = shutdown.changed();
    tokio::pin!(shut_down);
    // Read again before each wait, after the batch: a CONFIG SET the batch
    // ran applies to this connection's next wait and parse.
    let mut limits = Limits::read(shared);
    loop {
        let max_bulk = limits.max_bulk;
        let mut protocol_error: Option<ProtocolError> = None;
        loop {
            match parser.next(&mut rbuf, max_bulk) {
                Ok(Some(cmd)) if cmd.is_empty() => continue,
                Ok(Some(cmd)) => pending.push_back(cmd),
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }

        let buffered_before = rbuf.len();
        while !pending.is_empty() && !client.close_after_reply {
            commands::server::control::wait_unpaused(shared, client, pending.iter()).await;
            answer_while_script_runs(shared, client, &mut pending, &mut wbuf).await;
            if pending.is_empty() {
                break;
            }
            let batch = Batch {
                pending: &mut pending,
                parser: &mut parser,
                specs: &mut specs,
                obuf_hard: limits.obuf_hard,
            };
            if let Some(block) = run_batch(shared, client, batch, &mut wbuf) {
                flush(shared, stream, &mut wbuf, client).await?;
                let reply = wait_blocked(shared, stream, client, block, &mut rbuf).await?;
                if client.info.is_killed() {
                    // CLIENT KILL ends the wait with no reply, as in Redis.
                    return Ok(());
                }
                client.close_after_reply |= crate::blocking::closes_connection(&reply);
                if !client.reply_suppressed() {
                    reply.encode(client.proto, &mut wbuf);
                }
            } else if !pending.is_empty() {
                // The batch stopped at BATCH_OUTPUT: write before running more,
                // so a client that does not read holds at most one batch's output.
                flush(shared, stream, &mut wbuf, client).await?;
            }
        }
        // Bytes that arrived while a command was blocked are parsed before reading more.
        let read_while_blocked = rbuf.len() > buffered_before;

        if let Some(e) = protocol_error {
            Reply::Error(format!("ERR {e}")).encode(client.proto, &mut wbuf);
            flush(shared, stream, &mut wbuf, client).await?;
            tracing::debug!(client = client.id, "closing after {e}");
            return Ok(());
        }
        flush(shared, stream, &mut wbuf, client).await?;
        if let Some(handoff) = client.repl.handoff.take() {
            // PSYNC/SYNC answered: the connection now carries the stream.
            return crate::replication::primary::serve(shared, stream, client, handoff).await;
        }
        if client.close_after_reply || client.info.killed.load(Ordering::Relaxed) {
            return Ok(());
        }
        if read_while_blocked {
            continue;
        }

        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 2 {
            rbuf.reserve(READ_CHUNK);
        }
        // The `timeout` setting closes clients idle that long (0 = never).
        limits = Limits::read(shared);
        let idle_limit = limits.idle_secs;
        let idle = async {
            match idle_limit {
                0 => std::future::pending().await,
                secs => tokio::time::sleep(std::time::Duration::from_secs(secs)).await,
            }
        };
        tokio::select! {
            // In order: the read is what is ready nearly every time.
            biased;
            n = stream.read_buf(&mut rbuf) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                {
                    NetStats::add(&shared.net.net_input_bytes, n as u64);
                    NetStats::add(&shared.net.reads_processed, 1);
                }
                check_query_buffer(client, &rbuf, limits.query_buffer)?;
                client.query_buffer_bytes = rbuf.capacity();
                report_memory(shared, client, wbuf.capacity());
            }
            _ = &mut shut_down => return Ok(()),
            _ = kill_flag(&info) => return Ok(()),
            Some(line) = commands::server::control::next_monitor_line(&mut client.monitor) => {
                Reply::Simple(line).encode(client.proto, &mut wbuf);
            }
            frame = client.subs.next_frame() => {
                // A pub/sub message while idle: it and whatever else is queued
                // go out in the next flush.
                if let Some(frame) = frame {
                    wbuf.extend_from_slice(&frame);
                    client.subs.taken(frame.len());
                    client.subs.drain_into(client.proto, &mut wbuf, MESSAGE_BATCH);
                }
            }
            _ = idle => {
                tracing::debug!(client = client.id, "closing idle client");
                return Ok(());
            }
        }
    }
}

/// While a script holds the state lock, answers what can be answered without
/// it (SCRIPT KILL, FUNCTION KILL, and `-BUSY` past the threshold) and waits
/// for the script to end before locking, so this task never sleeps in the
/// lock for a whole script. A client that locks just as a script starts
/// waits for that script in the lock.
async fn answer_while_script_runs(
    shared: &Shared,
    client: &mut ClientState,
    pending: &mut VecDeque<Vec<Bytes>>,
    wbuf: &mut BytesMut,
) {
    while let Some(args) = pending.front() {
        if shared.scripts.running().is_none() {
            return;
        }
        match commands::scripting::answer_while_running(&shared.scripts, args) {
            Some(reply) => {
                pending.pop_front();
                if !client.reply_suppressed() {
                    reply.encode(client.proto, wbuf);
                }
            }
            None => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    }
}

/// The parsed commands a batch runs, and the connection's helpers for them.
struct Batch<'a> {
    pending: &'a mut VecDeque<Vec<Bytes>>,
    /// Takes back the argument vectors of the commands run.
    parser: &'a mut RequestParser,
    specs: &'a mut SpecCache,
    /// `client-output-buffer-limit normal`'s hard limit, read with the batch.
    obuf_hard: u64,
}

/// The settings a connection consults on every request, read from the
/// configuration together once per turn of its loop.
struct Limits {
    max_bulk: usize,
    idle_secs: u64,
    query_buffer: u64,
    obuf_hard: u64,
}

impl Limits {
    fn read(shared: &Shared) -> Limits {
        let config = shared.config();
        Limits {
            max_bulk: config.proto_max_bulk_len,
            idle_secs: config.timeout,
            query_buffer: config.client_query_buffer_limit,
            obuf_hard: config.client_output_buffer_limit.normal.hard,
        }
    }
}

/// Ready once the client is marked killed. It registers no waker of its
/// own: the kill signal polled at the connection's start holds the task's.
fn kill_flag(info: &ClientInfo) -> impl Future<Output = ()> + '_ {
    std::future::poll_fn(move |_| {
        if info.is_killed() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
}

/// The command looked up last, by its name as sent: a pipeline mostly
/// repeats one command, whose name is then compared, not hashed again.
#[derive(Default)]
struct SpecCache {
    name: [u8; 32],
    len: usize,
    spec: Option<&'static CommandSpec>,
}

impl SpecCache {
    fn get(&mut self, name: &[u8]) -> Option<&'static CommandSpec> {
        if self.spec.is_some() && name.len() == self.len && name == &self.name[..self.len] {
            return self.spec;
        }
        let spec = commands::lookup(name);
        if let (Some(_), Some(slot)) = (spec, self.name.get_mut(..name.len())) {
            slot.copy_from_slice(name);
            self.len = name.len();
            self.spec = spec;
        }
        spec
    }
}

/// Runs pending commands under one lock until they are done or one blocks.
fn run_batch(
    shared: &Shared,
    client: &mut ClientState,
    batch: Batch<'_>,
    wbuf: &mut BytesMut,
) -> Option<BlockRequest> {
    let Batch {
        pending,
        parser,
        specs,
        obuf_hard,
    } = batch;
    let mut last_args: Option<Vec<Bytes>> = None;
    let mut blocked = None;
    {
        let mut state = shared.lock();
        // One clock read per batch: the commands of a batch run back to back
        // within microseconds, as Redis caches its clock per event-loop turn.
        let now_ms = unix_ms();
        let clock = std::time::Instant::now();
        crate::busypoll::note_batch(clock);
        state.command_clock = Some(clock);
        if pending.len() > 1 {
            // The keys of a pipeline: their trie paths load in parallel. A
            // key repeated by the next command is warmed once.
            let mut previous: Option<&[u8]> = None;
            let keys = pending
                .iter()
                .flat_map(|args| every_key(specs.get(&args[0]), args))
                .filter(|key| previous.replace(key) != Some(key));
            let db = state.keyspace.db(client.db);
            db.prefetch(keys);
            // And their members, for a pipeline on one large hash or set.
            let pairs = pending.iter().filter_map(|args| {
                let spec = specs.get(&args[0])?;
                Some((
                    first_key(Some(spec), args)?,
                    &args.get(member_at(spec))?[..],
                ))
            });
            db.prefetch_members(pairs);
            // And the members its pops on one sorted set will take (the
            // consumers of a queue kept in a sorted set).
            if let Some((key, low, high)) = pops_of(pending, specs) {
                db.prefetch_pops(key, low, high);
            }
        } else if let Some(args) = pending.front().filter(|args| args.len() > 3) {
            // One command naming several keys (MSET, MGET, DEL ...): their
            // paths load in parallel too.
            let db = state.keyspace.db(client.db);
            db.prefetch(every_key(specs.get(&args[0]), args));
        }
        while let Some(args) = pending.pop_front() {
            commands::server::control::feed_monitors(shared, client, &args);
            client.begin_command();
            let mut ctx = Ctx {
                shared,
                state: &mut state,
                client,
                now_ms,
                blocked: None,
                may_block: true,
            };
            let reply = commands::execute_as(&mut ctx, specs.get(&args[0]), &args);
            blocked = ctx.blocked.take();
            // Messages the command published to this very client, and extra
            // subscribe confirmations, precede its reply, as in Redis.
            client.subs.drain_into(client.proto, wbuf, usize::MAX);
            if blocked.is_some() {
                last_args = Some(args);
                break;
            }
            if !client.reply_suppressed() || is_subscription_push(&args, &reply) {
                reply.encode(client.proto, wbuf);
            }
            if let Some(done) = last_args.replace(args) {
                parser.reuse(done);
            }
            if obuf_hard > 0 && wbuf.len() as u64 > obuf_hard {
                // Over the hard output limit: drop the output and the client.
                tracing::warn!(
                    client = client.id,
                    "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                    client.addr
                );
                wbuf.clear();
                client.info.kill();
            }
            if client.close_after_reply || client.info.is_killed() {
                pending.clear();
                break;
            }
            if wbuf.len() >= BATCH_OUTPUT {
                break;
            }
        }
        state.command_clock = None;
    }
    // The name CLIENT LIST shows: the spec's own for a plain command, built
    // only for a container's subcommand (`config|get`) or an unknown name.
    let last_cmd: std::borrow::Cow<'static, str> = match last_args.as_deref() {
        Some(args) => match specs.get(&args[0]) {
            Some(spec) if !commands::server::is_container(spec.name) => spec.name.into(),
            _ => commands::server::display_name(args).into(),
        },
        None => "".into(),
    };
    client.publish(&last_cmd);
    if let Some(args) = last_args {
        parser.reuse(args);
    }
    blocked
}

/// Where the member a command works on sits, for warming its path in a
/// large collection: after the score for ZADD and ZINCRBY, right after the
/// key for the others (HSET, SADD, ZRANK, SISMEMBER ...).
fn member_at(spec: &CommandSpec) -> usize {
    match spec.name {
        "zadd" | "zincrby" => 3,
        _ => 2,
    }
}

/// The sorted set the first command of a batch pops from, and how many
/// members the batch's ZPOPMIN and ZPOPMAX commands on it take from its low
/// and high ends (a count that is no number counts as one: its command
/// fails before popping anything).
fn pops_of<'a>(
    pending: &'a VecDeque<Vec<Bytes>>,
    specs: &mut SpecCache,
) -> Option<(&'a [u8], usize, usize)> {
    let mut popped = |args: &'a Vec<Bytes>| -> Option<(&'a [u8], bool, usize)> {
        let spec = specs.get(&args[0])?;
        let max = match spec.name {
            "zpopmin" => false,
            "zpopmax" => true,
            _ => return None,
        };
        let count = args.get(2).map_or(Some(1), |c| {
            std::str::from_utf8(c).ok()?.parse::<usize>().ok()
        });
        Some((first_key(Some(spec), args)?, max, count.unwrap_or(1)))
    };
    let (key, _, _) = popped(pending.front()?)?;
    let (mut low, mut high) = (0usize, 0usize);
    for (k, max, count) in pending.iter().filter_map(&mut popped) {
        if k == key {
            let end = if max { &mut high } else { &mut low };
            *end = end.saturating_add(count);
        }
    }
    Some((key, low, high))
}

/// The first key a command line names, if its command takes keys.
fn first_key<'a>(spec: Option<&CommandSpec>, args: &'a [Bytes]) -> Option<&'a [u8]> {
    let spec = spec?;
    let at = usize::try_from(spec.first_key).ok().filter(|&i| i > 0)?;
    args.get(at).map(|k| &k[..])
}

/// The keys a command line names at fixed positions (MSET's ten keys, not
/// only the first), for warming their paths.
fn every_key<'a>(spec: Option<&CommandSpec>, args: &'a [Bytes]) -> impl Iterator<Item = &'a [u8]> {
    let (first, last, step) = spec.map_or((0, 0, 1), |s| (s.first_key, s.last_key, s.step));
    let len = args.len() as i64;
    let last = if last < 0 {
        len + last as i64
    } else {
        last as i64
    };
    let first = first as i64;
    // A command without keys walks an empty range.
    let (first, last) = if first > 0 && step > 0 {
        (first, last.min(len - 1))
    } else {
        (1, 0)
    };
    let positions = (first..=last).step_by(step.max(1) as usize);
    positions.map(move |i| &args[i as usize][..])
}

/// Whether `reply` is a (un)subscribe confirmation: a pub/sub push, which
/// CLIENT REPLY OFF and SKIP do not silence (as messages, and as in Redis).
fn is_subscription_push(args: &[Bytes], reply: &Reply) -> bool {
    !reply.is_error()
        && commands::lookup(&args[0]).is_some_and(|spec| {
            spec.flags & commands::flags::PUBSUB != 0 && spec.name.ends_with("subscribe")
        })
}

/// Waits for a blocked command's reply, its timeout, a disconnect or shutdown.
async fn wait_blocked(
    shared: &Shared,
    stream: &mut TcpStream,
    client: &mut ClientState,
    mut block: BlockRequest,
    rbuf: &mut BytesMut,
) -> std::io::Result<Reply> {
    set_blocked(client, true);
    let mut shutdown = shared.shutdown.subscribe();
    let deadline = block.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut disconnected = false;
    let outcome = loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 2 {
            rbuf.reserve(READ_CHUNK);
        }
        tokio::select! {
            r = &mut block.rx => break r.ok(),
            _ = sleep => break None,
            _ = shutdown.changed() => break None,
            _ = client.info.kill_signal.notified() => break None,
            // A RESP3 client may be subscribed while it blocks: messages still flow.
            frame = client.subs.next_frame() => {
                if let Some(frame) = frame {
                    client.subs.taken(frame.len());
                    stream.write_all(&frame).await?;
                    NetStats::add(&shared.net.net_output_bytes, frame.len() as u64);
                }
            }
            n = stream.read_buf(rbuf) => {
                // Pipelined commands after the blocking one wait in the buffer;
                // a closed socket ends the wait.
                match n {
                    Ok(0) | Err(_) => {
                        disconnected = true;
                        break None;
                    }
                    Ok(n) => {
                        {
                    NetStats::add(&shared.net.net_input_bytes, n as u64);
                    NetStats::add(&shared.net.reads_processed, 1);
                }
                        let limit = shared.config().client_query_buffer_limit;
                        if check_query_buffer(client, rbuf, limit).is_err() {
                            disconnected = true;
                            break None;
                        }
                    }
                }
            }
        }
    };
    set_blocked(client, false);
    if let Some(reply) = outcome {
        return Ok(reply);
    }
    // Cancel under the lock; a reply sent just before the cancel still wins.
    shared.lock().blocking.cancel(block.waiter_id);
    if disconnected {
        // As in Redis, a client that went away is freed with its unread
        // pipeline: the commands queued behind the blocking one must not run.
        return Err(std::io::ErrorKind::ConnectionAborted.into());
    }
    match block.rx.try_recv() {
        Ok(reply) => Ok(reply),
        Err(_) => Ok(block.timeout_reply),
    }
}

fn set_blocked(client: &ClientState, blocked: bool) {
    client
        .info
        .snapshot
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .blocked = blocked;
}

async fn flush(
    shared: &Shared,
    stream: &mut TcpStream,
    wbuf: &mut BytesMut,
    client: &ClientState,
) -> std::io::Result<()> {
    if wbuf.is_empty() {
        return Ok(());
    }
    report_memory(shared, client, wbuf.capacity());
    // Nearly always the socket takes the whole reply at once: then no
    // timer or signal needs to be armed.
    let mut written = match stream.try_write(wbuf) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    let subs = &client.subs;
    let mut watch = ObufWatch::default();
    while written < wbuf.len() {
        let limit = shared.config().client_output_buffer_limit.normal;
        let pending = (wbuf.len() - written) as u64;
        if watch.exceeded(&limit, pending, std::time::Instant::now()) {
            // A reader too slow for the soft limit's seconds is dropped, as in Redis.
            tracing::warn!(
                "Client scheduled to be closed ASAP for overcoming of output buffer limits."
            );
            wbuf.clear();
            return Err(std::io::ErrorKind::ConnectionAborted.into());
        }
        let deadline = watch.soft_deadline(&limit);
        let soft_timer = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let n = tokio::select! {
            // Writing comes first: a client that killed itself still gets
            // its reply; a kill only cuts a write that cannot proceed.
            biased;
            n = stream.write(&wbuf[written..]) => n?,
            // Re-check the soft limit once its seconds are up.
            _ = soft_timer => continue,
            // A subscriber that stopped reading and went over its output buffer
            // limit must not keep its task (and its queue) stuck in a write.
            _ = subs.overflowed() => {
                return Err(std::io::ErrorKind::ConnectionAborted.into());
            }
            // Evicted (maxmemory-clients) or killed while its reply waits.
            _ = client.info.kill_signal.notified() => {
                return Err(std::io::ErrorKind::ConnectionAborted.into());
            }
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        written += n;
    }
    NetStats::add(&shared.net.net_output_bytes, wbuf.len() as u64);
    NetStats::add(&shared.net.writes_processed, 1);
    wbuf.clear();
    // A large reply's buffer is given back rather than kept for the next one.
    if wbuf.capacity() > SHRINK_OVER {
        *wbuf = BytesMut::with_capacity(READ_CHUNK);
    }
    report_memory(shared, client, wbuf.capacity());
    Ok(())
}

/// Buffers larger than this are replaced by a fresh small one once emptied.
const SHRINK_OVER: usize = 4 * READ_CHUNK;

/// What a connection holds besides its buffers (its state, parser, queues),
/// counted in its `tot-mem` as Redis counts the client structure.
const CLIENT_BASE: usize = 2048;

/// Reports this connection's buffer bytes for `maxmemory-clients` (the
/// query buffer as last measured on a read, plus `wbuf_capacity`).
fn report_memory(shared: &Shared, client: &ClientState, wbuf_capacity: usize) {
    let query = client.query_buffer_bytes;
    shared
        .clients
        .set_memory(&client.info, (CLIENT_BASE + query + wbuf_capacity) as u64);
}

/// Closes a client whose unparsed input outgrew `client-query-buffer-limit`.
fn check_query_buffer(client: &ClientState, rbuf: &BytesMut, limit: u64) -> std::io::Result<()> {
    if crate::limits::query_buffer_exceeded(rbuf.len(), limit) {
        tracing::warn!(
            client = client.id,
            "Closing client that reached max query buffer length: {} ({} bytes)",
            client.addr,
            rbuf.len()
        );
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{commands, SpecCache};
    use bytes::Bytes;

    fn line(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn a_batch_counts_the_pops_of_its_first_sorted_set() {
        let batch = |lines: &[&[&str]]| -> std::collections::VecDeque<Vec<Bytes>> {
            lines.iter().map(|words| line(words)).collect()
        };
        let mut specs = SpecCache::default();
        let pending = batch(&[
            &["ZPOPMIN", "q"],
            &["zpopmin", "q", "5"],
            &["zpopmax", "q"],
            &["zpopmin", "other", "7"],
            &["zpopmin", "q", "x"],
            &["get", "q"],
        ]);
        assert_eq!(
            super::pops_of(&pending, &mut specs),
            Some((&b"q"[..], 7, 1))
        );
        let pending = batch(&[&["get", "q"], &["zpopmin", "q"]]);
        assert_eq!(super::pops_of(&pending, &mut specs), None);
        assert_eq!(super::pops_of(&Default::default(), &mut specs), None);
    }

    #[test]
    fn members_are_warmed_where_commands_take_them() {
        let at = |name: &str| super::member_at(commands::lookup(name.as_bytes()).unwrap());
        // ZADD key score member, HSET key field value, SADD key member.
        assert_eq!((at("zadd"), at("zincrby")), (3, 3));
        assert_eq!((at("hset"), at("sadd"), at("zrank")), (2, 2, 2));
    }

    #[test]
    fn spec_cache_answers_as_lookup() {
        let mut cache = SpecCache::default();
        for name in [
            "GET",
            "GET",
            "get",
            "set",
            "nosuch",
            "get",
            "x".repeat(40).as_str(),
        ] {
            let want = commands::lookup(name.as_bytes()).map(|s| s.name);
            assert_eq!(cache.get(name.as_bytes()).map(|s| s.name), want, "{name}");
        }
    }

    #[test]
    fn every_key_follows_the_key_positions() {
        let keys = |words: &[&str]| -> Vec<Vec<u8>> {
            let args = line(words);
            let spec = SpecCache::default().get(&args[0]);
            super::every_key(spec, &args).map(<[u8]>::to_vec).collect()
        };
        assert_eq!(keys(&["mset", "a", "1", "b", "2"]), [b"a", b"b"]);
        assert_eq!(keys(&["SET", "k", "v"]), [b"k"]);
        assert_eq!(keys(&["blpop", "x", "y", "0"]), [b"x", b"y"]);
        assert!(keys(&["ping"]).is_empty());
        assert!(keys(&["mset"]).is_empty());
        assert!(keys(&["nosuchcommand", "k"]).is_empty());
    }
}
