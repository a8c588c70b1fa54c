//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (and RESET's share of
//! leaving MULTI and pub/sub), and the queueing of
//! commands between MULTI and EXEC (see [`intercept`], called by dispatch).
//!
//! EXEC runs the queued commands back to back inside one command, so under the
//! state lock: a snapshot (which clones the keyspace under that lock) sees all of
//! a transaction or none of it, and blocked clients are served only after it.
//!
//! # WATCH by identity
//!
//! WATCH keeps a clone of the watched key's stored [`crate::keyspace::Record`] (or its
//! absence): one reference count. A write replaces a packed record, so its
//! identity changes; a boxed record holds a persistent value whose root is
//! copied by any real change while the watch shares it (see [`crate::keyspace::Record::same`]).
//! EXEC compares identities. This needs no hook in any command, and it also
//! covers expiry (the key is gone), FLUSHDB/FLUSHALL, SWAPDB and a snapshot
//! load (new records).
//!
//! Compared with Redis's "touched" flags: no-op writes that leave the value
//! alone (SADD of a present member, SREM/HDEL of an absent one, PERSIST of a
//! key without TTL) do not abort, as in Redis; writes that store the same
//! contents anew (HSET of the same value, SET of the same string) abort, as in
//! Redis. A small string moved away and back (RENAME a b, RENAME b a) is a new
//! record and aborts, as in Redis; a large value moved away and back keeps its
//! identity and does not (Redis aborts).

use bytes::Bytes;

use super::flags::*;
use super::{spec, CommandSpec, Ctx, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::reply::{Protocol, Reply};
use crate::transaction::Watched;

const TX_FLAGS: u32 = NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        since: "1.2.0",
        ..spec(
            "multi",
            1,
            TX_FLAGS,
            NO_KEYS,
            "transactions",
            "Starts a transaction.",
            multi,
        )
    },
    CommandSpec {
        since: "1.2.0",
        ..spec(
            "exec",
            1,
            NOSCRIPT | LOADING | STALE,
            NO_KEYS,
            "transactions",
            "Executes all commands in a transaction.",
            exec,
        )
    },
    CommandSpec {
        since: "2.0.0",
        ..spec(
            "discard",
            1,
            TX_FLAGS,
            NO_KEYS,
            "transactions",
            "Discards a transaction.",
            discard,
        )
    },
    CommandSpec {
        since: "2.2.0",
        ..spec(
            "watch",
            -2,
            TX_FLAGS,
            (1, -1, 1),
            "transactions",
            "Monitors changes to keys to determine the execution of a transaction.",
            watch,
        )
    },
    CommandSpec {
        since: "2.2.0",
        ..spec(
            "unwatch",
            1,
            TX_FLAGS,
            NO_KEYS,
            "transactions",
            "Forgets about watched keys of a transaction.",
            unwatch,
        )
    },
];

/// Marks the transaction failed if one is open (a command refused at queue time).
pub fn flag_failed(ctx: &mut Ctx<'_>) {
    if ctx.client.tx.active {
        ctx.client.tx.failed = true;
    }
}

/// A command refused before it ran (arity, subscribed mode): flags an open
/// transaction, and for EXEC itself discards it with Redis's EXECABORT text.
pub fn reject(ctx: &mut Ctx<'_>, spec: &CommandSpec, err: CommandError) -> CommandError {
    flag_failed(ctx);
    if spec.name != "exec" {
        return err;
    }
    ctx.client.tx.reset();
    let text = err.to_string();
    let reason = text.strip_prefix("ERR ").unwrap_or(&text);
    CommandError::Other(format!(
        "EXECABORT Transaction discarded because of: {reason}"
    ))
}

/// Commands RESP2 allows while subscribed.
fn allowed_while_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// Runs before every command's handler: refuses what subscribed mode forbids,
/// answers PING in subscribed mode, and queues commands inside MULTI. `None`
/// means run the handler. Costs two flag tests for a plain client.
#[inline]
pub fn intercept(ctx: &mut Ctx<'_>, spec: &CommandSpec, args: &[Bytes]) -> Option<CmdResult> {
    if (!ctx.client.tx.active && !ctx.client.subs.is_subscribed()) || ctx.client.tx.executing {
        return None;
    }
    if ctx.client.subs.is_subscribed() && ctx.client.proto == Protocol::Resp2 {
        if !allowed_while_subscribed(spec.name) {
            let err = CommandError::err(format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                super::server::display_name(args)
            ));
            return Some(Err(reject(ctx, spec, err)));
        }
        if spec.name == "ping" && !ctx.client.tx.active {
            if args.len() > 2 {
                return Some(Err(CommandError::wrong_arity("ping")));
            }
            let payload = args.get(1).cloned().unwrap_or_default();
            return Some(Ok(Reply::Array(vec![
                Reply::bulk_str("pong"),
                Reply::Bulk(payload),
            ])));
        }
    }
    if ctx.client.tx.active
        && !matches!(
            spec.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        )
    {
        if spec.is_write() && crate::persistence::writes_refused(ctx.shared, ctx.state) {
            ctx.client.tx.failed = true;
            return Some(Err(CommandError::Misconf));
        }
        ctx.client.tx.queue.push(args.to_vec());
        return Some(Ok(Reply::simple("QUEUED")));
    }
    None
}

fn multi(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.client.tx.active {
        return Err(CommandError::err("MULTI calls can not be nested"));
    }
    ctx.client.tx.active = true;
    Ok(Reply::ok())
}

fn discard(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if !ctx.client.tx.active {
        return Err(CommandError::err("DISCARD without MULTI"));
    }
    ctx.client.tx.reset();
    Ok(Reply::ok())
}

fn exec(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if !ctx.client.tx.active {
        return Err(CommandError::err("EXEC without MULTI"));
    }
    let queue = std::mem::take(&mut ctx.client.tx.queue);
    let failed = ctx.client.tx.failed;
    let intact = watched_intact(ctx);
    // Redis unwatches before running the queue: the transaction's own writes
    // do not count against it.
    ctx.client.tx.reset();
    if failed {
        return Err(CommandError::Other(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        ));
    }
    if !intact {
        return Ok(Reply::NullArray);
    }
    let may_block = ctx.may_block;
    ctx.may_block = false;
    ctx.client.tx.executing = true;
    let replies = queue
        .iter()
        .map(|args| super::execute_queued(ctx, args))
        .collect();
    ctx.client.tx.executing = false;
    ctx.may_block = may_block;
    Ok(Reply::Array(replies))
}

fn watch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.client.tx.active {
        return Err(CommandError::err("WATCH inside MULTI is not allowed"));
    }
    let db = ctx.client.db;
    for key in &args[1..] {
        let tx = &ctx.client.tx;
        if tx.watched.iter().any(|w| w.db == db && w.key == *key) {
            continue;
        }
        // `peek` so WATCH itself never deletes: a key already expired counts as
        // absent, and its later reclamation does not abort (Redis 7 does the same).
        let seen = ctx
            .state
            .keyspace
            .db(db)
            .peek_record(key, ctx.now_ms)
            .cloned();
        ctx.client.tx.watched.push(Watched {
            db,
            key: key.clone(),
            seen,
        });
    }
    Ok(Reply::ok())
}

fn unwatch(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.client.tx.watched.clear();
    Ok(Reply::ok())
}

/// RESET's share (the rest is in `server::control::reset`): drops the client's transaction, watches and subscriptions.
pub fn reset_client(ctx: &mut Ctx<'_>) {
    ctx.client.tx.reset();
    let id = ctx.client.id;
    ctx.state.pubsub.remove_client(&ctx.client.subs, id);
    ctx.client.subs.channels.clear();
    ctx.client.subs.patterns.clear();
}

/// Whether every watched key still holds the very record (or absence) it
/// held at WATCH time.
fn watched_intact(ctx: &Ctx<'_>) -> bool {
    let ks = &ctx.state.keyspace;
    ctx.client.tx.watched.iter().all(|w| {
        let now = if w.db < ks.db_count() {
            ks.db(w.db).peek_record(&w.key, ctx.now_ms)
        } else {
            None
        };
        match (&w.seen, now) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same(b),
            _ => false,
        }
    })
}
