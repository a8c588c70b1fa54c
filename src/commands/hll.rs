//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG and PFSELFTEST, over
//! string values in Redis's HLL layout ([`crate::keyspace::hll`]).
//!
//! A HyperLogLog is an ordinary string, so a change rewrites the string's
//! bytes: in place when nothing else shares them (the common case for a
//! dense value under PFADD), copied once otherwise.

use bytes::{Bytes, BytesMut};

use super::args;
use super::flags::*;
use super::strings::since;
use super::{spec, CommandSpec, Ctx, KEY1};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::hll::{self, Corrupt, Encoding};
use crate::keyspace::{Key, Value};
use crate::pubsub::notify;
use crate::reply::Reply;

/// PFCOUNT/PFMERGE: every argument is a key.
const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);
/// PFDEBUG: the key follows the subcommand.
const DEBUG_KEY: (i32, i32, i32) = (2, 2, 1);

pub const COMMANDS: &[CommandSpec] = &[
    since(
        spec(
            "pfadd",
            -2,
            WRITE | DENYOOM | FAST,
            KEY1,
            "hyperloglog",
            "Adds the specified elements to the specified HyperLogLog.",
            pfadd,
        ),
        "2.8.9",
    ),
    since(
        spec(
            "pfcount",
            -2,
            READONLY,
            ALL_KEYS,
            "hyperloglog",
            "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).",
            pfcount,
        ),
        "2.8.9",
    ),
    since(
        spec(
            "pfmerge",
            -2,
            WRITE | DENYOOM,
            ALL_KEYS,
            "hyperloglog",
            "Merge N different HyperLogLogs into a single one.",
            pfmerge,
        ),
        "2.8.9",
    ),
    since(
        spec(
            "pfdebug",
            3,
            WRITE | DENYOOM | ADMIN,
            DEBUG_KEY,
            "hyperloglog",
            "Internal commands for debugging HyperLogLog values",
            pfdebug,
        ),
        "2.8.9",
    ),
    since(
        spec(
            "pfselftest",
            1,
            ADMIN,
            super::NO_KEYS,
            "hyperloglog",
            "An internal command for testing HyperLogLog values",
            pfselftest,
        ),
        "2.8.9",
    ),
];

fn corrupt(_: Corrupt) -> CommandError {
    CommandError::HllCorrupt
}

/// As [`read_hll`] for a read command's sources (PFCOUNT, PFMERGE's
/// sources): a keyspace hit or miss is counted, as Redis's `lookupKeyRead`.
fn read_hll_counted(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, CommandError> {
    let found = read_hll(ctx, key);
    if matches!(found, Ok(None)) {
        ctx.state.stats.keyspace_misses += 1;
    } else {
        ctx.state.stats.keyspace_hits += 1;
    }
    found
}

/// The HLL bytes under `key` (None when absent), refusing other types and
/// strings that are not HyperLogLogs, as Redis's `isHLLObjectOrReply`.
fn read_hll(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, CommandError> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Str(s)) if hll::is_valid(s) => Ok(Some(s.clone())),
        Some(Value::Str(_)) => Err(CommandError::NotHll),
        Some(_) => Err(CommandError::WrongType),
    }
}

/// Runs `f` on the bytes of the HLL under `key` and stores them back,
/// keeping the key's TTL. The bytes are the value's own allocation, changed
/// in place, when nothing else shares them (a dense value under PFADD).
fn update_hll<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&mut BytesMut) -> Result<R, CommandError>,
) -> Result<R, CommandError> {
    let now = ctx.now_ms;
    let entry = ctx.db().get_mut(key, now).expect("the caller read the key");
    let Value::Str(value) = &mut entry.value else {
        unreachable!("the caller checked the type")
    };
    let mut buf = match std::mem::take(value).try_into_mut() {
        Ok(unique) => unique,
        Err(shared) => BytesMut::from(&shared[..]),
    };
    let result = f(&mut buf);
    *value = buf.freeze();
    result
}

/// Runs a change that may resize the value (sparse opcodes, promotion) on
/// a copy as a `Vec`; sparse values are small, dense ones rarely come here.
fn resizing<R>(b: &mut BytesMut, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut v = b.to_vec();
    let result = f(&mut v);
    *b = BytesMut::from(&v[..]);
    result
}

fn sparse_max(ctx: &Ctx<'_>) -> usize {
    ctx.shared.config().hll_sparse_max_bytes
}

fn pfadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let max = sparse_max(ctx);
    let mut updated = 0u64;
    if read_hll(ctx, key)?.is_none() {
        // Creating the key counts as an update, even with no elements (and
        // marks the new value's cached count stale, as Redis does).
        let now = ctx.now_ms;
        let mut empty = hll::new_sparse();
        hll::invalidate(&mut empty);
        ctx.db()
            .insert_live(key.clone(), Value::Str(empty.into()), None, now);
        updated += 1;
    }
    if args.len() > 2 {
        updated += update_hll(ctx, key, |b| {
            let mut n = 0;
            if hll::encoding(b) == Encoding::Dense {
                for element in &args[2..] {
                    n += hll::add_dense(b, element) as u64;
                }
            } else {
                resizing(b, |v| {
                    for element in &args[2..] {
                        n += hll::add(v, element, max).map_err(corrupt)? as u64;
                    }
                    Ok::<_, CommandError>(())
                })?;
            }
            if n > 0 {
                hll::invalidate(b);
            }
            Ok(n)
        })?;
    }
    if updated > 0 {
        ctx.dirty(updated);
        ctx.notify(notify::STRING, "pfadd", key);
    }
    Ok(Reply::Integer((updated > 0) as i64))
}

fn pfcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        // Several keys: the union's count, nothing written.
        let mut max = vec![0u8; hll::REGISTERS];
        for key in &args[1..] {
            if let Some(b) = read_hll_counted(ctx, key)? {
                hll::merge_into(&mut max, &b).map_err(corrupt)?;
            }
        }
        return Ok(Reply::Integer(
            hll::estimate(&hll::histogram_of(&max)) as i64
        ));
    }
    let key = &args[1];
    let Some(b) = read_hll_counted(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    if let Some(card) = hll::cached(&b) {
        return Ok(Reply::Integer(card as i64));
    }
    let card = hll::estimate(&hll::histogram(&b).map_err(corrupt)?);
    drop(b);
    // The count is cached in the value: a write, as in Redis.
    update_hll(ctx, key, |b| {
        hll::set_cache(b, card);
        Ok(())
    })?;
    ctx.dirty(1);
    Ok(Reply::Integer(card as i64))
}

fn pfmerge(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let dest = &args[1];
    let mut max = vec![0u8; hll::REGISTERS];
    let mut dense = false;
    // The destination is also a source.
    for key in &args[1..] {
        if let Some(b) = read_hll_counted(ctx, key)? {
            dense |= hll::encoding(&b) == Encoding::Dense;
            hll::merge_into(&mut max, &b).map_err(corrupt)?;
        }
    }
    let now = ctx.now_ms;
    if !ctx.db().contains(dest, now) {
        ctx.db().insert_live(
            Key::clone(dest),
            Value::Str(hll::new_sparse().into()),
            None,
            now,
        );
    }
    let sparse_max = sparse_max(ctx);
    update_hll(ctx, dest, |b| {
        resizing(b, |b| {
            if dense {
                hll::to_dense(b).map_err(corrupt)?;
            }
            for (i, &v) in max.iter().enumerate() {
                if v != 0 {
                    hll::set_register(b, i, v, sparse_max).map_err(corrupt)?;
                }
            }
            hll::invalidate(b);
            Ok(())
        })
    })?;
    ctx.dirty(1);
    ctx.notify(notify::STRING, "pfadd", dest);
    Ok(Reply::ok())
}

fn pfdebug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (sub, key) = (&args[1], &args[2]);
    let Some(b) = read_hll(ctx, key)? else {
        return Err(CommandError::err("The specified key does not exist"));
    };
    if args::is(sub, "getreg") || args::is(sub, "todense") {
        let converted = hll::encoding(&b) == Encoding::Sparse;
        drop(b);
        if converted {
            update_hll(ctx, key, |b| resizing(b, hll::to_dense).map_err(corrupt))?;
            ctx.dirty(1);
        }
        if args::is(sub, "todense") {
            return Ok(Reply::Integer(converted as i64));
        }
        let now = ctx.now_ms;
        let regs = match ctx.db().get(key, now).map(|e| &e.value) {
            Some(Value::Str(s)) => hll::registers(s).map_err(corrupt)?,
            _ => unreachable!("converted above"),
        };
        return Ok(Reply::Array(
            regs.into_iter().map(|r| Reply::Integer(r as i64)).collect(),
        ));
    }
    if args::is(sub, "decode") {
        if hll::encoding(&b) != Encoding::Sparse {
            return Err(CommandError::err("HLL encoding is not sparse"));
        }
        return Ok(Reply::Bulk(hll::decode_sparse(&b).into()));
    }
    if args::is(sub, "encoding") {
        return Ok(Reply::simple(match hll::encoding(&b) {
            Encoding::Dense => "dense",
            Encoding::Sparse => "sparse",
        }));
    }
    Err(CommandError::err(format!(
        "Unknown PFDEBUG subcommand '{}'",
        String::from_utf8_lossy(sub)
    )))
}

fn pfselftest(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    hll::self_test().map_err(CommandError::Other)?;
    Ok(Reply::ok())
}

#[cfg(test)]
mod tests {
    use super::super::strings::harness::*;
    use crate::reply::Reply;

    fn value_ptr(h: &Harness, key: &[u8]) -> *const u8 {
        let db = h.shared.lock().keyspace.db(0).clone();
        match db.peek(key, h.now_ms).unwrap().value {
            crate::keyspace::Value::Str(s) => s.as_ptr(),
            _ => panic!("a string"),
        }
    }

    #[test]
    fn dense_updates_in_place_and_snapshots_keep_theirs() {
        let mut h = Harness::new();
        h.run(&["pfadd", "h", "a"]);
        assert_eq!(h.run(&["pfdebug", "todense", "h"]), Reply::Integer(1));
        let before = value_ptr(&h, b"h");
        for i in 0..50 {
            h.run(&["pfadd", "h", &format!("e{i}")]);
        }
        assert_eq!(value_ptr(&h, b"h"), before, "no copy of an unshared value");
        let snap = h.shared.lock().keyspace.clone();
        let count = h.run(&["pfcount", "h"]);
        h.run(&["pfadd", "h", "more", "and", "more"]);
        assert_ne!(h.run(&["pfcount", "h"]), count);
        let crate::keyspace::Value::Str(old) = snap.db(0).peek(b"h", h.now_ms).unwrap().value
        else {
            panic!("a string")
        };
        let hist = crate::keyspace::hll::histogram(&old).unwrap();
        assert_eq!(
            Reply::Integer(crate::keyspace::hll::estimate(&hist) as i64),
            count
        );
    }
}
