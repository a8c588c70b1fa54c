//! Set commands: SADD and friends, the random pops and picks, the algebra
//! (SINTER/SUNION/SDIFF, their STORE forms, SINTERCARD) and SSCAN, with Redis
//! 7.0's replies, errors and change counting.
//!
//! A set is a [`Set`] (intset or hashtable, converted by Redis 7.0's rules
//! under the configured `set-max-intset-entries`); removing its last member
//! deletes the key. Replies list members in the set's own order: an intset in
//! numeric order, as Redis does. Multi-key commands look every key up before
//! computing, so a key of another type anywhere among them is WRONGTYPE, even
//! after a missing key (Redis 7.0).
//!
//! Random picks go by index ([`Set::nth`], O(1) in an intset, O(depth) in a
//! table), following the case split of Redis's `spopWithCountCommand` and
//! `srandmemberWithCountCommand`, so a pick of k members costs about
//! O(k log n), never a walk of the set unless the reply is most of it.

use bytes::Bytes;

use super::args;
use super::flags::*;
use super::hashes::{lookup_read, owned, parse_scan_cursor, parse_scan_options, scan_reply};
use super::sample;
use super::{spec, CommandSpec, Ctx, KEY1, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::encodings::Encodings;
use crate::keyspace::set::{Member, Set};
use crate::keyspace::Value;
use crate::pubsub::notify;
use crate::reply::Reply;
use crate::rng::Rng;

/// SPOP with a count builds the survivors as a new set instead of removing
/// each popped member when fewer than 1/5 of the count survive (Redis's
/// `SPOP_MOVE_STRATEGY_MUL`); this decides the survivors' encoding too.
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

/// SRANDMEMBER with a positive count starts from the whole set and removes
/// random members when the set is under 3 times the count (Redis's
/// `SRANDMEMBER_SUB_STRATEGY_MUL`), and picks random members otherwise.
const SRANDMEMBER_SUB_STRATEGY_MUL: usize = 3;

/// All keys from the first argument on.
const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);

const fn since(version: &'static str, spec: CommandSpec) -> CommandSpec {
    CommandSpec {
        since: version,
        ..spec
    }
}

pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "sadd",
        -3,
        WRITE | DENYOOM | FAST,
        KEY1,
        "set",
        "Add one or more members to a set",
        sadd,
    ),
    spec(
        "srem",
        -3,
        WRITE | FAST,
        KEY1,
        "set",
        "Remove one or more members from a set",
        srem,
    ),
    spec(
        "smembers",
        2,
        READONLY,
        KEY1,
        "set",
        "Get all the members in a set",
        smembers,
    ),
    spec(
        "sismember",
        3,
        READONLY | FAST,
        KEY1,
        "set",
        "Determine if a given value is a member of a set",
        sismember,
    ),
    since(
        "6.2.0",
        spec(
            "smismember",
            -3,
            READONLY | FAST,
            KEY1,
            "set",
            "Returns the membership associated with the given elements for a set",
            smismember,
        ),
    ),
    spec(
        "scard",
        2,
        READONLY | FAST,
        KEY1,
        "set",
        "Get the number of members in a set",
        scard,
    ),
    spec(
        "spop",
        -2,
        WRITE | FAST,
        KEY1,
        "set",
        "Remove and return one or multiple random members from a set",
        spop,
    ),
    spec(
        "srandmember",
        -2,
        READONLY,
        KEY1,
        "set",
        "Get one or multiple random members from a set",
        srandmember,
    ),
    spec(
        "smove",
        4,
        WRITE | FAST,
        (1, 2, 1),
        "set",
        "Move a member from one set to another",
        smove,
    ),
    spec(
        "sinter",
        -2,
        READONLY,
        ALL_KEYS,
        "set",
        "Intersect multiple sets",
        sinter,
    ),
    since(
        "7.0.0",
        spec(
            "sintercard",
            -3,
            READONLY,
            NO_KEYS,
            "set",
            "Intersect multiple sets and return the cardinality of the result",
            sintercard,
        ),
    ),
    spec(
        "sunion",
        -2,
        READONLY,
        ALL_KEYS,
        "set",
        "Add multiple sets",
        sunion,
    ),
    spec(
        "sdiff",
        -2,
        READONLY,
        ALL_KEYS,
        "set",
        "Subtract multiple sets",
        sdiff,
    ),
    spec(
        "sinterstore",
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        "set",
        "Intersect multiple sets and store the resulting set in a key",
        sinterstore,
    ),
    spec(
        "sunionstore",
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        "set",
        "Add multiple sets and store the resulting set in a key",
        sunionstore,
    ),
    spec(
        "sdiffstore",
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        "set",
        "Subtract multiple sets and store the resulting set in a key",
        sdiffstore,
    ),
    since(
        "2.8.0",
        spec(
            "sscan",
            -3,
            READONLY,
            KEY1,
            "set",
            "Incrementally iterate Set elements",
            sscan,
        ),
    ),
];

// ---------------------------------------------------------------------------
// Lookups and replies.

fn read_set<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c Set>, CommandError> {
    lookup_read(ctx, key).map(Value::as_set).transpose()
}

/// The existing set at `key`, looked up by a write command (no keyspace
/// statistics) that first checks whether it has anything to do: a mutable
/// lookup copies the path to a set that a snapshot still shares, which a no-op
/// write should not pay for.
fn existing_set<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c Set>, CommandError> {
    let now = ctx.now_ms;
    ctx.db().get(key, now).map(|e| e.value.as_set()).transpose()
}

/// The existing set at `key` for writing (no keyspace statistics, as Redis's
/// `lookupKeyWrite`).
fn existing_set_mut<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut Set>, CommandError> {
    let now = ctx.now_ms;
    ctx.db()
        .get_mut(key, now)
        .map(|e| e.value.as_set_mut())
        .transpose()
}

/// Members as bulk replies, in the order given.
fn bulks<'a>(members: impl Iterator<Item = Member<'a>>) -> Vec<Reply> {
    members.map(|m| Reply::Bulk(m.to_bytes())).collect()
}

/// A RESP3 set reply (an array in RESP2) of the whole set, in its order.
fn set_reply(set: &Set) -> Reply {
    Reply::Set(bulks(set.iter()))
}

/// A uniformly chosen member (`set` must not be empty).
fn random_member(set: &Set, rng: &mut Rng) -> Bytes {
    set.nth(rng.below(set.len()))
        .expect("an index below the length")
        .to_bytes()
}

// ---------------------------------------------------------------------------
// Single-key commands.

fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let new_members = &args[2..];
    if existing_set(ctx, &args[1])?.is_some_and(|s| new_members.iter().all(|m| s.contains(m))) {
        return Ok(Reply::Integer(0));
    }
    let now = ctx.now_ms;
    let enc = ctx.state.encodings;
    let key = &args[1];
    let set = ctx
        .db()
        .get_or_insert_with(key, now, || Value::Set(Set::new()))
        .value
        .as_set_mut()?;
    let added = new_members.iter().filter(|m| set.insert(m, &enc)).count();
    ctx.dirty(added as u64);
    if added > 0 {
        ctx.notify(notify::SET, "sadd", key);
    }
    Ok(Reply::Integer(added as i64))
}

fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let gone = &args[2..];
    let any = existing_set(ctx, key)?.is_some_and(|s| gone.iter().any(|m| s.contains(m)));
    if !any {
        return Ok(Reply::Integer(0));
    }
    let Some(set) = existing_set_mut(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let removed = gone.iter().filter(|m| set.remove(m)).count();
    ctx.db().remove_if_empty(key);
    ctx.dirty(removed as u64);
    ctx.notify(notify::SET, "srem", key);
    ctx.del_if_gone(key);
    Ok(Reply::Integer(removed as i64))
}

fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(match read_set(ctx, &args[1])? {
        Some(set) => set_reply(set),
        None => Reply::Set(Vec::new()),
    })
}

fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let found = read_set(ctx, &args[1])?.is_some_and(|s| s.contains(&args[2]));
    Ok(Reply::Integer(found as i64))
}

fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let set = read_set(ctx, &args[1])?;
    let flags = args[2..]
        .iter()
        .map(|m| Reply::Integer(set.is_some_and(|s| s.contains(m)) as i64))
        .collect();
    Ok(Reply::Array(flags))
}

fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let len = read_set(ctx, &args[1])?.map_or(0, Set::len);
    Ok(Reply::Integer(len as i64))
}

fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let now = ctx.now_ms;
    let enc = ctx.state.encodings;
    let db = ctx.db();
    // Redis looks both keys up first (an expired destination is deleted
    // then), and a missing source answers 0 before the destination's type
    // is checked.
    let src_has = db
        .get(src, now)
        .map(|e| e.value.as_set().map(|s| s.contains(member)));
    let dst_is_set = db.get(dst, now).map(|e| e.value.as_set().map(drop));
    let is_member = match src_has {
        None => return Ok(Reply::Integer(0)),
        Some(found) => found?,
    };
    if let Some(is_set) = dst_is_set {
        is_set?;
    }
    // Moving onto itself changes nothing; the reply still tells membership.
    if src == dst || !is_member {
        return Ok(Reply::Integer(is_member as i64));
    }
    if let Some(e) = db.get_mut(src, now) {
        e.value.as_set_mut()?.remove(member);
    }
    db.remove_if_empty(src);
    ctx.notify(notify::SET, "srem", src);
    ctx.del_if_gone(src);
    let db = ctx.db();
    let added = db
        .get_or_insert_with(&owned(dst), now, || Value::Set(Set::new()))
        .value
        .as_set_mut()?
        .insert(member, &enc);
    ctx.dirty(1 + added as u64);
    if added {
        ctx.notify(notify::SET, "sadd", dst);
    }
    Ok(Reply::Integer(1))
}

// ---------------------------------------------------------------------------
// Random picks.

/// SPOP's count: any non-negative integer; anything else has one message.
fn pop_count(arg: &[u8]) -> Result<usize, CommandError> {
    args::parse_i64_strict(arg)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| CommandError::err("value is out of range, must be positive"))
}

fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => spop_one(ctx, &args[1]),
        3 => {
            let count = pop_count(&args[2])?;
            spop_count(ctx, &args[1], count)
        }
        _ => Err(CommandError::Syntax),
    }
}

fn spop_one(ctx: &mut Ctx<'_>, key: &[u8]) -> CmdResult {
    let now = ctx.now_ms;
    let index = ctx.client.db;
    let state = &mut *ctx.state;
    let db = state.keyspace.db_mut(index);
    let Some(entry) = db.get_mut(key, now) else {
        return Ok(Reply::Null);
    };
    let set = entry.value.as_set_mut()?;
    if set.is_empty() {
        return Ok(Reply::Null);
    }
    let member = set
        .remove_nth(state.rng.below(set.len()))
        .expect("an index below the length");
    db.remove_if_empty(key);
    ctx.dirty(1);
    ctx.notify(notify::SET, "spop", key);
    ctx.del_if_gone(key);
    Ok(Reply::Bulk(member))
}

/// Pops `count` random members, in Redis's three cases: the whole set; a few
/// members, each picked and removed; or most of the set, where the few
/// survivors are picked into a new set (built by Redis's conversion rules,
/// so a large hashtable may leave an intset behind) and the rest is the reply.
fn spop_count(ctx: &mut Ctx<'_>, key: &[u8], count: usize) -> CmdResult {
    let now = ctx.now_ms;
    let index = ctx.client.db;
    let enc = ctx.state.encodings;
    let state = &mut *ctx.state;
    let db = state.keyspace.db_mut(index);
    let Some(entry) = db.get_mut(key, now) else {
        return Ok(Reply::Set(Vec::new()));
    };
    let set = entry.value.as_set_mut()?;
    if count == 0 {
        return Ok(Reply::Set(Vec::new()));
    }
    let rng = &mut state.rng;
    let size = set.len();
    let popped: Vec<Reply> = if count >= size {
        // Redis replies with the union of the one set: a fresh set's order.
        let whole = std::mem::take(set).rebuilt(&enc);
        bulks(whole.iter())
    } else {
        let remaining = size - count;
        if remaining * SPOP_MOVE_STRATEGY_MUL > count {
            (0..count)
                .map(|_| {
                    let m = set
                        .remove_nth(rng.below(set.len()))
                        .expect("an index below the length");
                    Reply::Bulk(m)
                })
                .collect()
        } else {
            let mut survivors = Set::new();
            for _ in 0..remaining {
                let m = random_member(set, rng);
                survivors.insert(&m, &enc);
                set.remove(&m);
            }
            let popped = bulks(set.iter());
            *set = survivors;
            popped
        }
    };
    db.remove_if_empty(key);
    ctx.dirty(popped.len() as u64);
    ctx.notify(notify::SET, "spop", key);
    ctx.del_if_gone(key);
    Ok(Reply::Set(popped))
}

fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => {
            // An O(1) clone, so the rng can be borrowed beside it.
            let Some(set) = read_set(ctx, &args[1])?.cloned() else {
                return Ok(Reply::Null);
            };
            if set.is_empty() {
                return Ok(Reply::Null);
            }
            Ok(Reply::Bulk(random_member(&set, &mut ctx.state.rng)))
        }
        3 => {
            let count = sample::parse_count(&args[2])?;
            srandmember_count(ctx, &args[1], count)
        }
        _ => Err(CommandError::Syntax),
    }
}

/// Redis's cases: a negative count (or 1) picks with repeats; a count past
/// the size is the whole set; a count above a third of the size removes
/// random members from a copy of the whole; a smaller count picks distinct
/// random members.
fn srandmember_count(ctx: &mut Ctx<'_>, key: &[u8], count: i64) -> CmdResult {
    let Some(set) = read_set(ctx, key)?.cloned() else {
        return Ok(Reply::Array(Vec::new()));
    };
    let size = set.len();
    let rng = &mut ctx.state.rng;
    if count == 0 || size == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let picks: Vec<Reply> = if count < 0 || count == 1 {
        let k = sample::check_repeats(count.unsigned_abs())?;
        (0..k)
            .map(|_| Reply::Bulk(random_member(&set, rng)))
            .collect()
    } else {
        let k = usize::try_from(count).unwrap_or(usize::MAX);
        if k >= size {
            bulks(set.iter())
        } else if k.saturating_mul(SRANDMEMBER_SUB_STRATEGY_MUL) > size {
            let mut all = bulks(set.iter());
            while all.len() > k {
                all.swap_remove(rng.below(all.len()));
            }
            all
        } else {
            // Each draw is new with probability above 2/3.
            sample::distinct_indices(size, k, rng)
                .into_iter()
                .map(|i| Reply::Bulk(set.nth(i).expect("below the length").to_bytes()))
                .collect()
        }
    };
    Ok(Reply::Array(picks))
}

// ---------------------------------------------------------------------------
// Set algebra.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Every source set, a missing key being an empty set (Redis never stores an
/// empty one, so empty means missing). `counted` selects a read lookup
/// (keyspace hits/misses), as Redis does for the non-STORE forms.
fn gather(ctx: &mut Ctx<'_>, keys: &[Bytes], counted: bool) -> Result<Vec<Set>, CommandError> {
    let now = ctx.now_ms;
    let mut sets = Vec::with_capacity(keys.len());
    for key in keys {
        let value = if counted {
            lookup_read(ctx, key)
        } else {
            ctx.db().get(key, now).map(|e| &e.value)
        };
        // Clones are O(1) and dropped before anything is written.
        sets.push(
            value
                .map(Value::as_set)
                .transpose()?
                .cloned()
                .unwrap_or_default(),
        );
    }
    Ok(sets)
}

/// Members of every set, walking the smallest (in its own order, as Redis
/// does after sorting the sets by size) and probing the others.
fn intersection(sets: &[Set]) -> impl Iterator<Item = Member<'_>> {
    let mut by_size: Vec<&Set> = sets.iter().collect();
    by_size.sort_by_key(|s| s.len());
    let (smallest, rest) = match by_size.split_first() {
        Some((first, rest)) => (Some(*first), rest.to_vec()),
        None => (None, Vec::new()),
    };
    smallest
        .into_iter()
        .flat_map(|s| s.iter())
        .filter(move |m| rest.iter().all(|s| s.contains(m)))
}

/// Members of any set: an O(1) clone of the largest with the others added,
/// then given the encoding Redis's union (built from an empty intset) has.
fn union(sets: &[Set], enc: &Encodings) -> Set {
    let Some(largest) = (0..sets.len()).max_by_key(|&i| sets[i].len()) else {
        return Set::new();
    };
    let mut out = sets[largest].clone();
    for (i, s) in sets.iter().enumerate() {
        if i != largest {
            for m in s.iter() {
                out.insert(&m, enc);
            }
        }
    }
    out.rebuilt(enc)
}

/// Members of the first set in none of the others, by the algorithm Redis
/// 7.0 picks from the same estimate: probing the others for each member of
/// the first (the result built from an empty intset), or removing the
/// others' members from a copy of the first. The choice shows in the
/// result's encoding: a copy made a hashtable by the first set's size or
/// members stays one however many members are removed.
fn difference(sets: &[Set], enc: &Encodings) -> Set {
    let Some((first, rest)) = sets.split_first() else {
        return Set::new();
    };
    if first.is_empty() {
        return Set::new();
    }
    let present = sets.iter().filter(|s| !s.is_empty());
    let probe_work = first.len().saturating_mul(present.clone().count()) / 2;
    let remove_work: usize = present.map(Set::len).sum();
    if probe_work <= remove_work {
        let mut out = Set::new();
        for m in first.iter() {
            if !rest.iter().any(|s| s.contains(&m)) {
                out.insert(&m, enc);
            }
        }
        out
    } else {
        let mut out = first.clone().rebuilt(enc);
        for s in rest {
            for m in s.iter() {
                out.remove(&m);
            }
            if out.is_empty() {
                break;
            }
        }
        out
    }
}

fn compute(op: Op, sets: &[Set], enc: &Encodings) -> Set {
    match op {
        // An intersection with an empty set is empty: Redis returns at once.
        Op::Inter if sets.iter().any(Set::is_empty) => Set::new(),
        Op::Inter => {
            let mut out = Set::new();
            for m in intersection(sets) {
                out.insert(&m, enc);
            }
            out
        }
        Op::Union => union(sets, enc),
        Op::Diff => difference(sets, enc),
    }
}

fn algebra(ctx: &mut Ctx<'_>, keys: &[Bytes], op: Op) -> CmdResult {
    let sets = gather(ctx, keys, true)?;
    let enc = ctx.state.encodings;
    Ok(match op {
        Op::Inter if sets.iter().any(Set::is_empty) => Reply::Set(Vec::new()),
        Op::Inter => Reply::Set(bulks(intersection(&sets))),
        _ => set_reply(&compute(op, &sets, &enc)),
    })
}

/// Stores the result at `args[1]`, replacing any value (and TTL) there; an empty
/// result deletes the destination. Counts one change if anything changed.
fn algebra_store(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op) -> CmdResult {
    let sets = gather(ctx, &args[2..], false)?;
    let enc = ctx.state.encodings;
    let result = compute(op, &sets, &enc);
    drop(sets);
    let dst = &args[1];
    let len = result.len();
    if len == 0 {
        if ctx.db().remove(dst).is_some() {
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "del", dst);
        }
    } else {
        ctx.db().insert(owned(dst), Value::Set(result), None);
        ctx.dirty(1);
        let event = match op {
            Op::Inter => "sinterstore",
            Op::Union => "sunionstore",
            Op::Diff => "sdiffstore",
        };
        ctx.notify(notify::SET, event, dst);
    }
    Ok(Reply::Integer(len as i64))
}

fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    algebra(ctx, &args[1..], Op::Inter)
}

fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    algebra(ctx, &args[1..], Op::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    algebra(ctx, &args[1..], Op::Diff)
}

fn sinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    algebra_store(ctx, args, Op::Inter)
}

fn sunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    algebra_store(ctx, args, Op::Union)
}

fn sdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    algebra_store(ctx, args, Op::Diff)
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]; a limit of 0 means none.
fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let numkeys = args::parse_i64_strict(&args[1])
        .filter(|&n| n >= 1)
        .ok_or_else(|| CommandError::err("numkeys should be greater than 0"))?;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len() - 2 {
        return Err(CommandError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let keys = &args[2..2 + numkeys];
    let mut limit = 0usize;
    let mut opts = &args[2 + numkeys..];
    while let Some((opt, rest)) = opts.split_first() {
        match rest.first() {
            Some(value) if args::is(opt, "limit") => {
                limit = args::parse_i64_strict(value)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| CommandError::err("LIMIT can't be negative"))?;
                opts = &rest[1..];
            }
            _ => return Err(CommandError::Syntax),
        }
    }
    let sets = gather(ctx, keys, true)?;
    if sets.iter().any(Set::is_empty) {
        return Ok(Reply::Integer(0));
    }
    let limit = if limit == 0 { usize::MAX } else { limit };
    let card = intersection(&sets).take(limit).count();
    Ok(Reply::Integer(card as i64))
}

// ---------------------------------------------------------------------------
// SSCAN.

/// An intset comes whole with cursor 0, as in Redis; a hashtable is walked
/// with a stateless cursor in hash order (see [`Set::scan`]), so the server
/// keeps nothing between calls.
fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_scan_cursor(&args[2])?;
    let Some(set) = read_set(ctx, &args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = parse_scan_options(&args[3..])?;
    let mut items = Vec::new();
    let next = set.scan(cursor, opts.count, |m| {
        if opts.matches(&m) {
            items.push(Reply::Bulk(m.to_bytes()));
        }
    });
    Ok(scan_reply(next, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> Set {
        items.iter().collect()
    }

    fn enc(max: usize) -> Encodings {
        Encodings {
            set_max_intset_entries: max,
            ..Encodings::default()
        }
    }

    fn ints(range: std::ops::Range<i64>) -> Set {
        range.map(|i| i.to_string()).collect()
    }

    #[test]
    fn algebra_results() {
        let e = Encodings::default();
        let a = set(&["a", "b", "c"]);
        let b = set(&["b", "c", "d"]);
        let c = set(&["c"]);
        let sets = [a.clone(), b.clone(), c.clone()];
        assert_eq!(compute(Op::Inter, &sets, &e), set(&["c"]));
        assert_eq!(compute(Op::Union, &sets, &e), set(&["a", "b", "c", "d"]));
        assert_eq!(compute(Op::Diff, &sets, &e), set(&["a"]));
        assert_eq!(compute(Op::Inter, &[a.clone(), Set::new()], &e), Set::new());
        assert_eq!(compute(Op::Diff, std::slice::from_ref(&a), &e), a);
        // Both difference strategies agree.
        let big = set(&["a", "x", "y", "z", "w"]);
        assert_eq!(
            compute(Op::Diff, &[set(&["a", "b"]), big.clone()], &e),
            set(&["b"])
        );
        assert_eq!(
            compute(Op::Diff, &[big, set(&["a"])], &e),
            set(&["x", "y", "z", "w"])
        );
    }

    /// Encodings of computed results, as read from redis-server 7.0.15.
    #[test]
    fn results_take_redis_encodings() {
        let e = Encodings::default();
        let name = |s: Set| s.encoding_name();
        // A union of a shrunk hashtable is built afresh: an intset.
        let mut shrunk = set(&["1", "2", "a"]);
        shrunk.remove(b"a");
        assert_eq!(shrunk.encoding_name(), "hashtable");
        assert_eq!(
            name(compute(Op::Union, std::slice::from_ref(&shrunk), &e)),
            "intset"
        );
        assert_eq!(
            name(compute(Op::Inter, &[shrunk.clone(), shrunk.clone()], &e)),
            "intset"
        );
        // 513 integers are a hashtable, 512 an intset.
        assert_eq!(
            name(compute(Op::Union, &[ints(0..300), ints(200..513)], &e)),
            "hashtable"
        );
        assert_eq!(
            name(compute(Op::Union, &[ints(0..300), ints(200..512)], &e)),
            "intset"
        );
        // SDIFFSTORE x(600) y(1..100) w(101..200): removal from a copy of a
        // hashtable, which stays one at 400 members.
        let x = ints(1..601);
        let diff = compute(Op::Diff, &[x.clone(), ints(1..101), ints(101..201)], &e);
        assert_eq!((diff.len(), diff.encoding_name()), (400, "hashtable"));
        // x(600) y(1..500): probing; 100 integers are an intset.
        let diff = compute(Op::Diff, &[x, ints(1..501)], &e);
        assert_eq!((diff.len(), diff.encoding_name()), (100, "intset"));
        // {1..5, a} - {a} - {b}: the copy was a hashtable because of "a".
        let first = set(&["1", "2", "3", "4", "5", "a"]);
        let diff = compute(Op::Diff, &[first.clone(), set(&["a"]), set(&["b"])], &e);
        assert_eq!((diff.len(), diff.encoding_name()), (5, "hashtable"));
        // ... but with missing keys instead, probing wins: an intset.
        let diff = compute(Op::Diff, &[first, set(&["a"]), Set::new(), Set::new()], &e);
        assert_eq!((diff.len(), diff.encoding_name()), (5, "intset"));
        // The configured limit applies.
        assert_eq!(
            name(compute(Op::Union, &[ints(0..3)], &enc(2))),
            "hashtable"
        );
    }

    #[test]
    fn pop_count_errors() {
        assert_eq!(pop_count(b"3").unwrap(), 3);
        for bad in [&b"-1"[..], b"x", b"1.5"] {
            assert_eq!(
                pop_count(bad).unwrap_err().to_string(),
                "ERR value is out of range, must be positive"
            );
        }
    }
}

#[cfg(test)]
mod counting_tests {
    use super::super::hashes::harness::Harness;
    use crate::reply::Reply;
    use bytes::Bytes;

    #[test]
    fn set_change_counting_matches_redis() {
        let mut h = Harness::new();
        // Figures read from redis-server 7.0.15's rdb_changes_since_last_save.
        assert_eq!(h.dirty_of(&["SADD", "s", "a", "b", "c"]), 3);
        assert_eq!(h.dirty_of(&["SADD", "s", "a", "d"]), 1);
        assert_eq!(h.dirty_of(&["SREM", "s", "a", "zz"]), 1);
        assert_eq!(h.dirty_of(&["SREM", "s", "zz"]), 0);
        assert_eq!(h.dirty_of(&["SPOP", "s", "10"]), 3);
        assert_eq!(h.key_count(), 0);
        h.run(&["SADD", "s", "a", "b", "c", "d", "e", "f"]);
        assert_eq!(h.dirty_of(&["SPOP", "s", "2"]), 2);
        assert_eq!(h.dirty_of(&["SPOP", "s"]), 1);
        assert_eq!(h.dirty_of(&["SPOP", "s", "0"]), 0);
        assert_eq!(h.dirty_of(&["SPOP", "nokey", "3"]), 0);
        h.run(&["SADD", "src", "a", "c"]);
        assert_eq!(h.dirty_of(&["SMOVE", "src", "t", "a"]), 2);
        h.run(&["SADD", "t", "c"]);
        assert_eq!(h.dirty_of(&["SMOVE", "src", "t", "c"]), 1);
        assert_eq!(h.dirty_of(&["SMOVE", "t", "t", "c"]), 0);
        h.run(&["SADD", "x", "1", "2", "3"]);
        h.run(&["SADD", "y", "3", "4"]);
        assert_eq!(h.dirty_of(&["SINTERSTORE", "dst", "x", "y"]), 1);
        assert_eq!(h.dirty_of(&["SINTERSTORE", "dst", "x", "nokey"]), 1);
        assert_eq!(h.dirty_of(&["SINTERSTORE", "dst", "x", "nokey"]), 0);
        assert_eq!(h.dirty_of(&["SUNIONSTORE", "dst", "x", "y"]), 1);
        assert_eq!(h.dirty_of(&["SDIFFSTORE", "dst", "x", "x"]), 1);
    }

    #[test]
    fn set_reads_count_hits_and_misses() {
        let mut h = Harness::new();
        h.run(&["SADD", "s", "a"]);
        assert_eq!(h.stats_of(&["SISMEMBER", "s", "a"]), (1, 0));
        assert_eq!(h.stats_of(&["SINTER", "s", "nokey"]), (1, 1));
        assert_eq!(h.stats_of(&["SINTERSTORE", "d", "s", "nokey"]), (0, 0));
        assert_eq!(h.stats_of(&["SPOP", "s"]), (0, 0));
    }

    /// A write that changes nothing must not copy a set a snapshot shares.
    #[test]
    fn no_op_writes_leave_shared_sets_alone() {
        let mut h = Harness::new();
        h.run(&["SADD", "s", "a", "b"]);
        let snap = h.snapshot();
        h.run(&["SADD", "s", "a", "b"]);
        h.run(&["SREM", "s", "zz"]);
        let live = h.snapshot();
        let set = |db: &crate::keyspace::Db| match db.peek(b"s", 0) {
            Some(e) => e.value.as_set().unwrap().clone(),
            None => panic!("set lost"),
        };
        assert!(set(&snap).ptr_eq(&set(&live)));
        h.run(&["SADD", "s", "c"]);
        assert!(!set(&snap).ptr_eq(&set(&h.snapshot())));
        assert_eq!(set(&snap).len(), 2, "the snapshot keeps its version");
    }

    /// Small intsets live packed in their record between commands, whether
    /// just created, grown, or shrunk back under the bound.
    #[test]
    fn small_intsets_are_packed_between_commands() {
        let mut h = Harness::new();
        let packed = |h: &Harness, key: &[u8]| {
            h.snapshot()
                .peek_record(key, 0)
                .map(crate::keyspace::Record::is_packed)
        };
        h.run(&["SADD", "s", "1", "2", "3"]);
        assert_eq!(packed(&h, b"s"), Some(true));
        h.run(&["SADD", "s", "4"]);
        h.run(&["SREM", "s", "1"]);
        assert_eq!(packed(&h, b"s"), Some(true));
        h.run(&["SMOVE", "s", "m", "2"]);
        assert_eq!(packed(&h, b"m"), Some(true));
        h.run(&["SUNIONSTORE", "u", "s", "m"]);
        assert_eq!(packed(&h, b"u"), Some(true));
        h.run(&["SADD", "w", "a"]);
        assert_eq!(packed(&h, b"w"), Some(false), "a hashtable stays boxed");
        let many: Vec<String> = (0..400).map(|i| i.to_string()).collect();
        let mut cmd = vec!["SADD", "big"];
        cmd.extend(many.iter().map(String::as_str));
        h.run(&cmd);
        assert_eq!(packed(&h, b"big"), Some(false), "past the byte bound");
        let mut cmd = vec!["SREM", "big"];
        cmd.extend(many[10..].iter().map(String::as_str));
        h.run(&cmd);
        assert_eq!(packed(&h, b"big"), Some(true));
        assert_eq!(
            h.run(&["OBJECT", "ENCODING", "big"]),
            Reply::Bulk(Bytes::from("intset"))
        );
    }

    #[test]
    fn spop_large_count_keeps_survivors() {
        let mut h = Harness::new();
        let members: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        let mut cmd = vec!["SADD", "s"];
        cmd.extend(members.iter().map(String::as_str));
        h.run(&cmd);
        let Reply::Set(popped) = h.run(&["SPOP", "s", "70"]) else {
            panic!("SPOP with a count answers a set")
        };
        assert_eq!(popped.len(), 70);
        let Reply::Set(rest) = h.run(&["SMEMBERS", "s"]) else {
            panic!("SMEMBERS answers a set")
        };
        assert_eq!(rest.len(), 30);
        let mut all: Vec<Reply> = popped.into_iter().chain(rest).collect();
        all.sort_by_key(|r| format!("{r:?}"));
        all.dedup();
        assert_eq!(all.len(), 100, "popped and kept partition the set");
    }
}
