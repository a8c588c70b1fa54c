//! The command table and dispatch.
//!
//! Every command is one [`CommandSpec`] entry in its family's `COMMANDS` table
//! (name, arity, flags, key positions, handler), in the manner of Dragonfly's
//! `*_family.cc`. [`execute`] looks a command up, checks its arity once for all,
//! refuses writes while persistence is failing (MISCONF), runs the handler, turns a
//! [`CommandError`] into the error reply, and serves blocked clients whose keys the
//! command made ready. Adding a command is one table entry plus its handler.

pub mod args;
pub mod bitmaps;
pub mod cluster;
pub mod connection;
pub mod dump;
pub mod geo;
pub mod hashes;
pub mod hll;
pub mod introspection;
pub mod keys;
pub mod lists;
pub mod monitoring;
pub mod persistence;
pub mod pubsub;
pub mod replication;
pub mod sample;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod transactions;
pub mod zsets;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::blocking::{self, ServeFn};
use crate::clients::ClientState;
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::{Db, Key};
use crate::reply::Reply;
use crate::state::{Shared, State};

/// A command handler. `args[0]` is the command name as the client sent it.
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CmdResult;

/// Command flags, reported by COMMAND INFO and used by dispatch.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const MAY_REPLICATE: u32 = 1 << 11;
    pub const SENTINEL: u32 = 1 << 12;
    pub const ALLOW_BUSY: u32 = 1 << 13;
    /// Refused while queueing inside MULTI (SAVE, SHUTDOWN).
    pub const NO_MULTI: u32 = 1 << 14;

    /// Names in the order Redis lists them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (SENTINEL, "sentinel"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// One command's static description.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: exact argument count including the name, or `-n` for at least n.
    pub arity: i32,
    pub flags: u32,
    /// Key positions as Redis's legacy (first, last, step); 0 means no keys.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// ACL category / docs group: "string", "list", "hash", "set", "keyspace",
    /// "connection", "server", "generic".
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub handler: Handler,
}

impl CommandSpec {
    pub fn is_write(&self) -> bool {
        self.flags & flags::WRITE != 0
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }
}

/// Builds a [`CommandSpec`]; `keys` is Redis's (first, last, step).
pub const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    group: &'static str,
    summary: &'static str,
    handler: Handler,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group,
        summary,
        since: "1.0.0",
        handler,
    }
}

/// No key arguments.
pub const NO_KEYS: (i32, i32, i32) = (0, 0, 0);
/// The first argument is the only key.
pub const KEY1: (i32, i32, i32) = (1, 1, 1);

/// All families' tables.
fn families() -> [&'static [CommandSpec]; 22] {
    [
        connection::COMMANDS,
        server::COMMANDS,
        keys::COMMANDS,
        strings::COMMANDS,
        lists::COMMANDS,
        hashes::COMMANDS,
        sets::COMMANDS,
        persistence::COMMANDS,
        introspection::COMMANDS,
        monitoring::COMMANDS,
        transactions::COMMANDS,
        pubsub::COMMANDS,
        zsets::COMMANDS,
        bitmaps::COMMANDS,
        hll::COMMANDS,
        sort::COMMANDS,
        scripting::COMMANDS,
        streams::COMMANDS,
        dump::COMMANDS,
        replication::COMMANDS,
        cluster::COMMANDS,
        geo::COMMANDS,
    ]
}

/// Name (lower case, as bytes) → spec. foldhash on a few bytes, no UTF-8
/// check: the lookup runs for every command.
type Table = HashMap<&'static [u8], &'static CommandSpec, foldhash::fast::FixedState>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map = Table::default();
        for family in families() {
            for spec in family {
                let dup = map.insert(spec.name.as_bytes(), spec);
                assert!(dup.is_none(), "command {} registered twice", spec.name);
            }
        }
        map
    })
}

/// Every command, in no particular order.
pub fn all_commands() -> impl Iterator<Item = &'static CommandSpec> {
    table().values().copied()
}

/// Finds a command by name, case-insensitively.
#[inline]
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    for (dst, src) in lower.iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    table().get(&*lower).copied()
}

/// A blocked command's wait: the connection awaits `rx` until `deadline`.
pub struct BlockRequest {
    pub waiter_id: u64,
    pub rx: oneshot::Receiver<Reply>,
    /// `None` waits forever (timeout 0).
    pub timeout: Option<Duration>,
    /// The reply on timeout (a null array for BLPOP, a null bulk for BLMOVE).
    pub timeout_reply: Reply,
}

/// What a handler runs with: the locked state, the shared server, its client.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub state: &'a mut State,
    pub client: &'a mut ClientState,
    pub now_ms: i64,
    /// Set by a blocking command that found nothing to take.
    pub blocked: Option<BlockRequest>,
    /// False inside MULTI/EXEC and for served waiters: blocking commands then
    /// behave as if they timed out at once.
    pub may_block: bool,
}

impl<'a> Ctx<'a> {
    /// The client's selected database.
    pub fn db(&mut self) -> &mut Db {
        let index = self.client.db;
        self.state.keyspace.db_mut(index)
    }

    /// Counts `n` changes towards the save points (Redis's `server.dirty`).
    pub fn dirty(&mut self, n: u64) {
        self.state.dirty += n;
    }

    /// Tells waiters on `key` (in the client's db) that it has elements.
    pub fn signal_key(&mut self, key: &[u8]) {
        let db = self.client.db;
        self.state.blocking.signal(db, key);
    }

    /// Reports that this command changed `key` in the client's database:
    /// publishes keyspace event `event` of `class` (a
    /// [`crate::pubsub::notify`] constant) and touches the key's watchers
    /// (Redis pairs `notifyKeyspaceEvent` with `signalModifiedKey`). Two
    /// tests when neither notifications nor watches are in use.
    #[inline]
    pub fn notify(&mut self, class: u32, event: &str, key: &[u8]) {
        if self.state.pubsub.notify_flags & class != 0 || !self.state.watches.is_empty() {
            let db = self.client.db;
            self.notify_db(db, class, event, key);
        }
        // Blocked stream reads hear of deletions and type changes too.
        if self.state.blocking.wants_changes() {
            let db = self.client.db;
            self.state.blocking.signal(db, key);
        }
    }

    /// Publishes a keyspace event without touching the key's watchers
    /// ([`crate::state::State::key_event`]).
    pub fn notify_event(&mut self, class: u32, event: &str, key: &[u8]) {
        let (db, now) = (self.client.db, self.now_ms);
        self.state.key_event(db, class, event, key, now);
    }

    /// As [`Ctx::notify`], for a key in database `db` (MOVE, COPY ... DB).
    pub fn notify_db(&mut self, db: usize, class: u32, event: &str, key: &[u8]) {
        self.state.key_changed(db, class, event, key, self.now_ms);
    }

    /// `del` on `key` if a removal just emptied (and so deleted) it.
    pub fn del_if_gone(&mut self, key: &[u8]) {
        if self.state.pubsub.notify_flags & crate::pubsub::notify::GENERIC != 0 {
            let now = self.now_ms;
            if self.db().peek(key, now).is_none() {
                self.notify(crate::pubsub::notify::GENERIC, "del", key);
            }
        }
    }

    /// Blocks the client on `keys`. Returns the reply to send now: none (the
    /// connection waits), or `timeout_reply` at once where blocking is not allowed.
    pub fn block_on(
        &mut self,
        keys: Vec<Key>,
        args: &[Bytes],
        timeout: Option<Duration>,
        serve: ServeFn,
        timeout_reply: Reply,
    ) -> CmdResult {
        if !self.may_block {
            return Ok(timeout_reply);
        }
        let (waiter_id, rx) = self.state.blocking.register(
            self.client.id,
            self.client.db,
            keys.iter().map(crate::protocol::detach).collect(),
            crate::protocol::detach_all(args),
            serve,
        );
        self.blocked = Some(BlockRequest {
            waiter_id,
            rx,
            timeout,
            timeout_reply,
        });
        // Placeholder; the connection sends the waiter's reply instead.
        Ok(Reply::NullArray)
    }
}

/// Runs one command queued by MULTI, inside EXEC: as [`execute`], but blocked
/// clients are served only once the whole transaction ran.
pub fn execute_queued(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let reply = match dispatch(ctx, lookup(&args[0]), args) {
        Ok(reply) => reply,
        Err(e) => e.to_reply(),
    };
    if let Reply::Error(text) = &reply {
        ctx.state.stats.record_error(text);
    }
    reply
}

/// Runs one command and returns its reply. The caller holds the state lock.
pub fn execute(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    execute_as(ctx, lookup(&args[0]), args)
}

/// As [`execute`], for a caller that already looked the command up
/// (`spec` is `lookup(&args[0])`).
pub fn execute_as(ctx: &mut Ctx<'_>, spec: Option<&'static CommandSpec>, args: &[Bytes]) -> Reply {
    ctx.state.repl.begin_command();
    let offset_before = ctx.state.repl.offset;
    let mode = ctx.state.repl.expiry_mode(ctx.client.repl.is_master);
    ctx.state.keyspace.set_expiry_mode(mode);
    let reply = match dispatch(ctx, spec, args) {
        Ok(reply) => reply,
        Err(e) => e.to_reply(),
    };
    if let Reply::Error(text) = &reply {
        ctx.state.stats.record_error(text);
    }
    let db = ctx.client.db;
    if ctx.state.keyspace.db(db).has_expired_log() {
        crate::pubsub::notify::flush_expired(ctx.state, db, ctx.now_ms);
    }
    // The command's writes (several as one MULTI/EXEC) go out before the
    // pops of the clients it unblocks.
    ctx.state.repl.end_command();
    if ctx.state.repl.offset != offset_before {
        ctx.client.repl.write_offset = ctx.state.repl.offset;
    }
    if ctx.state.blocking.has_ready() {
        let now = ctx.now_ms;
        blocking::serve_ready(ctx.state, now);
    }
    reply
}

fn dispatch(ctx: &mut Ctx<'_>, spec: Option<&'static CommandSpec>, args: &[Bytes]) -> CmdResult {
    let Some(spec) = spec else {
        transactions::flag_failed(ctx);
        return Err(CommandError::unknown_command(&args[0], &args[1..]));
    };
    if !spec.arity_ok(args.len()) {
        ctx.state.stats.command(spec.name).rejected_calls += 1;
        return Err(transactions::reject(
            ctx,
            spec,
            CommandError::wrong_arity(spec.name),
        ));
    }
    // As in Redis, unknown commands and arity errors are reported before NOAUTH.
    if !ctx.client.authenticated
        && spec.flags & flags::NO_AUTH == 0
        && !ctx.shared.config().requirepass.is_empty()
    {
        ctx.state.stats.command(spec.name).rejected_calls += 1;
        let noauth = CommandError::Other(crate::security::NOAUTH.into());
        return Err(transactions::reject(ctx, spec, noauth));
    }
    // While the start-up load runs, only the commands Redis flags
    // `loading` are served.
    if spec.flags & flags::LOADING == 0 && ctx.shared.loading.is_active() {
        ctx.state.stats.command(spec.name).rejected_calls += 1;
        return Err(transactions::reject(ctx, spec, CommandError::Loading));
    }
    // A replica leaves eviction to its primary (`replica-ignore-maxmemory`).
    if ctx.state.eviction.settings.maxmemory > 0
        && !ctx.client.tx.executing
        && !ctx.state.repl.is_replica()
    {
        let outcome = crate::eviction::perform(ctx.state, ctx.now_ms);
        let oom = outcome == crate::eviction::Outcome::Fail;
        ctx.state.eviction.oom_at_command_start = oom;
        if oom && refused_on_oom(ctx, spec) {
            ctx.state.stats.command(spec.name).rejected_calls += 1;
            return Err(transactions::reject(ctx, spec, CommandError::Oom));
        }
    }
    if let Some(err) = replication_refusal(ctx, spec) {
        ctx.state.stats.command(spec.name).rejected_calls += 1;
        return Err(transactions::reject(ctx, spec, err));
    }
    if let Some(result) = transactions::intercept(ctx, spec, args) {
        return result;
    }
    call(ctx, spec, args)
}

/// Runs a command that passed the client-level checks: the MISCONF refusal
/// of writes, the handler, propagation and the statistics (Redis's `call()`).
/// `redis.call` comes here directly once it made the checks Redis's
/// `scriptCall` makes.
fn call(ctx: &mut Ctx<'_>, spec: &'static CommandSpec, args: &[Bytes]) -> CmdResult {
    ctx.state.stats.total_commands_processed += 1;
    if spec.is_write() && crate::persistence::writes_refused(ctx.shared, ctx.state) {
        ctx.state.stats.command(spec.name).rejected_calls += 1;
        return Err(CommandError::Misconf);
    }
    // Inside a connection's batch the previous command's end is this one's
    // start: one clock read per command.
    let started = ctx
        .state
        .command_clock
        .unwrap_or_else(std::time::Instant::now);
    let dirty_before = ctx.state.dirty;
    let result = (spec.handler)(ctx, args);
    // Small values a write unpacked are packed again before anyone else looks.
    ctx.state.keyspace.settle();
    // As Redis's call(): a command that changed something is propagated;
    // PUBLISH always is, so a replica's subscribers hear it too.
    if (ctx.state.dirty != dirty_before || spec.name == "publish") && ctx.state.repl.propagating() {
        if let Ok(reply) = &result {
            let db = ctx.client.db;
            crate::replication::propagate::command(
                ctx.state, db, spec.name, args, reply, ctx.now_ms,
            );
        }
    }
    let ended = std::time::Instant::now();
    if ctx.state.command_clock.is_some() {
        ctx.state.command_clock = Some(ended);
    }
    let usec = ended.saturating_duration_since(started).as_micros() as u64;
    let stats = ctx.state.stats.command(spec.name);
    stats.calls += 1;
    stats.usec += usec;
    stats.failed_calls += result.is_err() as u64;
    monitoring::after_command(ctx, spec, args, usec);
    result
}

/// The replication checks of Redis's `processCommand`: too few good
/// replicas (`-NOREPLICAS`), a write on a read-only replica (`-READONLY`),
/// and a replica whose link is down with `replica-serve-stale-data no`
/// (`-MASTERDOWN`). The primary's own link passes them all.
fn replication_refusal(ctx: &Ctx<'_>, spec: &CommandSpec) -> Option<CommandError> {
    let repl = &ctx.state.repl;
    if ctx.client.repl.is_master {
        return None;
    }
    if spec.is_write() && repl.too_few_replicas() {
        return Some(CommandError::NoReplicas);
    }
    let master = repl.master.as_ref()?;
    if spec.is_write() && repl.settings.read_only {
        return Some(CommandError::ReadOnlyReplica);
    }
    if spec.flags & flags::STALE == 0 && !repl.settings.serve_stale && !master.status().up {
        return Some(CommandError::MasterDown);
    }
    None
}

/// Whether a command is refused while memory is over `maxmemory` and
/// nothing can be evicted (Redis's `processCommand`): commands that may grow
/// memory (`denyoom`), EXEC of a transaction holding one, and anything
/// queued inside MULTI but the commands that end or watch it.
fn refused_on_oom(ctx: &Ctx<'_>, spec: &CommandSpec) -> bool {
    if spec.flags & flags::DENYOOM != 0 {
        return true;
    }
    if !ctx.client.tx.active {
        return false;
    }
    if spec.name == "exec" {
        return ctx.client.tx.queue.iter().any(|queued| {
            queued
                .first()
                .and_then(|name| lookup(name))
                .is_some_and(|s| s.flags & flags::DENYOOM != 0)
        });
    }
    !matches!(
        spec.name,
        "multi" | "discard" | "watch" | "unwatch" | "quit" | "reset"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"PiNg").unwrap().name, "ping");
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn every_spec_is_well_formed() {
        for spec in all_commands() {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert!(spec.arity != 0, "{} has arity 0", spec.name);
            if spec.first_key > 0 {
                assert!(spec.step > 0, "{} has keys but no step", spec.name);
            }
        }
    }
}
