//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (and RESET's share of
//! leaving MULTI and pub/sub), and the queueing of
//! commands between MULTI and EXEC (see [`intercept`], called by dispatch).
//!
//! EXEC runs the queued commands back to back inside one command, so under the
//! state lock: a snapshot (which clones the keyspace under that lock) sees all of
//! a transaction or none of it, and blocked clients are served only after it.
//!
//! WATCH registers keys in [`crate::transaction::Watches`]; writes touch them
//! through the context's `notify` (see that module for the rules).

use bytes::Bytes;

use super::flags::*;
use super::{spec, CommandSpec, Ctx, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::reply::{Protocol, Reply};

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
    unwatch_all(ctx);
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
        if spec.flags & NO_MULTI != 0 {
            let err = CommandError::err("Command not allowed inside a transaction");
            return Some(Err(reject(ctx, spec, err)));
        }
        if spec.is_write() && crate::persistence::writes_refused(ctx.shared, ctx.state) {
            ctx.client.tx.failed = true;
            return Some(Err(CommandError::Misconf));
        }
        ctx.client.tx.queue.push(crate::protocol::detach_all(args));
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
    unwatch_all(ctx);
    Ok(Reply::ok())
}

/// Drops the client's watches.
pub fn unwatch_all(ctx: &mut Ctx<'_>) {
    if !ctx.client.tx.watched.is_empty() {
        let id = ctx.client.id;
        ctx.state.watches.unwatch(id, &mut ctx.client.tx.watched);
    }
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
    unwatch_all(ctx);
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
        if tx.watched.iter().any(|(d, k)| *d == db && k == key) {
            continue;
        }
        // WATCH itself never deletes: a key already expired is flagged, and
        // its later reclamation does not abort (as in Redis 7.0).
        let expired = ctx
            .state
            .keyspace
            .db(db)
            .stored(key)
            .is_some_and(|r| r.is_expired(ctx.now_ms));
        // Kept until EXEC or UNWATCH: a copy, not a slice of the read buffer.
        let key = crate::protocol::detach(key);
        ctx.state
            .watches
            .watch(ctx.client.id, db, key.clone(), expired);
        ctx.client.tx.watched.push((db, key));
    }
    Ok(Reply::ok())
}

fn unwatch(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    unwatch_all(ctx);
    Ok(Reply::ok())
}

/// RESET's share (the rest is in `server::control::reset`): drops the client's transaction, watches and subscriptions.
pub fn reset_client(ctx: &mut Ctx<'_>) {
    ctx.client.tx.reset();
    unwatch_all(ctx);
    let id = ctx.client.id;
    ctx.state.pubsub.remove_client(&ctx.client.subs, id);
    ctx.client.subs.channels.clear();
    ctx.client.subs.patterns.clear();
    ctx.client.subs.shards.clear();
}

/// Whether no write touched a watched key and none expired since WATCH.
fn watched_intact(ctx: &Ctx<'_>) -> bool {
    let tx = &ctx.client.tx;
    if tx.watched.is_empty() {
        return true;
    }
    let watches = &ctx.state.watches;
    !watches.is_dirty(ctx.client.id)
        && !watches.expired_since(
            ctx.client.id,
            &tx.watched,
            ctx.state.keyspace.dbs(),
            ctx.now_ms,
        )
}
