//! Set commands: SADD and friends, the random pops and picks, the algebra
//! (SINTER/SUNION/SDIFF, their STORE forms, SINTERCARD) and SSCAN, with Redis
//! 7.0's replies, errors and change counting.
//!
//! A set is an `imbl::HashSet<Bytes>`; removing its last member deletes the key.
//! Multi-key commands look every key up before computing, so a key of another
//! type anywhere among them is WRONGTYPE, even after a missing key (Redis 7.0).

use bytes::Bytes;
use imbl::HashSet;

use super::args;
use super::flags::*;
use super::hashes::{lookup_read, owned, parse_scan_cursor, parse_scan_options, scan_reply, walk};
use super::sample;
use super::{spec, CommandSpec, Ctx, KEY1, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::scan::{ScanIter, ScanTarget};
use crate::keyspace::Value;
use crate::pubsub::notify;
use crate::reply::Reply;

type Set = HashSet<Bytes>;

/// Redis 7.0 keeps a set of integers as an intset (sorted, and returned whole
/// by SSCAN) up to this many members (`set-max-intset-entries`).
const INTSET_MAX_ENTRIES: usize = 512;

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

/// Whether Redis 7.0 would hold these members as an intset: few enough, and
/// every one a strict 64-bit decimal.
fn is_intset_sized<'a>(len: usize, mut members: impl Iterator<Item = &'a Bytes>) -> bool {
    len <= INTSET_MAX_ENTRIES && members.all(|m| args::parse_i64_strict(m).is_some())
}

/// Orders members as Redis replies with them where it can: an intset is kept
/// sorted, so small all-integer results come back in numeric order. Other sets
/// come back in hash order, which Redis does not define either.
fn redis_order(mut members: Vec<Bytes>) -> Vec<Bytes> {
    if is_intset_sized(members.len(), members.iter()) {
        members.sort_by_key(|m| args::parse_i64_strict(m).unwrap_or(0));
    }
    members
}

/// A RESP3 set reply (an array in RESP2).
fn set_reply(members: Vec<Bytes>) -> Reply {
    Reply::Set(redis_order(members).into_iter().map(Reply::Bulk).collect())
}

// ---------------------------------------------------------------------------
// Single-key commands.

fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let new_members = &args[2..];
    if existing_set(ctx, &args[1])?.is_some_and(|s| new_members.iter().all(|m| s.contains(m))) {
        return Ok(Reply::Integer(0));
    }
    let now = ctx.now_ms;
    let key = owned(&args[1]);
    let set = ctx
        .db()
        .get_or_insert_with(&key, now, || Value::Set(Set::new()))
        .value
        .as_set_mut()?;
    let mut added = 0;
    for m in &args[2..] {
        if !set.contains(m) {
            set.insert(owned(m));
            added += 1;
        }
    }
    ctx.dirty(added);
    if added > 0 {
        ctx.notify(notify::SET, "sadd", &key);
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
    let mut removed = 0;
    for m in &args[2..] {
        if set.remove(m).is_some() {
            removed += 1;
        }
    }
    ctx.db().remove_if_empty(key);
    ctx.dirty(removed);
    ctx.notify(notify::SET, "srem", key);
    notify::del_if_gone(ctx, key);
    Ok(Reply::Integer(removed as i64))
}

fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let members = read_set(ctx, &args[1])?
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    Ok(set_reply(members))
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
    let len = read_set(ctx, &args[1])?.map_or(0, |s| s.len());
    Ok(Reply::Integer(len as i64))
}

fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let now = ctx.now_ms;
    let db = ctx.db();
    // Redis: a missing source answers 0 before the destination's type is checked.
    let is_member = match db.get(src, now) {
        None => return Ok(Reply::Integer(0)),
        Some(e) => e.value.as_set()?.contains(member),
    };
    if let Some(e) = db.get(dst, now) {
        e.value.as_set()?;
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
    notify::del_if_gone(ctx, src);
    let db = ctx.db();
    let added = db
        .get_or_insert_with(&owned(dst), now, || Value::Set(Set::new()))
        .value
        .as_set_mut()?
        .insert(owned(member))
        .is_none();
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
    let Some(member) = sample::one(set.iter(), set.len(), &mut state.rng).cloned() else {
        return Ok(Reply::Null);
    };
    set.remove(&member);
    db.remove_if_empty(key);
    ctx.dirty(1);
    ctx.notify(notify::SET, "spop", key);
    notify::del_if_gone(ctx, key);
    Ok(Reply::Bulk(member))
}

/// Pops `count` random members in one pass over the set. When more than half
/// the set goes, the survivors are gathered into a new set instead of removing
/// each popped member, so the structural work is min(count, size - count).
fn spop_count(ctx: &mut Ctx<'_>, key: &[u8], count: usize) -> CmdResult {
    let now = ctx.now_ms;
    let index = ctx.client.db;
    let state = &mut *ctx.state;
    let db = state.keyspace.db_mut(index);
    let Some(entry) = db.get_mut(key, now) else {
        return Ok(Reply::Set(Vec::new()));
    };
    let set = entry.value.as_set_mut()?;
    if count == 0 {
        return Ok(Reply::Set(Vec::new()));
    }
    let len = set.len();
    let popped: Vec<Bytes> = if count >= len {
        // The whole set, in the order Redis would list it.
        redis_order(std::mem::take(set).into_iter().collect())
    } else if count <= len / 2 {
        let popped: Vec<Bytes> = sample::distinct(set.iter(), len, count, &mut state.rng)
            .into_iter()
            .cloned()
            .collect();
        for m in &popped {
            set.remove(m);
        }
        popped
    } else {
        let mut selection = sample::Selection::new(len, count);
        let mut popped = Vec::with_capacity(count);
        let mut survivors = Set::new();
        for m in set.iter() {
            if selection.pick(&mut state.rng) {
                popped.push(m.clone());
            } else {
                survivors.insert(m.clone());
            }
        }
        *set = survivors;
        sample::shuffle(&mut popped, &mut state.rng);
        popped
    };
    db.remove_if_empty(key);
    ctx.dirty(popped.len() as u64);
    ctx.notify(notify::SET, "spop", key);
    notify::del_if_gone(ctx, key);
    Ok(Reply::Set(popped.into_iter().map(Reply::Bulk).collect()))
}

fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => {
            let Some(set) = read_set(ctx, &args[1])?.cloned() else {
                return Ok(Reply::Null);
            };
            let member = sample::one(set.iter(), set.len(), &mut ctx.state.rng);
            Ok(Reply::bulk_opt(member.cloned()))
        }
        3 => {
            let count = sample::parse_count(&args[2])?;
            srandmember_count(ctx, &args[1], count)
        }
        _ => Err(CommandError::Syntax),
    }
}

fn srandmember_count(ctx: &mut Ctx<'_>, key: &[u8], count: i64) -> CmdResult {
    let Some(set) = read_set(ctx, key)?.cloned() else {
        return Ok(Reply::Array(Vec::new()));
    };
    let len = set.len();
    let rng = &mut ctx.state.rng;
    let picks: Vec<Bytes> = if count >= 0 {
        let k = usize::try_from(count).unwrap_or(usize::MAX);
        if k >= len {
            // The whole set, in the order Redis would list it.
            redis_order(set.iter().cloned().collect())
        } else {
            sample::distinct(set.iter(), len, k, rng)
                .into_iter()
                .cloned()
                .collect()
        }
    } else {
        let k = sample::check_repeats(count.unsigned_abs())?;
        sample::with_repeats(set.iter(), len, k, rng)
            .into_iter()
            .cloned()
            .collect()
    };
    Ok(Reply::bulks(picks))
}

// ---------------------------------------------------------------------------
// Set algebra.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Every source set, a missing key being an empty set. `counted` selects a read
/// lookup (keyspace hits/misses), as Redis does for the non-STORE forms.
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

/// Members of every set, walking the smallest and probing the others.
fn intersection(sets: &[Set]) -> impl Iterator<Item = &Bytes> {
    let mut by_size: Vec<&Set> = sets.iter().collect();
    by_size.sort_by_key(|s| s.len());
    let (smallest, rest) = match by_size.split_first() {
        Some((first, rest)) => (Some(*first), rest.to_vec()),
        None => (None, Vec::new()),
    };
    smallest
        .into_iter()
        .flat_map(|s| s.iter())
        .filter(move |m| rest.iter().all(|s| s.contains(*m)))
}

/// Members of any set, inserted into an O(1) clone of the largest.
fn union(sets: &[Set]) -> Set {
    let Some(largest) = (0..sets.len()).max_by_key(|&i| sets[i].len()) else {
        return Set::new();
    };
    let mut out = sets[largest].clone();
    for (i, s) in sets.iter().enumerate() {
        if i != largest {
            out.extend(s.iter().cloned());
        }
    }
    out
}

/// Members of the first set in none of the others. Like Redis, picks between
/// probing the others for each member of the first, and removing every member
/// of the others from a copy of the first, by their estimated cost.
fn difference(sets: &[Set]) -> Set {
    let Some((first, rest)) = sets.split_first() else {
        return Set::new();
    };
    let probe_cost = first.len().saturating_mul(rest.len());
    let remove_cost: usize = rest.iter().map(Set::len).sum();
    if probe_cost <= remove_cost {
        first
            .iter()
            .filter(|m| !rest.iter().any(|s| s.contains(*m)))
            .cloned()
            .collect()
    } else {
        let mut out = first.clone();
        for s in rest {
            for m in s {
                out.remove(m);
            }
        }
        out
    }
}

fn compute(op: Op, sets: &[Set]) -> Set {
    match op {
        // An intersection with an empty set is empty: Redis returns at once.
        Op::Inter if sets.iter().any(Set::is_empty) => Set::new(),
        Op::Inter => intersection(sets).cloned().collect(),
        Op::Union => union(sets),
        Op::Diff => difference(sets),
    }
}

fn algebra(ctx: &mut Ctx<'_>, keys: &[Bytes], op: Op) -> CmdResult {
    let sets = gather(ctx, keys, true)?;
    let members: Vec<Bytes> = match op {
        Op::Inter if sets.iter().any(Set::is_empty) => Vec::new(),
        Op::Inter => intersection(&sets).cloned().collect(),
        _ => compute(op, &sets).into_iter().collect(),
    };
    Ok(set_reply(members))
}

/// Stores the result at `args[1]`, replacing any value (and TTL) there; an empty
/// result deletes the destination. Counts one change if anything changed.
fn algebra_store(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op) -> CmdResult {
    let sets = gather(ctx, &args[2..], false)?;
    let result = compute(op, &sets);
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

fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_scan_cursor(&args[2])?;
    let key = &args[1];
    // An O(1) clone, so that a cursor can keep walking this version.
    let Some(set) = read_set(ctx, key)?.cloned() else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = parse_scan_options(&args[3..])?;
    let keep = |m: Bytes| opts.matches(&m).then_some(Reply::Bulk(m));
    let target = ScanTarget::Set {
        db: ctx.client.db,
        key: owned(key),
    };
    if is_intset_sized(set.len(), set.iter()) {
        // A walk parked before the set became an intset is finished by this reply.
        ctx.state.scans.take(cursor, &target);
        let all = redis_order(set.into_iter().collect());
        return Ok(scan_reply(0, all.into_iter().filter_map(keep).collect()));
    }
    let mut iter = match ctx.state.scans.take(cursor, &target) {
        Some(ScanIter::Set(it)) => it,
        _ => Box::new(set.into_iter()),
    };
    let (batch, finished) = walk(&mut iter, opts.count);
    let next = if finished {
        0
    } else {
        ctx.state.scans.park(target, ScanIter::Set(iter))
    };
    Ok(scan_reply(
        next,
        batch.into_iter().filter_map(keep).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> Set {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn algebra_results() {
        let a = set(&["a", "b", "c"]);
        let b = set(&["b", "c", "d"]);
        let c = set(&["c"]);
        let sets = [a.clone(), b.clone(), c.clone()];
        assert_eq!(compute(Op::Inter, &sets), set(&["c"]));
        assert_eq!(compute(Op::Union, &sets), set(&["a", "b", "c", "d"]));
        assert_eq!(compute(Op::Diff, &sets), set(&["a"]));
        assert_eq!(compute(Op::Inter, &[a.clone(), Set::new()]), Set::new());
        assert_eq!(compute(Op::Diff, std::slice::from_ref(&a)), a);
        // Both difference strategies agree.
        let big = set(&["a", "x", "y", "z", "w"]);
        assert_eq!(
            compute(Op::Diff, &[set(&["a", "b"]), big.clone()]),
            set(&["b"])
        );
        assert_eq!(
            compute(Op::Diff, &[big, set(&["a"])]),
            set(&["x", "y", "z", "w"])
        );
    }

    #[test]
    fn intset_order() {
        let ordered = redis_order(
            ["10", "-2", "3"]
                .iter()
                .map(|s| Bytes::from_static(s.as_bytes()))
                .collect(),
        );
        assert_eq!(ordered, vec!["-2", "3", "10"]);
        assert!(!is_intset_sized(1, set(&["01"]).iter()));
        assert!(is_intset_sized(1, set(&["-1"]).iter()));
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
