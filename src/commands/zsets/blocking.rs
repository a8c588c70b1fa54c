//! BZPOPMIN, BZPOPMAX and BZMPOP through the list commands' blocking
//! machinery ([`crate::blocking`]): each first runs its non-blocking form;
//! with nothing to pop it registers with [`Ctx::block_on`], and a write that
//! creates one of its keys serves it, in arrival order, by running the same
//! pop for the waiter. Inside MULTI (or a served waiter) it answers as a
//! timeout at once: a null array, as Redis 7.0.

use bytes::Bytes;

use super::{mpop_first, mpop_reply, parse_mpop, pop_from, Ctx};
use crate::commands::args;
use crate::errors::CmdResult;
use crate::reply::Reply;
use crate::state::State;

/// BZPOPMIN/BZPOPMAX's `[key, member, score]`.
fn triple(key: Bytes, popped: &[(Bytes, f64)]) -> Option<Reply> {
    let (m, s) = popped.first()?;
    Some(Reply::Array(vec![
        Reply::Bulk(key),
        Reply::Bulk(m.clone()),
        Reply::Double(*s),
    ]))
}

pub(super) fn bzpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bzpop(ctx, args)
}

pub(super) fn bzpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bzpop(ctx, args)
}

fn is_max(args: &[Bytes]) -> bool {
    args::is(&args[0], "bzpopmax")
}

fn bzpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let last = args.len() - 1;
    let timeout = args::timeout(&args[last])?;
    let keys = &args[1..last];
    let (now, db) = (ctx.now_ms, ctx.client.db);
    if let Some((key, popped)) = mpop_first(ctx.state, db, keys, is_max(args), 1, now)? {
        if let Some(reply) = triple(key, &popped) {
            return Ok(reply);
        }
    }
    ctx.block_on(keys.to_vec(), args, timeout, serve_bzpop, Reply::NullArray)
}

/// Pops for a waiter from `ready_key`; `None` (stay blocked) unless it now
/// holds a sorted set.
fn serve_bzpop(
    state: &mut State,
    db: usize,
    args: &[Bytes],
    ready_key: &[u8],
    now_ms: i64,
) -> Option<Reply> {
    let popped = pop_from(state, db, ready_key, 1, is_max(args), now_ms).ok()??;
    triple(Bytes::copy_from_slice(ready_key), &popped)
}

pub(super) fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, max, count) = parse_mpop(args, 2)?;
    let timeout = args::timeout(&args[1])?;
    let (now, db) = (ctx.now_ms, ctx.client.db);
    if let Some((key, popped)) = mpop_first(ctx.state, db, &keys, max, count, now)? {
        return Ok(mpop_reply(key, &popped));
    }
    ctx.block_on(keys, args, timeout, serve_bzmpop, Reply::NullArray)
}

fn serve_bzmpop(
    state: &mut State,
    db: usize,
    args: &[Bytes],
    ready_key: &[u8],
    now_ms: i64,
) -> Option<Reply> {
    let (_, max, count) = parse_mpop(args, 2).ok()?;
    let popped = pop_from(state, db, ready_key, count, max, now_ms).ok()??;
    if popped.is_empty() {
        return None;
    }
    Some(mpop_reply(Bytes::copy_from_slice(ready_key), &popped))
}
