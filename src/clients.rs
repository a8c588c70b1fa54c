//! Connected clients: each connection's own state, and the registry that
//! `CLIENT LIST`/`CLIENT INFO` and INFO clients read.
//!
//! A connection owns its [`ClientState`] and runs commands with it. What other
//! connections may need to see (name, db, last command, idle time) is published in
//! a [`ClientInfo`] held by the registry, updated once per batch of commands.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;

use crate::reply::Protocol;

/// One connection's own state, touched only by that connection's task.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub db: usize,
    pub proto: Protocol,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    /// Close the connection once the pending replies are written (QUIT).
    pub close_after_reply: bool,
    pub info: Arc<ClientInfo>,
    /// Passed AUTH, or connected while no password was set (see `crate::security`).
    pub authenticated: bool,
    /// CLIENT REPLY OFF: no replies until CLIENT REPLY ON.
    pub reply_off: bool,
    /// CLIENT REPLY SKIP: the next command's reply is dropped...
    pub skip_next: bool,
    /// ... and, while it runs, this one's.
    pub skip_current: bool,
    /// Lines for a client in MONITOR mode.
    pub monitor: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
    /// MULTI queue and watched keys.
    pub tx: crate::transaction::TxState,
    /// Pub/sub subscriptions and the queue of messages for this client.
    pub subs: crate::pubsub::ClientSubs,
    /// The query buffer's size at the last read, for `tot-mem` and
    /// `maxmemory-clients`.
    pub query_buffer_bytes: usize,
    /// The connection's part in replication (a replica's handshake, the
    /// link from a primary).
    pub repl: crate::replication::ClientRepl,
}

impl ClientState {
    pub fn new(id: u64, addr: String, laddr: String, info: Arc<ClientInfo>) -> ClientState {
        ClientState {
            id,
            db: 0,
            proto: Protocol::Resp2,
            name: None,
            lib_name: None,
            lib_ver: None,
            addr,
            laddr,
            created: Instant::now(),
            close_after_reply: false,
            info,
            authenticated: true,
            reply_off: false,
            skip_next: false,
            skip_current: false,
            monitor: None,
            tx: Default::default(),
            subs: Default::default(),
            query_buffer_bytes: 0,
            repl: Default::default(),
        }
    }

    /// Called before each command: a pending CLIENT REPLY SKIP covers it.
    pub fn begin_command(&mut self) {
        self.skip_current = std::mem::take(&mut self.skip_next);
    }

    /// Whether the reply of the command that just ran is to be dropped.
    pub fn reply_suppressed(&mut self) -> bool {
        self.reply_off || std::mem::take(&mut self.skip_current)
    }

    /// Copies what other connections may read into the shared [`ClientInfo`].
    pub fn publish(&self, last_cmd: &str) {
        let mut s = self.info.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        s.db = self.db;
        // Published after every batch: copied only when changed.
        if s.name != self.name {
            s.name = self.name.clone();
        }
        if s.lib_name != self.lib_name {
            s.lib_name = self.lib_name.clone();
        }
        if s.lib_ver != self.lib_ver {
            s.lib_ver = self.lib_ver.clone();
        }
        s.resp = if self.proto == Protocol::Resp3 { 3 } else { 2 };
        if s.last_cmd != last_cmd {
            s.last_cmd.clear();
            s.last_cmd.push_str(last_cmd);
        }
        s.last_interaction = Instant::now();
        s.sub = self.subs.channels.len();
        s.psub = self.subs.patterns.len();
        s.ssub = self.subs.shards.len();
        s.multi = self.tx.active.then_some(self.tx.queue.len());
    }
}

/// The published view of one client.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub created: Instant,
    pub snapshot: Mutex<ClientSnapshot>,
    /// Set by CLIENT KILL or shutdown: the connection closes at its next chance.
    pub killed: std::sync::atomic::AtomicBool,
    /// Wakes an idle or blocked connection so a kill takes effect at once.
    pub kill_signal: tokio::sync::Notify,
    /// The socket's file descriptor (`fd=` in CLIENT LIST), set once connected.
    pub fd: std::sync::atomic::AtomicI64,
    /// Bytes held by the connection's buffers (`tot-mem`), as last reported
    /// through [`ClientRegistry::set_memory`].
    pub memory: AtomicU64,
    /// CLIENT NO-EVICT on: never evicted for `maxmemory-clients`.
    pub no_evict: std::sync::atomic::AtomicBool,
    /// What the connection is for CLIENT LIST/KILL TYPE: one of the
    /// `KIND_*` constants.
    pub kind: std::sync::atomic::AtomicU8,
}

/// A client's type, as CLIENT LIST and CLIENT KILL TYPE name them.
pub const KIND_NORMAL: u8 = 0;
pub const KIND_REPLICA: u8 = 1;
pub const KIND_MASTER: u8 = 2;
pub const KIND_PUBSUB: u8 = 3;

#[derive(Debug, Clone)]
pub struct ClientSnapshot {
    pub db: usize,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub resp: u8,
    pub last_cmd: String,
    pub last_interaction: Instant,
    /// Set while the client waits in a blocking command.
    pub blocked: bool,
    /// Channel, pattern and shard channel subscriptions (`sub=`, `psub=`,
    /// `ssub=`).
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// Commands queued in an open MULTI (`multi=`; -1 outside one).
    pub multi: Option<usize>,
}

impl ClientInfo {
    /// Marks the client killed and wakes its connection, which then closes.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        // Every wait of the connection wakes (its read loop keeps one
        // registered while a write or a blocked command waits too), and
        // notify_one, finding no waiter left, keeps a permit for a wait not
        // yet begun. A kill is final, so a permit left over does no harm.
        self.kill_signal.notify_waiters();
        self.kill_signal.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// The client's `KIND_*`: a subscribed normal client counts as pubsub.
    pub fn kind(&self) -> u8 {
        match self.kind.load(Ordering::Relaxed) {
            KIND_NORMAL => {
                let s = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
                if s.sub + s.psub + s.ssub > 0 {
                    KIND_PUBSUB
                } else {
                    KIND_NORMAL
                }
            }
            k => k,
        }
    }

    pub fn snapshot(&self) -> ClientSnapshot {
        self.snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A connection in MONITOR mode.
#[derive(Debug)]
pub struct Monitor {
    pub client_id: u64,
    pub tx: tokio::sync::mpsc::UnboundedSender<String>,
}

/// Every connected client, by id.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    /// CLIENT PAUSE.
    pub pause: crate::pause::PauseState,
    monitors: Mutex<Vec<Monitor>>,
    /// Number of monitors, read on every command without a lock.
    pub monitor_count: std::sync::atomic::AtomicUsize,
    /// Client eviction (`maxmemory-clients`).
    pub memory: ClientMemory,
}

/// Clients holding at most this many bytes (an idle connection's buffers
/// and state) are never evicted for `maxmemory-clients`.
pub const EVICTABLE_OVER: u64 = 64 * 1024;

/// What all clients' buffers hold, and the limit past which the largest
/// clients are evicted (Redis 7's `maxmemory-clients`).
#[derive(Debug, Default)]
pub struct ClientMemory {
    /// Sum of every client's [`ClientInfo::memory`].
    total: AtomicU64,
    /// `maxmemory-clients` in bytes (a percentage resolved against
    /// `maxmemory`); 0 = no limit.
    pub limit: AtomicU64,
    /// INFO `evicted_clients`.
    pub evicted: AtomicU64,
}

impl ClientMemory {
    /// Bytes all clients' buffers hold.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

impl ClientRegistry {
    /// Registers a new connection and returns its id and shared info.
    pub fn register(&self, addr: String, laddr: String) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: now,
            snapshot: Mutex::new(ClientSnapshot {
                db: 0,
                name: None,
                lib_name: None,
                lib_ver: None,
                resp: 2,
                last_cmd: "NULL".into(),
                last_interaction: now,
                blocked: false,
                sub: 0,
                psub: 0,
                ssub: 0,
                multi: None,
            }),
            killed: std::sync::atomic::AtomicBool::new(false),
            kill_signal: tokio::sync::Notify::new(),
            fd: std::sync::atomic::AtomicI64::new(-1),
            memory: AtomicU64::new(0),
            no_evict: std::sync::atomic::AtomicBool::new(false),
            kind: std::sync::atomic::AtomicU8::new(KIND_NORMAL),
        });
        self.lock().insert(id, info.clone());
        info
    }

    pub fn unregister(&self, id: u64) {
        if let Some(info) = self.lock().remove(&id) {
            let held = info.memory.swap(0, Ordering::Relaxed);
            self.memory.total.fetch_sub(held, Ordering::Relaxed);
        }
        self.remove_monitor(id);
    }

    /// Records that `info`'s connection now holds `bytes` in its buffers;
    /// when that takes all clients past `maxmemory-clients`, evicts the
    /// largest ones until they fit again.
    pub fn set_memory(&self, info: &ClientInfo, bytes: u64) {
        let old = info.memory.swap(bytes, Ordering::Relaxed);
        if bytes == old {
            return;
        }
        let total = if bytes > old {
            self.memory.total.fetch_add(bytes - old, Ordering::Relaxed) + (bytes - old)
        } else {
            self.memory.total.fetch_sub(old - bytes, Ordering::Relaxed) - (old - bytes)
        };
        let limit = self.memory.limit.load(Ordering::Relaxed);
        if bytes > old && limit > 0 && total > limit {
            self.evict_clients(limit);
        }
    }

    /// Sets `maxmemory-clients` (bytes; 0 = none), evicting at once if the
    /// clients hold more.
    pub fn set_memory_limit(&self, limit: u64) {
        self.memory.limit.store(limit, Ordering::Relaxed);
        if limit > 0 && self.memory.total() > limit {
            self.evict_clients(limit);
        }
    }

    /// Kills clients, the largest first, until the rest fit `limit` (Redis's
    /// `evictClients`); clients marked NO-EVICT are spared, and so are
    /// clients holding no more than [`EVICTABLE_OVER`], as Redis never evicts
    /// the clients of its smallest memory bucket.
    fn evict_clients(&self, limit: u64) {
        let clients = self.lock();
        let mut candidates: Vec<&Arc<ClientInfo>> = clients
            .values()
            .filter(|c| {
                !c.no_evict.load(Ordering::Relaxed)
                    && !c.is_killed()
                    && c.memory.load(Ordering::Relaxed) > EVICTABLE_OVER
            })
            .collect();
        candidates.sort_by_key(|c| std::cmp::Reverse(c.memory.load(Ordering::Relaxed)));
        for c in candidates {
            if self.memory.total() <= limit {
                break;
            }
            let held = c.memory.swap(0, Ordering::Relaxed);
            self.memory.total.fetch_sub(held, Ordering::Relaxed);
            self.memory.evicted.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                "Evicting client: id={} addr={} tot-mem={held}",
                c.id,
                c.addr
            );
            c.kill();
        }
    }

    pub fn add_monitor(&self, monitor: Monitor) {
        let mut m = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
        m.push(monitor);
        self.monitor_count.store(m.len(), Ordering::Relaxed);
    }

    pub fn remove_monitor(&self, client_id: u64) {
        let mut m = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|x| x.client_id != client_id);
        self.monitor_count.store(m.len(), Ordering::Relaxed);
    }

    pub fn send_to_monitors(&self, line: &str) {
        let mut m = self.monitors.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|x| x.tx.send(line.to_string()).is_ok());
        self.monitor_count.store(m.len(), Ordering::Relaxed);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All clients, ordered by id.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.lock().values().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.lock().get(&id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ClientInfo>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }
}
