//! Sorted set commands with Redis 7.0's replies, errors, notifications and
//! change counting: ZADD and the single-key reads and writes here, the range
//! family in [`range`], the algebra (ZUNION, ZINTER, ZDIFF, their STORE forms,
//! ZINTERCARD) in [`algebra`], and BZPOPMIN, BZPOPMAX and BZMPOP in
//! [`blocking`].
//!
//! A sorted set is a [`ZSet`] (listpack, then skiplist, converted by Redis
//! 7.0's rules under `zset-max-listpack-*`); removing its last member deletes
//! the key. Replies with scores are flat `member, score` lists in RESP2 and
//! `[member, score]` pairs in RESP3, scores formatted as Redis's `%.17g`.

mod algebra;
mod blocking;
mod parse;
mod range;

use bytes::Bytes;

use super::args;
use super::flags::*;
use super::hashes::{lookup_read, owned, parse_scan_cursor, parse_scan_options, scan_reply};
use super::{spec, CommandSpec, Ctx, KEY1, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::zset::ZSet;
use crate::keyspace::Value;
use crate::pubsub::notify;
use crate::reply::{format_double, BulkRun, DoubleText, Protocol, Reply};

const fn since(version: &'static str, spec: CommandSpec) -> CommandSpec {
    CommandSpec {
        since: version,
        ..spec
    }
}

const fn z(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    summary: &'static str,
    handler: super::Handler,
) -> CommandSpec {
    spec(name, arity, flags, keys, "sortedset", summary, handler)
}

/// The first argument is the key and the last the timeout (BZPOPMIN).
const KEYS_BEFORE_TIMEOUT: (i32, i32, i32) = (1, -2, 1);

pub const COMMANDS: &[CommandSpec] = &[
    since("1.2.0", z("zadd", -4, WRITE | DENYOOM | FAST, KEY1, "Add one or more members to a sorted set, or update its score if it already exists", zadd)),
    since("1.2.0", z("zincrby", 4, WRITE | DENYOOM | FAST, KEY1, "Increment the score of a member in a sorted set", zincrby)),
    since("1.2.0", z("zrem", -3, WRITE | FAST, KEY1, "Remove one or more members from a sorted set", zrem)),
    since("1.2.0", z("zcard", 2, READONLY | FAST, KEY1, "Get the number of members in a sorted set", zcard)),
    since("2.0.0", z("zcount", 4, READONLY | FAST, KEY1, "Count the members in a sorted set with scores within the given values", zcount)),
    since("2.8.9", z("zlexcount", 4, READONLY | FAST, KEY1, "Count the number of members in a sorted set between a given lexicographical range", zlexcount)),
    since("1.2.0", z("zscore", 3, READONLY | FAST, KEY1, "Get the score associated with the given member in a sorted set", zscore)),
    since("6.2.0", z("zmscore", -3, READONLY | FAST, KEY1, "Get the score associated with the given members in a sorted set", zmscore)),
    since("2.0.0", z("zrank", 3, READONLY | FAST, KEY1, "Determine the index of a member in a sorted set", zrank)),
    since("2.0.0", z("zrevrank", 3, READONLY | FAST, KEY1, "Determine the index of a member in a sorted set, with scores ordered from high to low", zrevrank)),
    since("1.2.0", z("zrange", -4, READONLY, KEY1, "Return a range of members in a sorted set", range::zrange)),
    since("6.2.0", z("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), "Store a range of members from sorted set into another key", range::zrangestore)),
    since("1.0.5", z("zrangebyscore", -4, READONLY, KEY1, "Return a range of members in a sorted set, by score", range::zrangebyscore)),
    since("2.2.0", z("zrevrangebyscore", -4, READONLY, KEY1, "Return a range of members in a sorted set, by score, with scores ordered from high to low", range::zrevrangebyscore)),
    since("2.8.9", z("zrangebylex", -4, READONLY, KEY1, "Return a range of members in a sorted set, by lexicographical range", range::zrangebylex)),
    since("2.8.9", z("zrevrangebylex", -4, READONLY, KEY1, "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", range::zrevrangebylex)),
    since("1.2.0", z("zrevrange", -4, READONLY, KEY1, "Return a range of members in a sorted set, by index, with scores ordered from high to low", range::zrevrange)),
    since("2.0.0", z("zremrangebyrank", 4, WRITE, KEY1, "Remove all members in a sorted set within the given indexes", range::zremrangebyrank)),
    since("1.2.0", z("zremrangebyscore", 4, WRITE, KEY1, "Remove all members in a sorted set within the given scores", range::zremrangebyscore)),
    since("2.8.9", z("zremrangebylex", 4, WRITE, KEY1, "Remove all members in a sorted set between the given lexicographical range", range::zremrangebylex)),
    since("5.0.0", z("zpopmin", -2, WRITE | FAST, KEY1, "Remove and return members with the lowest scores in a sorted set", zpopmin)),
    since("5.0.0", z("zpopmax", -2, WRITE | FAST, KEY1, "Remove and return members with the highest scores in a sorted set", zpopmax)),
    since("7.0.0", z("zmpop", -4, WRITE, NO_KEYS, "Remove and return members with scores in a sorted set", zmpop)),
    since("5.0.0", z("bzpopmin", -3, WRITE | NOSCRIPT | BLOCKING | FAST, KEYS_BEFORE_TIMEOUT, "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available", blocking::bzpopmin)),
    since("5.0.0", z("bzpopmax", -3, WRITE | NOSCRIPT | BLOCKING | FAST, KEYS_BEFORE_TIMEOUT, "Remove and return the member with the highest score from one or more sorted sets, or block until one is available", blocking::bzpopmax)),
    since("7.0.0", z("bzmpop", -5, WRITE | BLOCKING, NO_KEYS, "Remove and return members with scores in a sorted set or block until one is available", blocking::bzmpop)),
    since("6.2.0", z("zunion", -3, READONLY, NO_KEYS, "Add multiple sorted sets", algebra::zunion)),
    since("6.2.0", z("zinter", -3, READONLY, NO_KEYS, "Intersect multiple sorted sets", algebra::zinter)),
    since("6.2.0", z("zdiff", -3, READONLY, NO_KEYS, "Subtract multiple sorted sets", algebra::zdiff)),
    since("2.0.0", z("zunionstore", -4, WRITE | DENYOOM, KEY1, "Add multiple sorted sets and store the resulting sorted set in a new key", algebra::zunionstore)),
    since("2.0.0", z("zinterstore", -4, WRITE | DENYOOM, KEY1, "Intersect multiple sorted sets and store the resulting sorted set in a new key", algebra::zinterstore)),
    since("6.2.0", z("zdiffstore", -4, WRITE | DENYOOM, KEY1, "Subtract multiple sorted sets and store the resulting sorted set in a new key", algebra::zdiffstore)),
    since("7.0.0", z("zintercard", -3, READONLY, NO_KEYS, "Intersect multiple sorted sets and return the cardinality of the result", algebra::zintercard)),
    since("6.2.0", z("zrandmember", -2, READONLY, KEY1, "Get one or multiple random elements from a sorted set", zrandmember)),
    since("2.8.0", z("zscan", -3, READONLY, KEY1, "Incrementally iterate sorted sets elements and associated scores", zscan)),
];

// ---------------------------------------------------------------------------
// Lookups and replies.

/// The sorted set at `key` for a read (keyspace hits and misses counted).
fn read_zset<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c ZSet>, CommandError> {
    lookup_read(ctx, key).map(Value::as_zset).transpose()
}

/// The existing sorted set at `key`, looked up by a write command (no
/// statistics) that first checks whether it has anything to do: a mutable
/// lookup copies the path to a value a snapshot still shares.
fn existing_zset<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c ZSet>, CommandError> {
    let now = ctx.now_ms;
    ctx.db()
        .get(key, now)
        .map(|e| e.value.as_zset())
        .transpose()
}

fn existing_zset_mut<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut ZSet>, CommandError> {
    let now = ctx.now_ms;
    ctx.db()
        .get_mut(key, now)
        .map(|e| e.value.as_zset_mut())
        .transpose()
}

/// Whether the client speaks RESP3 (scored replies nest pairs there).
fn resp3(ctx: &Ctx<'_>) -> bool {
    ctx.client.proto == Protocol::Resp3
}

/// Members, with their scores when `withscores`: a flat list in RESP2,
/// `[member, score]` pairs in RESP3, as Redis 7.0's range replies.
///
/// A flat list is written straight into wire form ([`BulkRun`]): one
/// buffer for the whole reply, scores formatted on the stack (a RESP2
/// double is a bulk string). Only RESP3's nested pairs build a tree.
fn scored<'a>(
    pairs: impl IntoIterator<Item = (f64, &'a [u8])>,
    withscores: bool,
    resp3: bool,
) -> Reply {
    let pairs = pairs.into_iter();
    if withscores && resp3 {
        return Reply::Array(
            pairs
                .map(|(score, m)| {
                    Reply::Array(vec![
                        Reply::Bulk(Bytes::copy_from_slice(m)),
                        Reply::Double(score),
                    ])
                })
                .collect(),
        );
    }
    let width = if withscores { 2 } else { 1 };
    let n = pairs.size_hint().0;
    // Room for short members and scores; a longer reply grows the buffer.
    let mut run = BulkRun::with_capacity(n * width, n * width * 16);
    for (score, member) in pairs {
        run.push(member);
        if withscores {
            run.push(DoubleText::new(score).as_bytes());
        }
    }
    Reply::Bulks(run)
}

/// `[[member, score], ...]` in both protocols (ZMPOP, BZMPOP).
fn nested_pairs(popped: &[(Bytes, f64)]) -> Reply {
    Reply::Array(
        popped
            .iter()
            .map(|(m, s)| Reply::Array(vec![Reply::Bulk(m.clone()), Reply::Double(*s)]))
            .collect(),
    )
}

/// Stores `result` at `dst` replacing what was there, or deletes `dst` when
/// the result is empty, as the STORE commands do (`event` on a store, `del`
/// on a delete). Replies with the result's size.
fn store_result(ctx: &mut Ctx<'_>, dst: &Bytes, mut result: ZSet, event: &str) -> CmdResult {
    let len = result.len();
    if len == 0 {
        if ctx.db().remove(dst).is_some() {
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "del", dst);
        }
    } else {
        let limits = ctx.state.encodings;
        result.shrink_if_small(&limits);
        ctx.db().insert(owned(dst), Value::ZSet(result), None);
        ctx.dirty(1);
        ctx.notify(notify::ZSET, event, dst);
        ctx.signal_key(dst);
    }
    Ok(Reply::Integer(len as i64))
}

// ---------------------------------------------------------------------------
// ZADD and ZINCRBY.

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one `score member` pair does to a set, as Redis's `zsetAdd`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum AddOutcome {
    /// Nothing (NX on an existing member, XX on a missing one, GT/LT refused).
    Nop,
    Added(f64),
    /// The member keeps (`old == new`) or changes its score.
    Updated {
        old: f64,
        new: f64,
    },
    /// INCR reached NaN (`inf + -inf`).
    Nan,
}

fn add_outcome(current: Option<f64>, score: f64, f: AddFlags) -> AddOutcome {
    match current {
        Some(cur) => {
            if f.nx {
                return AddOutcome::Nop;
            }
            let new = if f.incr { cur + score } else { score };
            if new.is_nan() {
                return AddOutcome::Nan;
            }
            if (f.lt && new >= cur) || (f.gt && new <= cur) {
                return AddOutcome::Nop;
            }
            AddOutcome::Updated { old: cur, new }
        }
        None if f.xx => AddOutcome::Nop,
        None => AddOutcome::Added(score),
    }
}

fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut f = AddFlags::default();
    let mut idx = 2;
    while idx < args.len() {
        let a = &args[idx];
        if args::is(a, "nx") {
            f.nx = true;
        } else if args::is(a, "xx") {
            f.xx = true;
        } else if args::is(a, "gt") {
            f.gt = true;
        } else if args::is(a, "lt") {
            f.lt = true;
        } else if args::is(a, "ch") {
            f.ch = true;
        } else if args::is(a, "incr") {
            f.incr = true;
        } else {
            break;
        }
        idx += 1;
    }
    zadd_generic(ctx, args, idx, f)
}

fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let f = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    zadd_generic(ctx, args, 2, f)
}

fn zadd_generic(ctx: &mut Ctx<'_>, args: &[Bytes], first: usize, f: AddFlags) -> CmdResult {
    let elements = args.len() - first;
    if elements == 0 || !elements.is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    if f.nx && f.xx {
        return Err(CommandError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(CommandError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if f.incr && elements > 2 {
        return Err(CommandError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    // A lone pair (nearly every ZADD) needs no vector.
    if let [score, member] = &args[first..] {
        return add_pairs(ctx, &args[1], &[(parse::score(score)?, member)], f);
    }
    let pairs: Vec<(f64, &Bytes)> = args[first..]
        .chunks_exact(2)
        .map(|p| Ok((parse::score(&p[0])?, &p[1])))
        .collect::<Result<_, CommandError>>()?;
    add_pairs(ctx, &args[1], &pairs, f)
}

/// GEOADD's ZADD: `score member` pairs already checked, with NX, XX and CH.
pub(super) fn zadd_checked(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    pairs: &[(f64, &Bytes)],
    nx: bool,
    xx: bool,
    ch: bool,
) -> CmdResult {
    if pairs.is_empty() {
        return Err(CommandError::Syntax);
    }
    let f = AddFlags {
        nx,
        xx,
        ch,
        ..AddFlags::default()
    };
    add_pairs(ctx, key, pairs, f)
}

/// Applies checked `score member` pairs to the sorted set at `key`.
fn add_pairs(ctx: &mut Ctx<'_>, key: &Bytes, pairs: &[(f64, &Bytes)], f: AddFlags) -> CmdResult {
    let nothing = if f.incr {
        Reply::Null
    } else {
        Reply::Integer(0)
    };
    // A write that changes nothing must not copy what a snapshot shares.
    // A lone pair (nearly every ZADD) has its outcome found here once, and
    // the write below acts on it without looking the member up again.
    let known = match existing_zset(ctx, key)? {
        None if f.xx => return Ok(nothing),
        None => None,
        Some(z) => match pairs {
            [(score, member)] => {
                let outcome = add_outcome(z.score(member), *score, f);
                if is_noop(outcome, f) {
                    return Ok(nothing);
                }
                Some(outcome)
            }
            _ if pairs.iter().all(|(s, m)| unchanged(z, m, *s, f)) => return Ok(nothing),
            _ => None,
        },
    };
    let now = ctx.now_ms;
    let limits = ctx.state.encodings;
    let zset = match existing_zset_mut(ctx, key)? {
        Some(z) => z,
        None => {
            // Redis 7.0 picks a new set's encoding from the first member alone.
            let first_len = pairs[0].1.len();
            ctx.db()
                .get_or_insert_with(&owned(key), now, || {
                    Value::ZSet(ZSet::with_hint(0, first_len, &limits))
                })
                .value
                .as_zset_mut()?
        }
    };
    let (mut added, mut updated, mut processed) = (0u64, 0u64, 0u64);
    let mut last_score = 0.0;
    let mut nan = false;
    for (score, member) in pairs {
        let outcome = match known {
            Some(outcome) => outcome,
            None => add_outcome(zset.score(member), *score, f),
        };
        match outcome {
            AddOutcome::Nop => {}
            AddOutcome::Nan => {
                nan = true;
                break;
            }
            AddOutcome::Added(s) => {
                zset.insert_new(member, s, &limits);
                added += 1;
                processed += 1;
                last_score = s;
            }
            AddOutcome::Updated { old, new } => {
                if old != new {
                    zset.update(member, old, new);
                    updated += 1;
                }
                processed += 1;
                last_score = new;
            }
        }
    }
    // Nothing here empties a set: a new key always gets its first member
    // (only an existing member's INCR can reach NaN).
    ctx.dirty(added + updated);
    if added + updated > 0 {
        ctx.notify(notify::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    if added > 0 {
        ctx.signal_key(key);
    }
    if nan {
        return Err(CommandError::err("resulting score is not a number (NaN)"));
    }
    Ok(if f.incr {
        if processed > 0 {
            Reply::Double(last_score)
        } else {
            Reply::Null
        }
    } else if f.ch {
        Reply::Integer((added + updated) as i64)
    } else {
        Reply::Integer(added as i64)
    })
}

/// Whether a pair leaves `z` as it is (so the write may be skipped).
fn unchanged(z: &ZSet, member: &[u8], score: f64, f: AddFlags) -> bool {
    is_noop(add_outcome(z.score(member), score, f), f)
}

fn is_noop(outcome: AddOutcome, f: AddFlags) -> bool {
    match outcome {
        AddOutcome::Nop => true,
        AddOutcome::Updated { old, new } => old == new && !f.incr,
        AddOutcome::Added(_) | AddOutcome::Nan => false,
    }
}

// ---------------------------------------------------------------------------
// Single-key reads and removals.

fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let gone = &args[2..];
    let any = existing_zset(ctx, key)?.is_some_and(|z| gone.iter().any(|m| z.score(m).is_some()));
    if !any {
        return Ok(Reply::Integer(0));
    }
    let Some(z) = existing_zset_mut(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let removed = gone.iter().filter(|m| z.remove(m).is_some()).count();
    ctx.db().remove_if_empty(key);
    ctx.dirty(removed as u64);
    ctx.notify(notify::ZSET, "zrem", key);
    ctx.del_if_gone(key);
    Ok(Reply::Integer(removed as i64))
}

fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let len = read_zset(ctx, &args[1])?.map_or(0, ZSet::len);
    Ok(Reply::Integer(len as i64))
}

fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let score = read_zset(ctx, &args[1])?.and_then(|z| z.score(&args[2]));
    Ok(score.map_or(Reply::Null, Reply::Double))
}

fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let z = read_zset(ctx, &args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| {
                z.and_then(|z| z.score(m))
                    .map_or(Reply::Null, Reply::Double)
            })
            .collect(),
    ))
}

fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    rank(ctx, args, false)
}

fn zrevrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    rank(ctx, args, true)
}

fn rank(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> CmdResult {
    let Some(z) = read_zset(ctx, &args[1])? else {
        return Ok(Reply::Null);
    };
    Ok(match z.rank(&args[2]) {
        Some((r, _)) if rev => Reply::Integer((z.len() - 1 - r) as i64),
        Some((r, _)) => Reply::Integer(r as i64),
        None => Reply::Null,
    })
}

fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (min, max) = parse::score_range(&args[2], &args[3])?;
    let n = read_zset(ctx, &args[1])?.map_or(0, |z| {
        let (lo, hi) = z.score_ranks(min, max);
        hi - lo
    });
    Ok(Reply::Integer(n as i64))
}

fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (min, max) = parse::lex_range(&args[2], &args[3])?;
    let n = read_zset(ctx, &args[1])?.map_or(0, |z| {
        let (lo, hi) = z.lex_ranks(&min, &max);
        hi - lo
    });
    Ok(Reply::Integer(n as i64))
}

// ---------------------------------------------------------------------------
// Pops.

/// Members popped, with their scores, in pop order.
type Popped = Vec<(Bytes, f64)>;

/// Pops up to `count` members from the low (or `max`) end of the sorted set at
/// `key` in database `db`, with the `zpopmin`/`zpopmax` (and `del`)
/// events. `Ok(None)` when there is no such key.
fn pop_from(
    state: &mut crate::state::State,
    db: usize,
    key: &[u8],
    count: usize,
    max: bool,
    now_ms: i64,
) -> Result<Option<Popped>, CommandError> {
    let mut popped = Vec::new();
    let found = pop_each(state, db, key, count, max, now_ms, |m, s| {
        popped.push((Bytes::copy_from_slice(m), s))
    })?;
    Ok(found.map(|_| popped))
}

/// [`pop_from`] handing each popped pair to `emit` as it goes, before its
/// bytes are freed (ZPOPMIN writes them straight into its reply). Returns
/// how many were popped, `None` when there is no such key.
fn pop_each(
    state: &mut crate::state::State,
    db: usize,
    key: &[u8],
    count: usize,
    max: bool,
    now_ms: i64,
    emit: impl FnMut(&[u8], f64),
) -> Result<Option<usize>, CommandError> {
    let d = state.keyspace.db_mut(db);
    let Some(e) = d.get_mut(key, now_ms) else {
        return Ok(None);
    };
    let n = e.value.as_zset_mut()?.pop_each(count, max, emit);
    let removed = d.remove_if_empty(key);
    state.dirty += n as u64;
    if n > 0 {
        let event = if max { "zpopmax" } else { "zpopmin" };
        state.key_changed(db, notify::ZSET, event, key, now_ms);
        if removed {
            state.key_changed(db, notify::GENERIC, "del", key, now_ms);
        }
    }
    Ok(Some(n))
}

fn zpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zpop(ctx, args, false)
}

fn zpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    zpop(ctx, args, true)
}

fn zpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(CommandError::Syntax);
    }
    let count = match args.get(2) {
        None => None,
        Some(c) => Some(
            args::parse_i64_strict(c)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| CommandError::err("value is out of range, must be positive"))?,
        ),
    };
    let now = ctx.now_ms;
    let db = ctx.client.db;
    let n = count.unwrap_or(1);
    if !resp3(ctx) {
        // RESP2: a flat list of bulks (scores too), written as it pops; its
        // buffer is made by the first pop (a missing key allocates nothing).
        let mut run = None;
        let popped = pop_each(ctx.state, db, &args[1], n, max, now, |m, s| {
            let run = run.get_or_insert_with(|| {
                BulkRun::with_capacity(2 * n.min(64), (m.len() + 24) * n.min(64))
            });
            run.push(m);
            run.push(DoubleText::new(s).as_bytes());
        })?;
        return Ok(match (popped, run) {
            (Some(_), Some(run)) => Reply::Bulks(run),
            _ => Reply::Array(Vec::new()),
        });
    }
    let Some(popped) = pop_from(ctx.state, db, &args[1], n, max, now)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    // Without a count the pair comes flat even in RESP3. The popped members
    // are already copies of their own: they go into the reply as they are.
    let nested = count.is_some();
    let mut out = Vec::with_capacity(popped.len() * if nested { 1 } else { 2 });
    for (member, score) in popped {
        if nested {
            out.push(Reply::Array(vec![
                Reply::Bulk(member),
                Reply::Double(score),
            ]));
        } else {
            out.push(Reply::Bulk(member));
            out.push(Reply::Double(score));
        }
    }
    Ok(Reply::Array(out))
}

/// ZMPOP / BZMPOP's `numkeys key... MIN|MAX [COUNT n]` from `numkeys_idx`.
fn parse_mpop(
    args: &[Bytes],
    numkeys_idx: usize,
) -> Result<(Vec<Bytes>, bool, usize), CommandError> {
    args::mpop_args(args, numkeys_idx, |side| {
        if args::is(side, "min") {
            Ok(false)
        } else if args::is(side, "max") {
            Ok(true)
        } else {
            Err(CommandError::Syntax)
        }
    })
}

/// Pops from the first non-empty sorted set among `keys`; a key of another
/// type before it is WRONGTYPE.
fn mpop_first(
    state: &mut crate::state::State,
    db: usize,
    keys: &[Bytes],
    max: bool,
    count: usize,
    now_ms: i64,
) -> Result<Option<(Bytes, Popped)>, CommandError> {
    for key in keys {
        if let Some(popped) = pop_from(state, db, key, count, max, now_ms)? {
            return Ok(Some((key.clone(), popped)));
        }
    }
    Ok(None)
}

fn mpop_reply(key: Bytes, popped: &[(Bytes, f64)]) -> Reply {
    Reply::Array(vec![Reply::Bulk(key), nested_pairs(popped)])
}

fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, max, count) = parse_mpop(args, 1)?;
    let now = ctx.now_ms;
    let db = ctx.client.db;
    Ok(match mpop_first(ctx.state, db, &keys, max, count, now)? {
        Some((key, popped)) => mpop_reply(key, &popped),
        None => Reply::NullArray,
    })
}

// ---------------------------------------------------------------------------
// ZRANDMEMBER and ZSCAN.

fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() == 2 {
        let Some(z) = read_zset(ctx, &args[1])?.cloned() else {
            return Ok(Reply::Null);
        };
        let i = ctx.state.rng.below(z.len());
        return Ok(Reply::bulk_opt(
            z.nth(i).map(|(_, m)| Bytes::copy_from_slice(m)),
        ));
    }
    let count = args::int(&args[2])?;
    if count == i64::MIN {
        return Err(CommandError::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let withscores = match args.len() {
        3 => false,
        4 if args::is(&args[3], "withscores") => true,
        _ => return Err(CommandError::Syntax),
    };
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CommandError::err("value is out of range"));
    }
    let Some(z) = read_zset(ctx, &args[1])?.cloned() else {
        return Ok(Reply::Array(Vec::new()));
    };
    let picks = random_ranks(&z, count, &mut ctx.state.rng);
    let pairs: Vec<(f64, &[u8])> = picks.iter().filter_map(|&i| z.nth(i)).collect();
    Ok(scored(pairs, withscores, resp3(ctx)))
}

/// ZRANDMEMBER's ranks for a count, by the cases of Redis's
/// `zrandmemberWithCountCommand`: a negative count picks independently; a
/// count of at least the size takes the whole set, highest rank first (as
/// Redis 7.0 replies); otherwise
/// distinct picks, by a partial shuffle when the count is a good part of the
/// set and by drawing ranks until enough distinct ones came when it is small.
fn random_ranks(z: &ZSet, count: i64, rng: &mut crate::rng::Rng) -> Vec<usize> {
    let size = z.len();
    if count < 0 {
        return (0..count.unsigned_abs()).map(|_| rng.below(size)).collect();
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if count >= size {
        return (0..size).rev().collect();
    }
    if count.saturating_mul(3) > size {
        let mut all: Vec<usize> = (0..size).collect();
        for i in 0..count {
            let j = i + rng.below(size - i);
            all.swap(i, j);
        }
        all.truncate(count);
        return all;
    }
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let i = rng.below(size);
        if seen.insert(i) {
            out.push(i);
        }
    }
    out
}

/// A listpack comes whole with cursor 0, a skiplist is walked through its
/// member map with a stateless cursor (see [`ZSet::scan`]).
fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_scan_cursor(&args[2])?;
    let Some(z) = read_zset(ctx, &args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = parse_scan_options(&args[3..])?;
    let mut items = Vec::new();
    let next = z.scan(cursor, opts.count, |m, s| {
        if opts.matches(m) {
            items.push(Reply::Bulk(Bytes::copy_from_slice(m)));
            items.push(Reply::Bulk(Bytes::from(format_double(s))));
        }
    });
    Ok(scan_reply(next, items))
}
