//! Replication, as Redis 7.0 does it, from forkless's O(1) snapshot.
//!
//! [`Replication`] lives in the [`crate::state::State`] under the lock: the
//! replication ids and offset, the [`backlog::Backlog`], the replicas attached
//! to this server and, on a replica, its link to the primary. [`propagate`]
//! turns each write's effect into the command stream; [`primary`] serves a
//! replica's connection (the snapshot stream, then the commands);
//! [`replica`] is a replica's link: handshake, load, apply; [`out`] is one
//! replica's outgoing buffer; [`cron`] pings, times out and frees; [`info`]
//! prints INFO replication; [`shutdown`] has a primary's shutdown wait for
//! its replicas.
//!
//! The stream every replica sees is the same bytes the backlog keeps, so
//! offsets agree everywhere and a replica promoted to primary can continue
//! the others from its own backlog (`replid2`).

pub mod backlog;
pub mod cron;
pub mod info;
pub mod out;
pub mod primary;
pub mod propagate;
pub mod replica;
pub mod shutdown;

pub use cron::cron;
pub use info::info_fields;
pub use out::ReplicaOut;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::config::Config;
use crate::limits::ObufLimit;
use crate::reply::Reply;
use backlog::Backlog;

/// What a connection holds for replication.
#[derive(Debug, Default)]
pub struct ClientRepl {
    /// The replica's link to its primary: its writes pass READONLY and are
    /// not propagated again.
    pub is_master: bool,
    /// The stream offset after this client's last propagated write: what
    /// its WAIT waits for (Redis's `c->woff`).
    pub write_offset: u64,
    /// REPLCONF listening-port and ip-address of a replica in its handshake.
    pub listening_port: u16,
    pub announced_ip: Option<String>,
    /// Set by PSYNC/SYNC: once the reply is out, the connection becomes a
    /// replica's stream (see [`primary::serve`]).
    pub handoff: Option<primary::Handoff>,
}

/// A replica's place in its sync, as INFO's `slaveN:state=` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// The snapshot is streaming.
    SendBulk,
    /// The snapshot is sent; the stream starts at the replica's first ACK.
    WaitAck,
    Online,
}

impl SyncState {
    pub fn name(self) -> &'static str {
        match self {
            SyncState::SendBulk => "send_bulk",
            SyncState::WaitAck | SyncState::Online => "online",
        }
    }
}

/// One replica attached to this server.
#[derive(Debug)]
pub struct ReplicaLink {
    pub client_id: u64,
    pub ip: String,
    /// REPLCONF listening-port (or ip-address) as the replica announced it.
    pub port: u16,
    pub out: Arc<ReplicaOut>,
    pub state: SyncState,
    pub ack_offset: u64,
    pub last_ack: Instant,
}

/// Settings read on every write, copied from the config (CONFIG SET and the
/// replication cron refresh them).
#[derive(Debug, Clone)]
pub struct Settings {
    pub backlog_size: usize,
    pub backlog_ttl: u64,
    pub read_only: bool,
    pub serve_stale: bool,
    pub min_replicas: usize,
    pub min_replicas_max_lag: u64,
    pub ping_period: u64,
    pub timeout: u64,
    pub priority: i64,
    pub replica_limit: ObufLimit,
}

impl Settings {
    pub fn of(c: &Config) -> Settings {
        let yes = |name: &str, default: bool| {
            c.extra
                .get(name)
                .map_or(default, |v| v.eq_ignore_ascii_case("yes"))
        };
        Settings {
            backlog_size: c.extra_i64("repl-backlog-size", 1 << 20).max(16 * 1024) as usize,
            backlog_ttl: c.extra_i64("repl-backlog-ttl", 3600).max(0) as u64,
            read_only: yes("replica-read-only", true),
            serve_stale: yes("replica-serve-stale-data", true),
            min_replicas: c.extra_i64("min-replicas-to-write", 0).max(0) as usize,
            min_replicas_max_lag: c.extra_i64("min-replicas-max-lag", 10).max(0) as u64,
            ping_period: c.extra_i64("repl-ping-replica-period", 10).max(1) as u64,
            timeout: c.extra_i64("repl-timeout", 60).max(1) as u64,
            priority: c.extra_i64("replica-priority", 100),
            replica_limit: c.client_output_buffer_limit.replica,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::of(&Config::default())
    }
}

/// Where a replica's link to its primary stands, shared with the link's
/// thread (which updates it without the state lock).
#[derive(Debug)]
pub struct MasterLink {
    pub host: String,
    pub port: u16,
    /// Set to end the link (REPLICAOF to elsewhere, NO ONE, shutdown).
    pub cancelled: std::sync::atomic::AtomicBool,
    pub status: std::sync::Mutex<LinkStatus>,
}

/// What INFO reports about the link to the primary.
#[derive(Debug, Clone)]
pub struct LinkStatus {
    /// `master_link_status:up`.
    pub up: bool,
    /// `connect`, `connecting`, `sync`, `connected` (ROLE's state).
    pub state: &'static str,
    pub sync_in_progress: bool,
    pub last_io: Instant,
    /// When the link last went down (`None`: it was never up, which INFO
    /// prints as -1, as Redis does).
    pub down_since: Option<Instant>,
    /// The full sync's payload size: -1 until its header arrived, 0 for an
    /// `$EOF:` stream (size unknown), else the `$<len>` length (Redis's
    /// `repl_transfer_size`).
    pub transfer_size: i64,
    /// Payload bytes received so far, and when the last ones came.
    pub transfer_read: u64,
    pub transfer_last_io: Instant,
    /// Stream bytes read from the primary (`slave_read_repl_offset`): ahead
    /// of the applied offset by what is read but not yet run.
    pub read_offset: u64,
}

impl MasterLink {
    pub fn new(host: String, port: u16) -> MasterLink {
        MasterLink {
            host,
            port,
            cancelled: Default::default(),
            status: std::sync::Mutex::new(LinkStatus {
                up: false,
                state: "connect",
                sync_in_progress: false,
                last_io: Instant::now(),
                down_since: None,
                transfer_size: -1,
                transfer_read: 0,
                transfer_last_io: Instant::now(),
                read_offset: 0,
            }),
        }
    }

    pub fn status(&self) -> LinkStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut LinkStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A WAIT in progress: answered once `needed` replicas acknowledged
/// `offset`, or at its deadline with the count so far.
#[derive(Debug)]
pub struct Wait {
    pub id: u64,
    pub offset: u64,
    pub needed: usize,
    pub deadline: Option<Instant>,
    pub tx: tokio::sync::oneshot::Sender<Reply>,
}

/// The replication state (under the state lock).
#[derive(Debug)]
pub struct Replication {
    pub replid: String,
    pub replid2: String,
    /// `master_repl_offset`: bytes of stream produced (or, on a replica,
    /// applied) so far.
    pub offset: u64,
    /// `second_repl_offset`: up to where `replid2` is valid; -1 if none.
    pub second_offset: i64,
    pub backlog: Option<Backlog>,
    pub replicas: Vec<ReplicaLink>,
    /// Set on a replica: its link to the primary.
    pub master: Option<Arc<MasterLink>>,
    pub settings: Settings,
    /// The database the stream last selected (`None`: the next write
    /// selects one).
    selected_db: Option<usize>,
    /// On a replica, the database its primary's stream has selected (what
    /// its master client has): a replica of this replica starts there.
    pub stream_db: Option<usize>,
    /// The ops of the command running now, sent together at its end (several
    /// become one MULTI/EXEC, as Redis 7.0's `propagatePendingCommands`).
    pending: Vec<(usize, Vec<Bytes>)>,
    in_command: bool,
    /// When the last replica left (for `repl-backlog-ttl`).
    pub no_replicas_since: Option<Instant>,
    pub waits: Vec<Wait>,
    next_wait: u64,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    /// Set while a SHUTDOWN waits for the replicas: SHUTDOWN ABORT sets the flag.
    pub shutdown_abort: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for Replication {
    fn default() -> Self {
        Replication::new(Settings::default())
    }
}

/// 40 random hex digits: a replication id or an `$EOF:` mark.
pub fn random_id() -> String {
    let mut rng = crate::rng::Rng::from_entropy();
    (0..40)
        .map(|_| char::from_digit((rng.next_u64() % 16) as u32, 16).unwrap_or('0'))
        .collect()
}

impl Replication {
    pub fn new(settings: Settings) -> Replication {
        Replication {
            replid: random_id(),
            replid2: "0".repeat(40),
            offset: 0,
            second_offset: -1,
            backlog: None,
            replicas: Vec::new(),
            master: None,
            settings,
            selected_db: None,
            stream_db: None,
            pending: Vec::new(),
            in_command: false,
            no_replicas_since: Some(Instant::now()),
            waits: Vec::new(),
            next_wait: 0,
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
            shutdown_abort: None,
        }
    }

    pub fn is_replica(&self) -> bool {
        self.master.is_some()
    }

    /// How a command's lookups treat expired keys: a replica's clients do
    /// not see them, its primary's link does, and neither deletes them.
    #[inline]
    pub fn expiry_mode(&self, from_master: bool) -> crate::keyspace::ExpiryMode {
        use crate::keyspace::ExpiryMode;
        match (self.master.is_some(), from_master) {
            (false, _) => ExpiryMode::Delete,
            (true, false) => ExpiryMode::Hide,
            (true, true) => ExpiryMode::Keep,
        }
    }

    /// Whether this server produces a stream of its own: a primary with a
    /// backlog (made when the first replica attached).
    #[inline]
    pub fn propagating(&self) -> bool {
        self.backlog.is_some() && self.master.is_none()
    }

    /// A top-level command begins: its ops are held until [`Self::end_command`].
    pub fn begin_command(&mut self) {
        self.in_command = true;
    }

    /// The command ended: its ops go out, several of them as one MULTI/EXEC.
    pub fn end_command(&mut self) {
        self.in_command = false;
        if self.pending.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.pending);
        let wrap = ops.len() > 1;
        if wrap {
            self.emit(ops[0].0, &[Bytes::from_static(b"MULTI")]);
        }
        let last_db = ops[ops.len() - 1].0;
        for (db, args) in ops {
            self.emit(db, &args);
        }
        if wrap {
            self.emit(last_db, &[Bytes::from_static(b"EXEC")]);
        }
    }

    /// Adds one op of database `db` to the stream.
    pub fn push_op(&mut self, db: usize, args: Vec<Bytes>) {
        if !self.propagating() {
            return;
        }
        if self.in_command {
            self.pending.push((db, args));
        } else {
            self.emit(db, &args);
        }
    }

    fn emit(&mut self, db: usize, args: &[Bytes]) {
        let mut out = Vec::with_capacity(64);
        if self.selected_db != Some(db) {
            propagate::encode(
                &[Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())],
                &mut out,
            );
            self.selected_db = Some(db);
        }
        propagate::encode(args, &mut out);
        self.feed(&out);
    }

    /// Appends stream bytes to the backlog and every replica, and counts them.
    pub fn feed(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.offset += data.len() as u64;
        if let Some(b) = &mut self.backlog {
            b.push(data);
        }
        let limit = self.settings.replica_limit;
        for r in &self.replicas {
            r.out.push(data, &limit);
        }
    }

    /// Makes the backlog if there is none (the first replica attaches).
    pub fn ensure_backlog(&mut self) {
        if self.backlog.is_none() {
            self.backlog = Some(Backlog::new(self.settings.backlog_size, self.offset + 1));
        }
    }

    /// Decides a PSYNC: the bytes to continue with, or `None` for a full sync.
    pub fn try_partial(&self, replid: &str, offset: i64) -> Option<Vec<u8>> {
        let backlog = self.backlog.as_ref()?;
        if offset < 1 {
            return None;
        }
        let ok_id =
            replid == self.replid || (replid == self.replid2 && offset <= self.second_offset);
        if !ok_id {
            return None;
        }
        backlog.since(offset as u64)
    }

    /// Registers a replica; its stream starts with what is fed from now on.
    pub fn attach(&mut self, link: ReplicaLink) {
        self.ensure_backlog();
        // As Redis: a new replica's stream starts with a SELECT.
        self.selected_db = None;
        self.no_replicas_since = None;
        self.replicas.push(link);
    }

    pub fn detach(&mut self, client_id: u64) {
        self.replicas.retain(|r| r.client_id != client_id);
        if self.replicas.is_empty() && self.no_replicas_since.is_none() {
            self.no_replicas_since = Some(Instant::now());
        }
    }

    pub fn replica_mut(&mut self, client_id: u64) -> Option<&mut ReplicaLink> {
        self.replicas.iter_mut().find(|r| r.client_id == client_id)
    }

    /// REPLCONF ACK from a replica: records it and answers the WAITs it
    /// satisfies.
    pub fn ack(&mut self, client_id: u64, offset: u64) {
        if let Some(r) = self.replica_mut(client_id) {
            r.ack_offset = r.ack_offset.max(offset);
            r.last_ack = Instant::now();
            if r.state == SyncState::WaitAck {
                r.state = SyncState::Online;
            }
        }
        self.answer_waits(false);
    }

    /// Replicas that acknowledged `offset`.
    pub fn acked(&self, offset: u64) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.state != SyncState::SendBulk && r.ack_offset >= offset)
            .count()
    }

    /// Answers the WAITs that are satisfied, or all of them if `all`.
    pub fn answer_waits(&mut self, all: bool) {
        if self.waits.is_empty() {
            return;
        }
        let waits = std::mem::take(&mut self.waits);
        for w in waits {
            let n = self.acked(w.offset);
            if all || n >= w.needed {
                let _ = w.tx.send(Reply::Integer(n as i64));
            } else {
                self.waits.push(w);
            }
        }
    }

    /// Registers a WAIT; returns its id.
    pub fn add_wait(
        &mut self,
        offset: u64,
        needed: usize,
        deadline: Option<Instant>,
        tx: tokio::sync::oneshot::Sender<Reply>,
    ) -> u64 {
        self.next_wait += 1;
        let id = self.next_wait;
        self.waits.push(Wait {
            id,
            offset,
            needed,
            deadline,
            tx,
        });
        id
    }

    /// Clients blocked in WAIT (they count in INFO `blocked_clients`, as in
    /// Redis); one that disconnected is no longer waiting.
    pub fn waiting_clients(&self) -> usize {
        self.waits.iter().filter(|w| !w.tx.is_closed()).count()
    }

    /// Ends the WAITs whose deadline passed (or whose client left) with
    /// the count so far.
    pub fn expire_waits(&mut self, now: Instant) {
        let waits = std::mem::take(&mut self.waits);
        for w in waits {
            if w.tx.is_closed() {
                continue;
            }
            if w.deadline.is_some_and(|d| d <= now) {
                let n = self.acked(w.offset);
                let _ = w.tx.send(Reply::Integer(n as i64));
            } else {
                self.waits.push(w);
            }
        }
    }

    /// Asks every replica for its offset now (REPLCONF GETACK, part of the
    /// stream as in Redis).
    pub fn request_acks(&mut self) {
        if !self.propagating() || self.replicas.is_empty() {
            return;
        }
        let mut out = Vec::new();
        propagate::encode(
            &[
                Bytes::from_static(b"REPLCONF"),
                Bytes::from_static(b"GETACK"),
                Bytes::from_static(b"*"),
            ],
            &mut out,
        );
        self.feed(&out);
    }

    /// Replicas whose last ACK is within `min-replicas-max-lag`.
    pub fn good_replicas(&self) -> usize {
        let lag = self.settings.min_replicas_max_lag;
        self.replicas
            .iter()
            .filter(|r| r.state != SyncState::SendBulk && r.last_ack.elapsed().as_secs() <= lag)
            .count()
    }

    /// Whether writes get `-NOREPLICAS` (min-replicas-to-write).
    pub fn too_few_replicas(&self) -> bool {
        let min = self.settings.min_replicas;
        min > 0 && self.master.is_none() && self.good_replicas() < min
    }

    /// This server becomes a replica of `link`'s primary and stops
    /// propagating. Its own replicas stay connected, as in Redis 7.0's
    /// `replicationSetMaster`: it asks the new primary to continue its own
    /// history, and if it does under the same id they continue with it
    /// unaware. They are dropped (and resync, partially where the ids
    /// allow) only when the history changes: a `+CONTINUE` with another id
    /// ([`Self::continued_with`]) or a full sync ([`Self::synced_full`]).
    pub fn become_replica(&mut self, link: Arc<MasterLink>) {
        if let Some(old) = self.master.replace(link) {
            old.cancelled
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.pending.clear();
        // As Redis 7.0: clients in WAIT get the role change's error (and
        // their connections close after it).
        for w in std::mem::take(&mut self.waits) {
            let _ = w.tx.send(Reply::Error(
                crate::errors::replication::UNBLOCKED_ROLE_CHANGE.into(),
            ));
        }
    }

    /// REPLICAOF NO ONE: the history so far stays valid under `replid2` up
    /// to this offset, so the other replicas continue with a partial sync.
    pub fn become_primary(&mut self) {
        if let Some(old) = self.master.take() {
            old.cancelled
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.stream_db = None;
        self.replid2 = std::mem::replace(&mut self.replid, random_id());
        self.second_offset = self.offset as i64 + 1;
        self.selected_db = None;
        self.ensure_backlog();
        // As Redis: our replicas learn the new id by reconnecting, and
        // continue partially under `replid2`.
        self.drop_replicas();
    }

    /// A full sync from a primary installed its data set at `offset` under `replid`.
    pub fn synced_full(&mut self, replid: String, offset: u64) {
        self.replid = replid;
        self.replid2 = "0".repeat(40);
        self.second_offset = -1;
        self.offset = offset;
        self.backlog = Some(Backlog::new(self.settings.backlog_size, offset + 1));
        // Our own replicas must sync anew from the new history.
        self.drop_replicas();
    }

    /// `+CONTINUE <replid>` from a primary whose id changed (it was promoted):
    /// the old id stays valid up to here.
    pub fn continued_with(&mut self, replid: String) {
        if replid != self.replid {
            self.replid2 = std::mem::replace(&mut self.replid, replid);
            self.second_offset = self.offset as i64 + 1;
            // They continue from us under our old id, now `replid2`.
            self.drop_replicas();
        }
        self.ensure_backlog();
    }

    /// Disconnects every replica: each one's connection ends, and it
    /// reconnects and asks again.
    fn drop_replicas(&mut self) {
        for r in self.replicas.drain(..) {
            r.out.drop_link();
        }
        if self.no_replicas_since.is_none() {
            self.no_replicas_since = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_output_keeps_order_and_drops_past_the_hard_limit() {
        let out = ReplicaOut::default();
        let limit = ObufLimit {
            hard: 200_000,
            soft: 0,
            soft_seconds: 0,
        };
        let mut sent = Vec::new();
        for i in 0..1000u32 {
            let piece = vec![(i % 251) as u8; (i % 97) as usize + 1];
            assert!(out.push(&piece, &limit));
            sent.extend_from_slice(&piece);
        }
        assert_eq!(out.pending(), sent.len());
        let got: Vec<u8> = out.take().unwrap().into_iter().flatten().collect();
        assert_eq!(got, sent);
        assert_eq!(out.pending(), 0);
        assert!(!out.push(&vec![0; 200_001], &limit));
        assert!(out.is_dropped());
        assert!(out.take().is_none());
    }

    fn link_to(r: &mut Replication, client_id: u64) -> Arc<ReplicaOut> {
        let out = Arc::new(ReplicaOut::default());
        r.attach(ReplicaLink {
            client_id,
            ip: "127.0.0.1".into(),
            port: 7000,
            out: out.clone(),
            state: SyncState::Online,
            ack_offset: 0,
            last_ack: Instant::now(),
        });
        out
    }

    #[test]
    fn replicas_stay_through_a_role_change_until_the_history_changes() {
        let mut r = Replication::default();
        let out = link_to(&mut r, 1);
        let own = r.replid.clone();
        r.become_replica(Arc::new(MasterLink::new("127.0.0.1".into(), 1)));
        assert_eq!(r.replicas.len(), 1);
        r.continued_with(own.clone());
        assert_eq!(r.replicas.len(), 1);
        assert!(!out.is_dropped());

        r.continued_with("b".repeat(40));
        assert!(r.replicas.is_empty() && out.is_dropped());
        assert_eq!(r.replid2, own);

        let out = link_to(&mut r, 2);
        r.synced_full("c".repeat(40), 10);
        assert!(r.replicas.is_empty() && out.is_dropped());

        let out = link_to(&mut r, 3);
        r.become_primary();
        assert!(r.replicas.is_empty() && out.is_dropped());
        assert_eq!(r.replid2, "c".repeat(40));
    }

    #[test]
    fn several_ops_of_one_command_become_one_transaction() {
        let mut r = Replication::default();
        r.ensure_backlog();
        r.begin_command();
        r.push_op(
            0,
            vec![Bytes::from("SET"), Bytes::from("a"), Bytes::from("1")],
        );
        r.push_op(0, vec![Bytes::from("DEL"), Bytes::from("b")]);
        r.end_command();
        r.begin_command();
        r.push_op(2, vec![Bytes::from("INCR"), Bytes::from("n")]);
        r.end_command();
        let b = r.backlog.as_ref().unwrap();
        let text = String::from_utf8(b.since(1).unwrap()).unwrap();
        let words: Vec<&str> = text
            .split("\r\n")
            .filter(|w| !w.starts_with('*') && !w.starts_with('$') && !w.is_empty())
            .collect();
        assert_eq!(
            words,
            [
                "SELECT", "0", "MULTI", "SET", "a", "1", "DEL", "b", "EXEC", "SELECT", "2", "INCR",
                "n"
            ]
        );
        assert_eq!(r.offset as usize, text.len());
    }
}
