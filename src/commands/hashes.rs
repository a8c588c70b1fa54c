//! Hash commands: HSET and friends, HINCRBY/HINCRBYFLOAT, HSCAN and HRANDFIELD,
//! with Redis 7.0's replies, errors and change counting.
//!
//! A hash is a [`Hash`] (`keyspace/hash.rs`: a listpack while small, a hash
//! trie after); this module parses, calls its methods and shapes replies.
//! Removing the last field deletes the key. This module also owns the helpers
//! HSCAN shares with SSCAN (cursor and option parsing, the reply shape) and the
//! counted read lookup.

use bytes::Bytes;

use super::args;
use super::flags::*;
use super::sample;
use super::{spec, CommandSpec, Ctx, KEY1};
use crate::errors::{CmdResult, CommandError};
use crate::glob;
use crate::keyspace::encodings::Encodings;
use crate::keyspace::scan;
use crate::keyspace::{Hash, Value};
use crate::longdouble::{self, SumError};
use crate::pubsub::notify;
use crate::reply::{Protocol, Reply};
use crate::rng::Rng;

const fn since(version: &'static str, spec: CommandSpec) -> CommandSpec {
    CommandSpec {
        since: version,
        ..spec
    }
}

pub const COMMANDS: &[CommandSpec] = &[
    since(
        "2.0.0",
        spec(
            "hset",
            -4,
            WRITE | DENYOOM | FAST,
            KEY1,
            "hash",
            "Set the string value of a hash field",
            hset,
        ),
    ),
    since(
        "2.0.0",
        spec(
            "hmset",
            -4,
            WRITE | DENYOOM | FAST,
            KEY1,
            "hash",
            "Set multiple hash fields to multiple values",
            hmset,
        ),
    ),
    since(
        "2.0.0",
        spec(
            "hsetnx",
            4,
            WRITE | DENYOOM | FAST,
            KEY1,
            "hash",
            "Set the value of a hash field, only if the field does not exist",
            hsetnx,
        ),
    ),
    since(
        "2.0.0",
        spec(
            "hget",
            3,
            READONLY | FAST,
            KEY1,
            "hash",
            "Get the value of a hash field",
            hget,
        ),
    ),
    since(
        "2.0.0",
        spec(
            "hmget",
            -3,
            READONLY | FAST,
            KEY1,
            "hash",
            "Get the values of all the given hash fields",
            hmget,
        ),
    ),
    since(
        "2.0.0",
        spec(
            "hgetall",
            2,
            READONLY,
            KEY1,
            "hash",
            "Get all the fields and values in a hash",
            hgetall,
        ),
    ),
    since(
        "2.0.0",
        spec(
            "hkeys",
            2,
            READONLY,
            KEY1,
            "hash",
            "Get all the fields in a hash",
            hkeys,
        ),
    ),
    since(
        "2.0.0",
        spec(
            "hvals",
            2,
            READONLY,
            KEY1,
            "hash",
            "Get all the values in a hash",
            hvals,
        ),
    ),
    since(
        "2.0.0",
        spec(
            "hdel",
            -3,
            WRITE | FAST,
            KEY1,
            "hash",
            "Delete one or more hash fields",
            hdel,
        ),
    ),
    since(
        "2.0.0",
        spec(
            "hexists",
            3,
            READONLY | FAST,
            KEY1,
            "hash",
            "Determine if a hash field exists",
            hexists,
        ),
    ),
    since(
        "2.0.0",
        spec(
            "hlen",
            2,
            READONLY | FAST,
            KEY1,
            "hash",
            "Get the number of fields in a hash",
            hlen,
        ),
    ),
    since(
        "3.2.0",
        spec(
            "hstrlen",
            3,
            READONLY | FAST,
            KEY1,
            "hash",
            "Get the length of the value of a hash field",
            hstrlen,
        ),
    ),
    since(
        "2.0.0",
        spec(
            "hincrby",
            4,
            WRITE | DENYOOM | FAST,
            KEY1,
            "hash",
            "Increment the integer value of a hash field by the given number",
            hincrby,
        ),
    ),
    since(
        "2.6.0",
        spec(
            "hincrbyfloat",
            4,
            WRITE | DENYOOM | FAST,
            KEY1,
            "hash",
            "Increment the float value of a hash field by the given amount",
            hincrbyfloat,
        ),
    ),
    since(
        "2.8.0",
        spec(
            "hscan",
            -3,
            READONLY,
            KEY1,
            "hash",
            "Incrementally iterate hash fields and associated values",
            hscan,
        ),
    ),
    since(
        "6.2.0",
        spec(
            "hrandfield",
            -2,
            READONLY,
            KEY1,
            "hash",
            "Get one or multiple random fields from a hash",
            hrandfield,
        ),
    ),
];

// ---------------------------------------------------------------------------
// Helpers shared with the set family.

/// Looks a key up for reading and counts a keyspace hit or miss, as Redis's
/// `lookupKeyRead` does (whatever the type found).
pub(super) fn lookup_read<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Option<&'c Value> {
    let now = ctx.now_ms;
    let index = ctx.client.db;
    let state = &mut *ctx.state;
    let entry = state.keyspace.db_mut(index).get(key, now);
    if entry.is_some() {
        state.stats.keyspace_hits += 1;
    } else {
        state.stats.keyspace_misses += 1;
    }
    entry.map(|e| &e.value)
}

/// Copies a client argument before storing it: arguments are slices of the
/// connection's read buffer, which a stored slice would keep alive.
pub(super) fn owned(arg: &Bytes) -> Bytes {
    Bytes::copy_from_slice(arg)
}

/// HSCAN/SSCAN options after the cursor.
pub(super) struct ScanOptions {
    pub count: usize,
    /// `None` when there is no pattern or it is `*` (matches everything).
    pub pattern: Option<Bytes>,
}

impl ScanOptions {
    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern.as_ref().is_none_or(|p| glob::matches(p, item))
    }
}

/// Parses `[MATCH pattern] [COUNT count]` in any order, later ones winning, as
/// Redis's `scanGenericCommand` does.
pub(super) fn parse_scan_options(opts: &[Bytes]) -> Result<ScanOptions, CommandError> {
    let mut out = ScanOptions {
        count: 10,
        pattern: None,
    };
    let mut i = 0;
    while i < opts.len() {
        let has_value = i + 1 < opts.len();
        if args::is(&opts[i], "count") && has_value {
            let n = args::int(&opts[i + 1])?;
            if n < 1 {
                return Err(CommandError::Syntax);
            }
            out.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if args::is(&opts[i], "match") && has_value {
            let p = &opts[i + 1];
            out.pattern = (p.as_ref() != b"*").then(|| p.clone());
        } else {
            return Err(CommandError::Syntax);
        }
        i += 2;
    }
    Ok(out)
}

/// Parses a scan cursor as Redis's `strtoul` does: an empty string is 0, a
/// leading `-` wraps around, anything else not a decimal is `ERR invalid cursor`.
pub(super) fn parse_scan_cursor(arg: &[u8]) -> Result<u64, CommandError> {
    if arg.is_empty() {
        return Ok(0);
    }
    let (neg, digits) = match arg.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, arg),
    };
    if neg && digits.first() == Some(&b'+') {
        return Err(CommandError::InvalidCursor);
    }
    let n = scan::parse_cursor(digits).ok_or(CommandError::InvalidCursor)?;
    Ok(if neg { n.wrapping_neg() } else { n })
}

/// `[cursor, [items...]]`.
pub(super) fn scan_reply(cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(cursor.to_string())),
        Reply::Array(items),
    ])
}

// ---------------------------------------------------------------------------
// Lookups.

fn read_hash<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c Hash>, CommandError> {
    lookup_read(ctx, key).map(Value::as_hash).transpose()
}

/// The hash at `key` for writing, created empty when absent, with the
/// encoding limits its inserts obey. The caller must leave it non-empty or
/// call `remove_if_empty`.
fn hash_for_write<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &Bytes,
) -> Result<(&'c mut Hash, Encodings), CommandError> {
    let now = ctx.now_ms;
    let limits = ctx.state.encodings;
    let hash = ctx
        .db()
        .get_or_insert_with(key, now, || Value::Hash(Hash::new()))
        .value
        .as_hash_mut()?;
    Ok((hash, limits))
}

/// The existing hash at `key`, looked up by a write command (no keyspace
/// statistics, as Redis's `lookupKeyWrite`) that first checks whether it has
/// anything to do: a mutable lookup copies the path to a hash that a snapshot
/// still shares, which a no-op write should not pay for.
fn existing_hash<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c Hash>, CommandError> {
    let now = ctx.now_ms;
    ctx.db()
        .get(key, now)
        .map(|e| e.value.as_hash())
        .transpose()
}

/// The existing hash at `key` for writing (no keyspace statistics, as Redis's
/// `lookupKeyWrite`).
fn existing_hash_mut<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut Hash>, CommandError> {
    let now = ctx.now_ms;
    ctx.db()
        .get_mut(key, now)
        .map(|e| e.value.as_hash_mut())
        .transpose()
}

// ---------------------------------------------------------------------------
// Writes.

fn set_pairs(ctx: &mut Ctx<'_>, args: &[Bytes], name: &str) -> Result<i64, CommandError> {
    if args.len() % 2 == 1 {
        return Err(CommandError::wrong_arity(name));
    }
    let (hash, limits) = hash_for_write(ctx, &args[1])?;
    let mut created = 0;
    for pair in args[2..].chunks_exact(2) {
        if hash.insert(&pair[0], &pair[1], &limits) {
            created += 1;
        }
    }
    ctx.dirty(((args.len() - 2) / 2) as u64);
    ctx.notify(notify::HASH, "hset", &args[1]);
    Ok(created)
}

fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    set_pairs(ctx, args, "hset").map(Reply::Integer)
}

fn hmset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    set_pairs(ctx, args, "hmset").map(|_| Reply::ok())
}

fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // An existing field leaves the hash alone, long value or not (no
    // conversion either, as in Redis).
    if existing_hash(ctx, &args[1])?.is_some_and(|h| h.contains(&args[2])) {
        return Ok(Reply::Integer(0));
    }
    let (hash, limits) = hash_for_write(ctx, &args[1])?;
    hash.insert(&args[2], &args[3], &limits);
    ctx.dirty(1);
    ctx.notify(notify::HASH, "hset", &args[1]);
    Ok(Reply::Integer(1))
}

fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let fields = &args[2..];
    let any = existing_hash(ctx, key)?.is_some_and(|h| fields.iter().any(|f| h.contains(f)));
    if !any {
        return Ok(Reply::Integer(0));
    }
    let Some(hash) = existing_hash_mut(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let mut removed = 0;
    for field in fields {
        if hash.remove(field) {
            removed += 1;
        }
    }
    ctx.db().remove_if_empty(key);
    ctx.dirty(removed);
    ctx.notify(notify::HASH, "hdel", key);
    ctx.del_if_gone(key);
    Ok(Reply::Integer(removed as i64))
}

fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let incr = args::int(&args[3])?;
    let (hash, limits) = hash_for_write(ctx, &args[1])?;
    let result = incr_int(hash, &args[2], incr, &limits);
    match result {
        Ok(v) => {
            ctx.dirty(1);
            ctx.notify(notify::HASH, "hincrby", &args[1]);
            Ok(Reply::Integer(v))
        }
        Err(e) => {
            ctx.db().remove_if_empty(&args[1]);
            Err(e)
        }
    }
}

fn incr_int(
    hash: &mut Hash,
    field: &[u8],
    incr: i64,
    limits: &Encodings,
) -> Result<i64, CommandError> {
    let old = match hash.get(field) {
        Some(v) => args::parse_i64_strict(v).ok_or(CommandError::HashNotInteger)?,
        None => 0,
    };
    let new = old.checked_add(incr).ok_or(CommandError::Overflow)?;
    hash.insert(field, new.to_string().as_bytes(), limits);
    Ok(new)
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let incr = &args[3];
    match longdouble::check(incr) {
        None => return Err(CommandError::NotFloat),
        Some(true) => return Err(CommandError::err("value is NaN or Infinity")),
        Some(false) => {}
    }
    let (hash, limits) = hash_for_write(ctx, &args[1])?;
    match incr_float(hash, &args[2], incr, &limits) {
        Ok(text) => {
            ctx.dirty(1);
            ctx.notify(notify::HASH, "hincrbyfloat", &args[1]);
            Ok(Reply::Bulk(text))
        }
        Err(e) => {
            ctx.db().remove_if_empty(&args[1]);
            Err(e)
        }
    }
}

/// Adds in long double, as Redis (see [`crate::longdouble`]).
fn incr_float(
    hash: &mut Hash,
    field: &[u8],
    incr: &[u8],
    limits: &Encodings,
) -> Result<Bytes, CommandError> {
    let old = hash
        .get(field)
        .map(Bytes::copy_from_slice)
        .unwrap_or_else(|| Bytes::from_static(b"0"));
    let text = longdouble::add(&old, incr).map_err(|e| match e {
        SumError::FirstNotFloat => CommandError::HashNotFloat,
        SumError::SecondNotFloat => CommandError::NotFloat,
        SumError::NanOrInfinity => CommandError::NanOrInfinity,
    })?;
    hash.insert(field, &text, limits);
    Ok(text)
}

// ---------------------------------------------------------------------------
// Reads.

fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let value = read_hash(ctx, &args[1])?.and_then(|h| h.get_bytes(&args[2]));
    Ok(Reply::bulk_opt(value))
}

fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let hash = read_hash(ctx, &args[1])?;
    let values = args[2..]
        .iter()
        .map(|f| Reply::bulk_opt(hash.and_then(|h| h.get_bytes(f))))
        .collect();
    Ok(Reply::Array(values))
}

/// In insertion order while the hash is a listpack, as Redis replies.
fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let pairs = read_hash(ctx, &args[1])?
        .map(|h| {
            h.iter_bytes()
                .map(|(f, v)| (Reply::Bulk(f), Reply::Bulk(v)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Reply::Map(pairs))
}

fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let hash = read_hash(ctx, &args[1])?;
    Ok(Reply::bulks(hash.into_iter().flat_map(Hash::keys)))
}

fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let hash = read_hash(ctx, &args[1])?;
    Ok(Reply::bulks(hash.into_iter().flat_map(Hash::values)))
}

fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let found = read_hash(ctx, &args[1])?.is_some_and(|h| h.contains(&args[2]));
    Ok(Reply::Integer(found as i64))
}

fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let len = read_hash(ctx, &args[1])?.map_or(0, Hash::len);
    Ok(Reply::Integer(len as i64))
}

fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let len = read_hash(ctx, &args[1])?
        .and_then(|h| h.get(&args[2]))
        .map_or(0, <[u8]>::len);
    Ok(Reply::Integer(len as i64))
}

// ---------------------------------------------------------------------------
// HSCAN.

/// A listpack hash comes whole with cursor 0, whatever the cursor and COUNT,
/// as in Redis. A table's cursor is a position in its hash order (the hash of
/// the next field to visit), kept by the client alone, like SCAN's: every
/// field present for the whole walk is returned exactly once. MATCH filters
/// after COUNT fields were taken, as in Redis.
fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_scan_cursor(&args[2])?;
    let Some(hash) = read_hash(ctx, &args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = parse_scan_options(&args[3..])?;
    let mut items = Vec::new();
    let next = hash.scan(cursor, opts.count, |f, v| {
        if opts.matches(&f) {
            items.push(Reply::Bulk(f));
            items.push(Reply::Bulk(v));
        }
    });
    Ok(scan_reply(next, items))
}

// ---------------------------------------------------------------------------
// HRANDFIELD.

fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() >= 3 {
        let count = sample::parse_count(&args[2])?;
        let withvalues = match args.len() {
            3 => false,
            4 if args::is(&args[3], "withvalues") => true,
            _ => return Err(CommandError::Syntax),
        };
        // Redis halves the range so that count * 2 reply elements cannot overflow.
        if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
            return Err(CommandError::err("value is out of range"));
        }
        return hrandfield_count(ctx, &args[1], count, withvalues);
    }
    // An O(1) clone releases the borrow of the keyspace for the generator.
    let Some(hash) = read_hash(ctx, &args[1])?.cloned() else {
        return Ok(Reply::Null);
    };
    if hash.is_empty() {
        return Ok(Reply::Null);
    }
    let pick = hash.nth(ctx.state.rng.below(hash.len()));
    Ok(Reply::bulk_opt(pick.map(|(f, _)| f)))
}

fn hrandfield_count(ctx: &mut Ctx<'_>, key: &[u8], count: i64, withvalues: bool) -> CmdResult {
    let Some(hash) = read_hash(ctx, key)?.cloned() else {
        return Ok(Reply::Array(Vec::new()));
    };
    let picks = random_pairs(&hash, count, &mut ctx.state.rng)?;
    let resp3 = ctx.client.proto == Protocol::Resp3;
    let reply = match (withvalues, resp3) {
        (false, _) => picks.into_iter().map(|(f, _)| Reply::Bulk(f)).collect(),
        // Redis 7.0 answers RESP3 clients with [field, value] pairs.
        (true, true) => picks
            .into_iter()
            .map(|(f, v)| Reply::Array(vec![Reply::Bulk(f), Reply::Bulk(v)]))
            .collect(),
        (true, false) => picks
            .into_iter()
            .flat_map(|(f, v)| [Reply::Bulk(f), Reply::Bulk(v)])
            .collect(),
    };
    Ok(Reply::Array(reply))
}

/// HRANDFIELD's picks for a count, case by case as Redis's
/// `hrandfieldWithCountCommand`:
///
/// 1. negative count: that many independent uniform picks, in random order
///    (O(|count| · depth) in a table, one walk of a listpack);
/// 2. a count of at least the size: the whole hash, in its order;
/// 3. a listpack: distinct picks in listpack order (one walk);
/// 4. a table with count · 3 > size: distinct picks in one walk, shuffled;
/// 5. a table with a count small beside its size: distinct uniform indices,
///    each found in O(depth), in the order drawn.
fn random_pairs(
    hash: &Hash,
    count: i64,
    rng: &mut Rng,
) -> Result<Vec<(Bytes, Bytes)>, CommandError> {
    let len = hash.len();
    let copy = |(f, v): (&[u8], &[u8])| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v));
    if count < 0 {
        let k = sample::check_repeats(count.unsigned_abs())?;
        if len == 0 {
            return Ok(Vec::new());
        }
        if hash.is_packed() {
            let picks = sample::with_repeats(hash.iter(), len, k, rng);
            return Ok(picks.into_iter().map(copy).collect());
        }
        return Ok((0..k).filter_map(|_| hash.nth(rng.below(len))).collect());
    }
    let k = usize::try_from(count).unwrap_or(usize::MAX);
    if k >= len {
        return Ok(hash.iter_bytes().collect());
    }
    if hash.is_packed() {
        let mut selection = sample::Selection::new(len, k);
        return Ok(hash
            .iter()
            .filter(|_| selection.pick(rng))
            .map(copy)
            .collect());
    }
    if k.saturating_mul(RANDOM_SUB_STRATEGY_MUL) > len {
        return Ok(sample::distinct(hash.iter_bytes(), len, k, rng));
    }
    Ok(sample::distinct_indices(len, k, rng)
        .into_iter()
        .filter_map(|i| hash.nth(i))
        .collect())
}

/// Redis's `HRANDFIELD_SUB_STRATEGY_MUL`: below count · 3 elements, distinct
/// picks come from one walk rather than from drawing and rejecting repeats.
const RANDOM_SUB_STRATEGY_MUL: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn cursor_parsing_follows_strtoul() {
        assert_eq!(parse_scan_cursor(b"0").unwrap(), 0);
        assert_eq!(parse_scan_cursor(b"").unwrap(), 0);
        assert_eq!(parse_scan_cursor(b"00").unwrap(), 0);
        assert_eq!(parse_scan_cursor(b"-1").unwrap(), u64::MAX);
        assert_eq!(
            parse_scan_cursor(b"18446744073709551615").unwrap(),
            u64::MAX
        );
        for bad in [
            &b"x"[..],
            b"18446744073709551616",
            b" 1",
            b"-",
            b"-+1",
            b"1x",
        ] {
            assert_eq!(parse_scan_cursor(bad), Err(CommandError::InvalidCursor));
        }
    }

    #[test]
    fn scan_options() {
        let o = parse_scan_options(&[b("COUNT"), b("5"), b("match"), b("a*")]).unwrap();
        assert_eq!(o.count, 5);
        assert!(o.matches(b"abc") && !o.matches(b"b"));
        let o = parse_scan_options(&[b("match"), b("*")]).unwrap();
        assert!(o.pattern.is_none());
        for bad in [
            vec![b("count"), b("0")],
            vec![b("count")],
            vec![b("novalues")],
        ] {
            assert_eq!(
                parse_scan_options(&bad).err(),
                Some(CommandError::Syntax),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_scan_options(&[b("count"), b("x")]).err(),
            Some(CommandError::NotInteger)
        );
    }

    #[test]
    fn random_pairs_follow_redis_cases() {
        let mut rng = Rng::with_seed(9);
        let small: Hash = (0..10)
            .map(|i| (format!("f{i}"), format!("v{i}")))
            .collect();
        let big: Hash = (0..1000)
            .map(|i| (format!("f{i}"), format!("v{i}")))
            .collect();
        assert!(small.is_packed() && !big.is_packed());
        let distinct = |picks: &[(Bytes, Bytes)]| {
            let fields: std::collections::HashSet<_> = picks.iter().map(|(f, _)| f).collect();
            fields.len() == picks.len()
        };
        for (hash, count) in [
            (&small, 4),
            (&small, 9),
            (&big, 10),
            (&big, 400),
            (&big, 999),
        ] {
            let picks = random_pairs(hash, count, &mut rng).unwrap();
            assert_eq!(picks.len(), count as usize);
            assert!(distinct(&picks), "{count}");
            for (f, v) in &picks {
                assert_eq!(hash.get(f), Some(&v[..]));
            }
        }
        // A listpack's distinct picks keep its order, as Redis's do.
        let picks = random_pairs(&small, 5, &mut rng).unwrap();
        let positions: Vec<usize> = picks
            .iter()
            .map(|(f, _)| small.keys().position(|k| k == f).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(random_pairs(&small, 10, &mut rng).unwrap().len(), 10);
        assert_eq!(
            random_pairs(&big, 5000, &mut rng).unwrap(),
            big.iter_bytes().collect::<Vec<_>>()
        );
        for hash in [&small, &big] {
            let picks = random_pairs(hash, -3000, &mut rng).unwrap();
            assert_eq!(picks.len(), 3000);
            assert!(!distinct(&picks));
        }
        assert!(random_pairs(&big, 0, &mut rng).unwrap().is_empty());
    }

    #[test]
    fn integer_increments() {
        let l = Encodings::default();
        let mut h = Hash::new();
        assert_eq!(incr_int(&mut h, b"n", 5, &l).unwrap(), 5);
        assert_eq!(incr_int(&mut h, b"n", -7, &l).unwrap(), -2);
        h.insert(b"big", b"9223372036854775807", &l);
        assert_eq!(incr_int(&mut h, b"big", 1, &l), Err(CommandError::Overflow));
        h.insert(b"s", b" 1", &l);
        assert_eq!(
            incr_int(&mut h, b"s", 1, &l),
            Err(CommandError::HashNotInteger)
        );
        // A long field converts the hash, as Redis's hashTypeSet does.
        assert!(h.is_packed());
        incr_int(&mut h, &[b'f'; 65], 1, &l).unwrap();
        assert_eq!(h.encoding_name(), "hashtable");
    }

    #[test]
    fn float_increments() {
        let l = Encodings::default();
        let mut h = Hash::new();
        assert_eq!(incr_float(&mut h, b"f", b"10.5", &l).unwrap(), b("10.5"));
        assert_eq!(incr_float(&mut h, b"f", b"0.1", &l).unwrap(), b("10.6"));
        h.insert(b"x", b"abc", &l);
        assert_eq!(
            incr_float(&mut h, b"x", b"1.0", &l),
            Err(CommandError::HashNotFloat)
        );
        // Past f64's range but within long double's, as in Redis.
        let mut wide = Hash::new();
        wide.insert(b"m", b"1.7e308", &l);
        assert!(incr_float(&mut wide, b"m", b"1.7e308", &l).is_ok());
        h.insert(b"m", b"1e4932", &l);
        assert_eq!(
            incr_float(&mut h, b"m", b"1e4932", &l),
            Err(CommandError::NanOrInfinity)
        );
        // A result longer than hash-max-listpack-value converts the hash.
        assert!(h.is_packed());
        incr_float(&mut h, b"f", b"1e100", &l).unwrap();
        assert_eq!(h.encoding_name(), "hashtable");
    }
}

/// Runs commands in process, for tests that look at what the wire does not
/// show (change counting, keyspace statistics).
#[cfg(test)]
pub(super) mod harness {
    use bytes::Bytes;

    use crate::clients::ClientState;
    use crate::commands::{execute, Ctx};
    use crate::config::Config;
    use crate::keyspace::unix_ms;
    use crate::reply::{Protocol, Reply};
    use crate::state::Shared;

    pub struct Harness {
        shared: Shared,
        client: ClientState,
    }

    impl Harness {
        pub fn new() -> Harness {
            let shared = Shared::new(Config::default());
            let info = shared.clients.register("test".into(), "test".into());
            let client = ClientState::new(info.id, "test".into(), "test".into(), info);
            Harness { shared, client }
        }

        pub fn resp3(&mut self) {
            self.client.proto = Protocol::Resp3;
        }

        pub fn run(&mut self, args: &[&str]) -> Reply {
            let args: Vec<Bytes> = args
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect();
            let mut state = self.shared.lock();
            let mut ctx = Ctx {
                shared: &self.shared,
                state: &mut state,
                client: &mut self.client,
                now_ms: unix_ms(),
                blocked: None,
                may_block: false,
            };
            execute(&mut ctx, &args)
        }

        /// Runs a command and returns how many changes it counted.
        pub fn dirty_of(&mut self, args: &[&str]) -> u64 {
            let before = self.shared.lock().dirty;
            self.run(args);
            self.shared.lock().dirty - before
        }

        /// (keyspace_hits, keyspace_misses) a command added.
        pub fn stats_of(&mut self, args: &[&str]) -> (u64, u64) {
            let read = |h: &Harness| {
                let s = h.shared.lock();
                (s.stats.keyspace_hits, s.stats.keyspace_misses)
            };
            let before = read(self);
            self.run(args);
            let after = read(self);
            (after.0 - before.0, after.1 - before.1)
        }

        /// An O(1) clone of database 0, as a snapshot takes.
        pub fn snapshot(&self) -> crate::keyspace::Db {
            self.shared.lock().keyspace.db(0).clone()
        }

        pub fn key_count(&self) -> usize {
            self.shared.lock().keyspace.db(0).len()
        }
    }

    #[test]
    fn hash_change_counting_matches_redis() {
        let mut h = Harness::new();
        // Figures read from redis-server 7.0.15's rdb_changes_since_last_save.
        assert_eq!(h.dirty_of(&["HSET", "h", "a", "1", "b", "2"]), 2);
        assert_eq!(h.dirty_of(&["HSET", "h", "a", "1", "c", "3"]), 2);
        assert_eq!(h.dirty_of(&["HMSET", "h", "a", "1"]), 1);
        assert_eq!(h.dirty_of(&["HSETNX", "h", "a", "1"]), 0);
        assert_eq!(h.dirty_of(&["HSETNX", "h", "z", "1"]), 1);
        assert_eq!(h.dirty_of(&["HDEL", "h", "a", "nope", "b"]), 2);
        assert_eq!(h.dirty_of(&["HDEL", "h", "nope"]), 0);
        assert_eq!(h.dirty_of(&["HINCRBY", "h", "n", "0"]), 1);
        assert_eq!(h.dirty_of(&["HINCRBYFLOAT", "h", "f", "0"]), 1);
        h.run(&["HSET", "h", "s", "abc"]);
        assert_eq!(h.dirty_of(&["HINCRBY", "h", "s", "1"]), 0, "error");
        assert_eq!(h.dirty_of(&["HSET", "h", "a"]), 0, "arity error");
    }

    #[test]
    fn hash_reads_count_hits_and_misses() {
        let mut h = Harness::new();
        h.run(&["HSET", "h", "a", "1"]);
        h.run(&["SADD", "s", "a"]);
        assert_eq!(h.stats_of(&["HGET", "h", "a"]), (1, 0));
        assert_eq!(h.stats_of(&["HGET", "h", "zz"]), (1, 0));
        assert_eq!(h.stats_of(&["HGET", "nokey", "a"]), (0, 1));
        assert_eq!(
            h.stats_of(&["HGET", "s", "a"]),
            (1, 0),
            "wrong type is a hit"
        );
        assert_eq!(
            h.stats_of(&["HSET", "h", "a", "2"]),
            (0, 0),
            "writes do not count"
        );
        assert_eq!(h.stats_of(&["HSCAN", "h", "0"]), (1, 0));
    }

    #[test]
    fn hrandfield_withvalues_shape_follows_protocol() {
        let mut h = Harness::new();
        h.run(&["HSET", "h", "a", "1", "b", "2"]);
        let Reply::Array(flat) = h.run(&["HRANDFIELD", "h", "-3", "WITHVALUES"]) else {
            panic!("array expected")
        };
        assert_eq!(flat.len(), 6);
        h.resp3();
        let Reply::Array(pairs) = h.run(&["HRANDFIELD", "h", "2", "WITHVALUES"]) else {
            panic!("array expected")
        };
        assert_eq!(pairs.len(), 2);
        assert!(pairs
            .iter()
            .all(|p| matches!(p, Reply::Array(fv) if fv.len() == 2)));
    }

    /// A write that changes nothing must not copy a hash a snapshot shares,
    /// packed record, boxed listpack or table alike.
    #[test]
    fn no_op_writes_leave_shared_hashes_alone() {
        let mut h = Harness::new();
        h.run(&["HSET", "h", "a", "1"]);
        let long = "x".repeat(65);
        h.run(&["HSET", "t", "a", "1", "b", &long]);
        let mut hset = vec!["HSET", "lp", "a", "1"];
        let fields: Vec<String> = (0..60).map(|i| format!("field{i}")).collect();
        for f in &fields {
            hset.extend([f.as_str(), "v"]);
        }
        h.run(&hset);
        let snap = h.snapshot();
        for key in ["h", "t", "lp"] {
            h.run(&["HDEL", key, "zz"]);
            h.run(&["HSETNX", key, "a", "2"]);
        }
        let live = h.snapshot();
        let record = |db: &crate::keyspace::Db, key: &str| {
            db.peek_record(key.as_bytes(), 0)
                .cloned()
                .expect("hash lost")
        };
        assert!(record(&snap, "h").is_packed());
        assert!(!record(&snap, "lp").is_packed(), "a boxed listpack");
        for key in ["h", "t", "lp"] {
            assert!(record(&snap, key).same(&record(&live, key)), "{key}");
        }
        // A real write, even of the same value, is seen (WATCH aborts, as in Redis).
        for key in ["h", "t", "lp"] {
            h.run(&["HSET", key, "a", "1"]);
            assert!(
                !record(&snap, key).same(&record(&h.snapshot(), key)),
                "{key}"
            );
        }
        h.run(&["HDEL", "h", "a"]);
        assert_eq!(h.key_count(), 2);
        let kept = snap.peek(b"h", 0).expect("the snapshot keeps its version");
        assert_eq!(kept.value.as_hash().unwrap().len(), 1);
    }

    #[test]
    fn object_encoding_follows_the_representation() {
        let mut h = Harness::new();
        h.run(&["HSET", "h", "a", "1"]);
        let enc = |h: &mut Harness| h.run(&["OBJECT", "ENCODING", "h"]);
        assert_eq!(enc(&mut h), Reply::bulk("listpack"));
        h.run(&["CONFIG", "SET", "hash-max-listpack-entries", "1"]);
        h.run(&["HSET", "h", "a", "2"]);
        assert_eq!(enc(&mut h), Reply::bulk("listpack"), "one field fits");
        h.run(&["HSET", "h", "b", "2"]);
        assert_eq!(enc(&mut h), Reply::bulk("hashtable"));
        h.run(&["HDEL", "h", "b"]);
        assert_eq!(enc(&mut h), Reply::bulk("hashtable"), "never back");
    }

    #[test]
    fn failed_increment_on_missing_key_leaves_no_key() {
        let mut h = Harness::new();
        assert!(h.run(&["HINCRBY", "h", "f", "x"]).is_error());
        assert!(h.run(&["HINCRBYFLOAT", "h", "f", "inf"]).is_error());
        assert_eq!(h.key_count(), 0);
    }
}
