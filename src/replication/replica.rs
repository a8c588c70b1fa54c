//! A replica's link to its primary, on a thread of its own.
//!
//! The thread connects, does Redis's handshake (PING, AUTH with
//! `masterauth`/`masteruser`, REPLCONF listening-port and capa, PSYNC) and
//! then either receives a full sync or continues from its offset. A full
//! sync's payload (`$EOF:` framed, or `$<len>`) is, as `repl-diskless-load`
//! says: written to a temporary file in `dir` while the old data set keeps
//! being served, then loaded with `-LOADING` answered (`disabled`, the
//! default); or loaded straight from the socket as it arrives, with
//! `-LOADING` answered (`on-empty-db` on an empty server, `swapdb`), or with
//! the old data set served meanwhile (`swapdb` when the primary continues
//! this replica's own history: Redis 7.0's async loading). Either way the
//! new keyspace is built aside and installed in one step. The command stream is then applied as
//! the master client: no replies, and the offset counts the bytes applied.
//! Every second (and on REPLCONF GETACK) the replica acknowledges its offset.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::MasterLink;
use crate::clients::ClientState;
use crate::protocol::RequestParser;
use crate::state::{Shared, State};

/// Runs one command from the primary (the command layer's executor, handed
/// down so this module needs nothing above it).
pub type ApplyFn = fn(&Shared, &mut State, &mut ClientState, &[Bytes]);

/// Starts the link thread for `link`. `db` is the database the stream
/// applied so far has selected: a primary that continues this server's
/// history goes on past that SELECT (Redis keeps it in its cached master).
pub fn start(shared: Arc<Shared>, link: Arc<MasterLink>, db: usize, apply: ApplyFn) {
    let name = format!("replica-of-{}:{}", link.host, link.port);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let mut db = db;
        while !link.is_cancelled() && !shared.is_shutting_down() {
            link.update(|s| s.state = "connecting");
            tracing::info!("Connecting to MASTER {}:{}", link.host, link.port);
            match session(&shared, &link, apply, &mut db) {
                Ok(()) => {}
                Err(e) => tracing::warn!("Link with MASTER {}:{}: {e}", link.host, link.port),
            }
            link.update(|s| {
                if s.up {
                    s.down_since = Some(Instant::now());
                }
                s.up = false;
                s.sync_in_progress = false;
                s.state = "connect";
            });
            // Reconnect once a second, as Redis's replication cron does.
            for _ in 0..10 {
                if link.is_cancelled() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the replication thread: {e}");
    }
}

type LinkResult<T> = Result<T, String>;

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn send(&mut self, args: &[&[u8]]) -> LinkResult<()> {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let mut out = Vec::new();
        super::propagate::encode(&args, &mut out);
        self.writer.write_all(&out).map_err(|e| e.to_string())
    }

    fn line(&mut self) -> LinkResult<String> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| format!("reading from MASTER: {e}"))?;
        if n == 0 {
            return Err("MASTER closed the connection".into());
        }
        Ok(line.trim_end().to_string())
    }

    fn command(&mut self, args: &[&[u8]]) -> LinkResult<String> {
        self.send(args)?;
        self.line()
    }
}

fn session(shared: &Shared, link: &MasterLink, apply: ApplyFn, db: &mut usize) -> LinkResult<()> {
    let addr = format!("{}:{}", link.host, link.port);
    let sock = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .map_err(|e| format!("cannot resolve {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {addr}"))?;
    let stream = TcpStream::connect_timeout(&sock, Duration::from_secs(2))
        .map_err(|e| format!("Error condition on socket for SYNC: {e}"))?;
    let _ = stream.set_nodelay(true);
    let timeout = shared.lock().repl.settings.timeout;
    stream
        .set_read_timeout(Some(Duration::from_secs(timeout)))
        .map_err(|e| e.to_string())?;
    let writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut conn = Conn {
        reader: BufReader::with_capacity(64 * 1024, stream),
        writer,
    };
    tracing::info!("MASTER <-> REPLICA sync started");
    link.update(|s| s.state = "handshake");
    handshake(shared, &mut conn)?;
    let (replid, offset, history) = {
        let r = &shared.lock().repl;
        (r.replid.clone(), r.offset, r.backlog.is_some())
    };
    // A server with a history of its own (a backlog: it served replicas or
    // synced from a primary) asks to continue it, even at offset 0, as
    // Redis's cached master does; only a blank one asks for a full sync.
    let reply = if offset == 0 && !history {
        conn.command(&[b"PSYNC", b"?", b"-1"])?
    } else {
        let next = (offset + 1).to_string();
        conn.command(&[b"PSYNC", replid.as_bytes(), next.as_bytes()])?
    };
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut words = rest.split_whitespace();
        let id = words.next().unwrap_or_default().to_string();
        let off: u64 = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("bad FULLRESYNC reply: {reply}"))?;
        // A replica serving us passes on its own primary's stream as it
        // comes, past that stream's last SELECT: it names the database the
        // stream has selected (as Redis's `repl-stream-db` in the RDB).
        let stream_db: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        tracing::info!("Full resync from master: {id}:{off}");
        link.update(|s| {
            s.state = "sync";
            s.sync_in_progress = true;
            s.transfer_size = -1;
            s.transfer_read = 0;
            s.transfer_last_io = Instant::now();
        });
        full_sync(shared, link, &mut conn, id, off)?;
        *db = stream_db;
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let id = rest.trim().to_string();
        tracing::info!("Successful partial resynchronization with master.");
        let mut state = shared.lock();
        if link.is_cancelled() {
            return Err("replication cancelled".into());
        }
        if !id.is_empty() {
            state.repl.continued_with(id);
        } else {
            state.repl.ensure_backlog();
        }
    } else {
        return Err(format!("unexpected reply to PSYNC: {reply}"));
    }
    let offset = shared.lock().repl.offset;
    conn.send(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])?;
    link.update(|s| {
        s.up = true;
        s.state = "connected";
        s.sync_in_progress = false;
        s.last_io = Instant::now();
    });
    tracing::info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization or finished a full one.");
    stream_loop(shared, link, apply, conn, db)
}

fn expect_ok(what: &str, reply: String) -> LinkResult<()> {
    if reply.starts_with('-') {
        return Err(format!("{what}: {reply}"));
    }
    Ok(())
}

fn handshake(shared: &Shared, conn: &mut Conn) -> LinkResult<()> {
    let pong = conn.command(&[b"PING"])?;
    // As Redis: -NOAUTH is fine here, AUTH follows.
    if pong.starts_with('-') && !pong.starts_with("-NOAUTH") && !pong.starts_with("-NOPERM") {
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    let (user, pass, ip, port) = {
        let c = shared.config();
        let s = |n: &str| c.extra.get(n).cloned().unwrap_or_default();
        let announced = c.extra_i64("replica-announce-port", 0);
        let port = if announced > 0 {
            announced as u64
        } else {
            shared.bound_port.load(std::sync::atomic::Ordering::Relaxed)
        };
        (
            s("masteruser"),
            s("masterauth"),
            s("replica-announce-ip"),
            port,
        )
    };
    if !pass.is_empty() {
        let reply = if user.is_empty() {
            conn.command(&[b"AUTH", pass.as_bytes()])?
        } else {
            conn.command(&[b"AUTH", user.as_bytes(), pass.as_bytes()])?
        };
        expect_ok("Unable to AUTH to MASTER", reply)?;
    }
    let port = port.to_string();
    let reply = conn.command(&[b"REPLCONF", b"listening-port", port.as_bytes()])?;
    expect_ok("REPLCONF listening-port", reply)?;
    if !ip.is_empty() {
        let reply = conn.command(&[b"REPLCONF", b"ip-address", ip.as_bytes()])?;
        expect_ok("REPLCONF ip-address", reply)?;
    }
    let reply = conn.command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    expect_ok("REPLCONF capa", reply)
}

/// Where a full sync's payload goes (`repl-diskless-load`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadMode {
    /// To a temporary file while the old data set is served, then loaded
    /// with `-LOADING` answered (`disabled`, the default).
    Disk,
    /// Loaded as it arrives, `-LOADING` answered meanwhile (`on-empty-db`
    /// with no keys, or `swapdb` from a primary of another history).
    Socket,
    /// Loaded as it arrives while the old data set keeps being served:
    /// `swapdb` when the primary continues this replica's own history, as
    /// Redis 7.0's async loading (INFO `async_loading:1`).
    SocketAsync,
}

fn load_mode(shared: &Shared, replid: &str) -> LoadMode {
    let setting = shared
        .config()
        .extra
        .get("repl-diskless-load")
        .cloned()
        .unwrap_or_default();
    let state = shared.lock();
    match setting.as_str() {
        "swapdb" if state.repl.replid == replid => LoadMode::SocketAsync,
        "swapdb" => LoadMode::Socket,
        "on-empty-db" if state.keyspace.key_count() == 0 => LoadMode::Socket,
        _ => LoadMode::Disk,
    }
}

/// Receives the snapshot and installs it, through a temporary file or
/// straight from the socket as `repl-diskless-load` says.
fn full_sync(
    shared: &Shared,
    link: &MasterLink,
    conn: &mut Conn,
    replid: String,
    offset: u64,
) -> LinkResult<()> {
    // A primary may send newlines as keepalives before the payload.
    let mut header = conn.line()?;
    while header.is_empty() {
        header = conn.line()?;
    }
    let mut payload = Payload::new(&mut conn.reader, link, &header)?;
    let (dir, databases, limits) = {
        let c = shared.config();
        (c.dir.clone(), c.databases, crate::state::encodings_of(&c))
    };
    let mode = load_mode(shared, &replid);
    let started = Instant::now();
    let loaded = if mode == LoadMode::Disk {
        let path = dir.join(format!("temp-repl-{}.rdb", std::process::id()));
        let loaded = receive_to_file(&mut payload, &path).and_then(|bytes| {
            tracing::info!("MASTER <-> REPLICA sync: received {bytes} bytes of snapshot; loading");
            shared.loading.begin(bytes);
            crate::persistence::loader::load_file_with(
                &path,
                Some(databases),
                crate::keyspace::unix_ms(),
                limits,
            )
            .map_err(|e| format!("Failed trying to load the MASTER synchronization snapshot: {e}"))
        });
        let _ = std::fs::remove_file(&path);
        loaded
    } else {
        tracing::info!(
            "MASTER <-> REPLICA sync: loading the snapshot from the socket ({})",
            if mode == LoadMode::SocketAsync {
                "serving the old data set meanwhile"
            } else {
                "answering -LOADING meanwhile"
            }
        );
        if mode == LoadMode::SocketAsync {
            shared
                .loading
                .async_loading
                .store(true, std::sync::atomic::Ordering::Relaxed);
        } else {
            shared.loading.begin(0);
        }
        crate::persistence::loader::load_stream_with(
            shared.loading.counting(&mut payload),
            Some(databases),
            crate::keyspace::unix_ms(),
            limits,
        )
        .map_err(|e| match payload.failure.take() {
            Some(cause) => cause,
            None => format!("Failed trying to load the MASTER synchronization snapshot: {e}"),
        })
    };
    let result = loaded.and_then(|loaded| install(shared, link, loaded, replid, offset, started));
    shared
        .loading
        .async_loading
        .store(false, std::sync::atomic::Ordering::Relaxed);
    shared.loading.end();
    result
}

/// A full sync's payload as a reader: the bytes between the `$EOF:<mark>`
/// line and the mark (or the `$<len>` bytes), counted into the link's
/// INFO fields. It reads nothing past the payload: the primary sends the
/// stream only after the replica's first ACK.
struct Payload<'a> {
    reader: &'a mut BufReader<TcpStream>,
    link: &'a MasterLink,
    /// The end mark of an `$EOF:` stream; `None` for `$<len>`.
    mark: Option<Vec<u8>>,
    /// Bytes still due of a `$<len>` payload.
    left: u64,
    /// Received and not yet handed out (an `$EOF:` stream holds its last 40
    /// bytes back until more arrive: they may be the mark).
    buf: Vec<u8>,
    pos: usize,
    done: bool,
    first: bool,
    /// Why the payload failed, kept to be reported over the loader's error.
    failure: Option<String>,
}

impl<'a> Payload<'a> {
    fn new(
        reader: &'a mut BufReader<TcpStream>,
        link: &'a MasterLink,
        header: &str,
    ) -> LinkResult<Payload<'a>> {
        let (mark, left, size) = if let Some(mark) = header.strip_prefix("$EOF:") {
            if mark.len() != 40 {
                return Err(format!("bad end mark in {header}"));
            }
            (Some(mark.as_bytes().to_vec()), 0, 0)
        } else if let Some(len) = header.strip_prefix('$') {
            let len: u64 = len
                .parse()
                .map_err(|_| format!("bad bulk header {header}"))?;
            (None, len, len as i64)
        } else {
            return Err(format!(
                "Bad protocol from MASTER, the first byte is not '$': {header}"
            ));
        };
        link.update(|s| {
            s.transfer_size = size;
            s.transfer_read = 0;
            s.transfer_last_io = Instant::now();
        });
        Ok(Payload {
            reader,
            link,
            done: mark.is_none() && left == 0,
            mark,
            left,
            buf: Vec::with_capacity(128 * 1024),
            pos: 0,
            first: true,
            failure: None,
        })
    }

    fn fail(&mut self, why: String) -> std::io::Error {
        let e = std::io::Error::other(why.clone());
        self.failure = Some(why);
        e
    }

    /// Reads more from the socket into `buf`.
    fn fill(&mut self) -> std::io::Result<()> {
        if self.link.is_cancelled() {
            return Err(self.fail("replication cancelled".into()));
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        let have = self.buf.len();
        let want = match self.mark {
            Some(_) => 64 * 1024,
            None => self.left.min(64 * 1024) as usize,
        };
        self.buf.resize(have + want, 0);
        let n = match self.reader.read(&mut self.buf[have..]) {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(have);
                return Err(self.fail(format!("I/O error trying to sync with MASTER: {e}")));
            }
        };
        self.buf.truncate(have + n);
        if n == 0 {
            return Err(self.fail("MASTER closed the connection during the sync".into()));
        }
        self.link.update(|s| {
            s.transfer_read += n as u64;
            s.transfer_last_io = Instant::now();
            s.last_io = s.transfer_last_io;
        });
        match &self.mark {
            Some(mark) => {
                if self.buf.len() >= mark.len() && self.buf.ends_with(mark) {
                    self.buf.truncate(self.buf.len() - mark.len());
                    self.done = true;
                }
            }
            None => {
                self.left -= n as u64;
                self.done = self.left == 0;
            }
        }
        Ok(())
    }
}

impl Read for Payload<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let held = match (&self.mark, self.done) {
                (Some(mark), false) => mark.len(),
                _ => 0,
            };
            let avail = self.buf.len().saturating_sub(held);
            if avail > self.pos {
                if self.first {
                    self.first = false;
                    if self.buf[self.pos..avail].starts_with(b"REDIS") {
                        return Err(self.fail(
                            "the primary sent a Redis RDB payload; a forkless replica loads only forkless snapshots (replicate from a forkless primary)".into(),
                        ));
                    }
                }
                let n = (avail - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            self.fill()?;
        }
    }
}

/// Writes the whole payload to a temporary file; returns its size.
fn receive_to_file(payload: &mut Payload<'_>, path: &std::path::Path) -> LinkResult<u64> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| {
        format!("Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}")
    })?);
    let written = std::io::copy(payload, &mut file).map_err(|e| match payload.failure.take() {
        Some(cause) => cause,
        None => e.to_string(),
    })?;
    file.flush().map_err(|e| e.to_string())?;
    Ok(written)
}

/// Installs a loaded snapshot as the data set at `offset` of `replid`.
fn install(
    shared: &Shared,
    link: &MasterLink,
    loaded: crate::persistence::loader::Loaded,
    replid: String,
    offset: u64,
    started: Instant,
) -> LinkResult<()> {
    {
        let mut state = shared.lock();
        if link.is_cancelled() {
            return Err("replication cancelled".into());
        }
        let old = std::mem::replace(&mut state.keyspace, loaded.keyspace);
        // INFO reads the flag under the lock: a client that sees
        // `async_loading:1` is still served the old data set.
        shared
            .loading
            .async_loading
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let codes = state.keyspace.functions().to_vec();
        if let Err(e) = state.scripting.install_libraries(&codes) {
            tracing::warn!("the primary's functions did not load: {e}");
        }
        state.repl.synced_full(replid, offset);
        state.dirty += 1;
        // The old data set may be large: freed off the lock.
        std::thread::spawn(move || drop(old));
    }
    tracing::info!(
        "MASTER <-> REPLICA sync: Finished with success ({} keys loaded in {:.3} s)",
        loaded.keys_loaded,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Applies the primary's stream until the link breaks or is cancelled.
fn stream_loop(
    shared: &Shared,
    link: &MasterLink,
    apply: ApplyFn,
    mut conn: Conn,
    db: &mut usize,
) -> LinkResult<()> {
    let info = shared.clients.register(
        format!("{}:{}", link.host, link.port),
        conn.writer
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
    );
    info.kind.store(
        crate::clients::KIND_MASTER,
        std::sync::atomic::Ordering::Relaxed,
    );
    let result = apply_stream(shared, link, apply, &mut conn, db, &info);
    shared.clients.unregister(info.id);
    result
}

fn apply_stream(
    shared: &Shared,
    link: &MasterLink,
    apply: ApplyFn,
    conn: &mut Conn,
    db: &mut usize,
    info: &Arc<crate::clients::ClientInfo>,
) -> LinkResult<()> {
    let mut client = ClientState::new(info.id, info.addr.clone(), info.laddr.clone(), info.clone());
    client.repl.is_master = true;
    client.db = *db;
    let start_offset = {
        let mut state = shared.lock();
        state.repl.stream_db = Some(*db);
        state.repl.offset
    };
    conn.reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut raw: Vec<u8> = Vec::new();
    let mut fed = 0u64;
    let mut attributed = 0u64;
    let mut parser = RequestParser::default();
    let mut last_ack = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if link.is_cancelled() || shared.is_shutting_down() {
            return Ok(());
        }
        if info.is_killed() {
            return Err("the master client was killed".into());
        }
        let timeout = shared.lock().repl.settings.timeout;
        if link.status().last_io.elapsed() > Duration::from_secs(timeout) {
            return Err("MASTER timeout: no data nor PING received...".into());
        }
        if last_ack.elapsed() >= Duration::from_secs(1) {
            let offset = shared.lock().repl.offset;
            conn.send(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])?;
            last_ack = Instant::now();
        }
        let n = match conn.reader.read(&mut buf) {
            Ok(0) => return Err("MASTER closed the connection".into()),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("reading from MASTER: {e}")),
        };
        let read_offset = start_offset + fed + n as u64;
        link.update(|s| {
            s.last_io = Instant::now();
            s.read_offset = read_offset;
        });
        rbuf.extend_from_slice(&buf[..n]);
        raw.extend_from_slice(&buf[..n]);
        fed += n as u64;
        let mut commands: Vec<(Vec<Bytes>, usize)> = Vec::new();
        loop {
            match parser.next(&mut rbuf, usize::MAX / 2) {
                Ok(Some(cmd)) => {
                    let consumed = fed - rbuf.len() as u64;
                    let len = (consumed - attributed) as usize;
                    attributed = consumed;
                    commands.push((cmd, len));
                }
                Ok(None) => break,
                Err(e) => return Err(format!("protocol error from MASTER: {e}")),
            }
        }
        if commands.is_empty() {
            continue;
        }
        let mut getack = false;
        {
            let mut state = shared.lock();
            // REPLICAOF cancels under the lock: nothing from this link
            // lands after it.
            if link.is_cancelled() {
                return Ok(());
            }
            let mut at = 0usize;
            for (cmd, len) in commands {
                let bytes = &raw[at..at + len];
                at += len;
                if cmd.is_empty() {
                    state.repl.feed(bytes);
                    continue;
                }
                let is_getack = cmd.len() >= 2
                    && cmd[0].eq_ignore_ascii_case(b"replconf")
                    && cmd[1].eq_ignore_ascii_case(b"getack");
                if is_getack {
                    getack = true;
                } else {
                    apply(shared, &mut state, &mut client, &cmd);
                }
                state.repl.feed(bytes);
            }
            state.repl.stream_db = Some(client.db);
            raw.drain(..at);
        }
        *db = client.db;
        if getack {
            let offset = shared.lock().repl.offset;
            conn.send(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()])?;
            last_ack = Instant::now();
        }
    }
}
