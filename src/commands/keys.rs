//! Key-space commands: DEL, UNLINK, EXISTS, TYPE, KEYS, SCAN, RANDOMKEY, RENAME,
//! RENAMENX, COPY, MOVE, TOUCH, the EXPIRE family, TTL/PTTL, EXPIRETIME/PEXPIRETIME
//! and PERSIST, with Redis 7.0's replies.

use bytes::Bytes;

use super::args;
use super::flags::*;
use super::strings::since;
use super::{spec, CommandSpec, Ctx, KEY1, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::glob;
use crate::keyspace::scan;
use crate::keyspace::{Entry, Key, Value};
use crate::pubsub::notify;
use crate::reply::Reply;

/// Every argument is a key.
const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);
/// RENAME, COPY: source and destination.
const TWO_KEYS: (i32, i32, i32) = (1, 2, 1);

pub const COMMANDS: &[CommandSpec] = &[
    spec("del", -2, WRITE, ALL_KEYS, "keyspace", "Deletes one or more keys.", del),
    since(spec("unlink", -2, WRITE | FAST, ALL_KEYS, "keyspace", "Asynchronously deletes one or more keys.", del), "4.0.0"),
    spec("exists", -2, READONLY | FAST, ALL_KEYS, "keyspace", "Determines whether one or more keys exist.", exists),
    spec("type", 2, READONLY | FAST, KEY1, "keyspace", "Determines the type of value stored at a key.", type_cmd),
    spec("keys", 2, READONLY, NO_KEYS, "keyspace", "Returns all key names that match a pattern.", keys),
    since(spec("scan", -2, READONLY, NO_KEYS, "keyspace", "Iterates over the key names in the database.", scan), "2.8.0"),
    spec("randomkey", 1, READONLY, NO_KEYS, "keyspace", "Returns a random key name from the database.", randomkey),
    spec("rename", 3, WRITE, TWO_KEYS, "keyspace", "Renames a key and overwrites the destination.", rename),
    spec("renamenx", 3, WRITE | FAST, TWO_KEYS, "keyspace", "Renames a key only when the target key name doesn't exist.", renamenx),
    since(spec("copy", -3, WRITE | DENYOOM, TWO_KEYS, "keyspace", "Copies the value of a key to a new key.", copy), "6.2.0"),
    spec("move", 3, WRITE | FAST, KEY1, "keyspace", "Moves a key to another database.", move_cmd),
    since(spec("touch", -2, READONLY | FAST, ALL_KEYS, "keyspace", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", touch), "3.2.1"),
    spec("expire", -3, WRITE | FAST, KEY1, "keyspace", "Sets the expiration time of a key in seconds.", expire),
    since(spec("pexpire", -3, WRITE | FAST, KEY1, "keyspace", "Sets the expiration time of a key in milliseconds.", pexpire), "2.6.0"),
    since(spec("expireat", -3, WRITE | FAST, KEY1, "keyspace", "Sets the expiration time of a key to a Unix timestamp.", expireat), "1.2.0"),
    since(spec("pexpireat", -3, WRITE | FAST, KEY1, "keyspace", "Sets the expiration time of a key to a Unix milliseconds timestamp.", pexpireat), "2.6.0"),
    spec("ttl", 2, READONLY | FAST, KEY1, "keyspace", "Returns the expiration time in seconds of a key.", ttl),
    since(spec("pttl", 2, READONLY | FAST, KEY1, "keyspace", "Returns the expiration time in milliseconds of a key.", pttl), "2.6.0"),
    since(spec("expiretime", 2, READONLY | FAST, KEY1, "keyspace", "Returns the expiration time of a key as a Unix timestamp.", expiretime), "7.0.0"),
    since(spec("pexpiretime", 2, READONLY | FAST, KEY1, "keyspace", "Returns the expiration time of a key as a Unix milliseconds timestamp.", pexpiretime), "7.0.0"),
    since(spec("persist", 2, WRITE | FAST, KEY1, "keyspace", "Removes the expiration time of a key.", persist), "2.2.0"),
];

/// Default SCAN COUNT, as in Redis.
const DEFAULT_SCAN_COUNT: usize = 10;
/// RANDOMKEY tries this many random picks (each expired pick is deleted) before
/// falling back to a linear search.
const RANDOMKEY_ATTEMPTS: usize = 100;

// ---------------------------------------------------------------------------
// Helpers

/// Reads `key` counting a keyspace hit or miss, as Redis's `lookupKeyRead` does.
fn read_entry(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<Entry> {
    let now = ctx.now_ms;
    let found = ctx.db().get(key, now).cloned();
    if found.is_some() {
        ctx.state.stats.keyspace_hits += 1;
    } else {
        ctx.state.stats.keyspace_misses += 1;
    }
    found
}

/// Wakes clients blocked on `key` in `db` when it now holds a list or a
/// sorted set.
fn signal_if_list(ctx: &mut Ctx<'_>, db: usize, key: &[u8], value: &Value) {
    if matches!(value, Value::List(_) | Value::ZSet(_) | Value::Stream(_)) {
        ctx.state.blocking.signal(db, key);
    }
}

/// A database index argument (COPY DB, MOVE), checked against the configured count.
fn db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, CommandError> {
    let v = args::int(arg)?;
    // Redis parses a C `int` here, with its own range error.
    if i32::try_from(v).is_err() {
        return Err(CommandError::err(
            "value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    usize::try_from(v)
        .ok()
        .filter(|i| *i < ctx.state.keyspace.db_count())
        .ok_or(CommandError::DbIndexOutOfRange)
}

// ---------------------------------------------------------------------------
// DEL, EXISTS, TYPE, TOUCH

fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms;
    let mut deleted = 0;
    for key in &args[1..] {
        let db = ctx.db();
        // Reading first expires a key whose time ran out, so it is not counted.
        if db.get(key, now).is_some() {
            db.delete(key);
            deleted += 1;
            ctx.notify(notify::GENERIC, "del", key);
        }
    }
    ctx.dirty(deleted);
    Ok(Reply::Integer(deleted as i64))
}

/// A key's type and expiry, looked up as a read that is not an access
/// (Redis's `LOOKUP_NOTOUCH`, for TYPE, EXISTS and the TTL family); the hit
/// or miss is counted.
fn peek_key(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<(&'static str, Option<i64>)> {
    let now = ctx.now_ms;
    let found = ctx
        .db()
        .record_untouched(key, now)
        .map(|r| (r.type_name(), r.expire_at()));
    if found.is_some() {
        ctx.state.stats.keyspace_hits += 1;
    } else {
        ctx.state.stats.keyspace_misses += 1;
    }
    found
}

fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut count = 0;
    for key in &args[1..] {
        if peek_key(ctx, key).is_some() {
            count += 1;
        }
    }
    Ok(Reply::Integer(count))
}

/// Counts an access to each key that exists (its LRU time or LFU counter).
fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms;
    let mut count = 0;
    for key in &args[1..] {
        let found = ctx.db().record(key, now).is_some();
        if found {
            ctx.state.stats.keyspace_hits += 1;
            count += 1;
        } else {
            ctx.state.stats.keyspace_misses += 1;
        }
    }
    Ok(Reply::Integer(count))
}

fn type_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let name = peek_key(ctx, &args[1]).map_or("none", |(t, _)| t);
    Ok(Reply::simple(name))
}

// ---------------------------------------------------------------------------
// KEYS, SCAN, RANDOMKEY

fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let pattern = &args[1];
    let all = pattern.as_ref() == b"*";
    let now = ctx.now_ms;
    let out: Vec<Reply> = ctx
        .db()
        .records()
        .filter(|r| !r.is_expired(now))
        .filter(|r| all || glob::matches(pattern, r.key()))
        .map(|r| Reply::Bulk(Bytes::copy_from_slice(r.key())))
        .collect();
    Ok(Reply::Array(out))
}

/// SCAN's options.
struct ScanOptions {
    count: usize,
    pattern: Option<Bytes>,
    type_name: Option<Bytes>,
}

fn parse_scan_options(opts: &[Bytes]) -> Result<ScanOptions, CommandError> {
    let mut o = ScanOptions {
        count: DEFAULT_SCAN_COUNT,
        pattern: None,
        type_name: None,
    };
    let mut pairs = opts.chunks(2);
    for pair in &mut pairs {
        let [name, value] = pair else {
            return Err(CommandError::Syntax);
        };
        if args::is(name, "count") {
            let n = args::int(value)?;
            if n < 1 {
                return Err(CommandError::Syntax);
            }
            o.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if args::is(name, "match") {
            o.pattern = (value.as_ref() != b"*").then(|| value.clone());
        } else if args::is(name, "type") {
            o.type_name = Some(value.clone());
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(o)
}

/// Parses a SCAN cursor as Redis's `strtoul` does: a decimal, where a leading
/// `-` wraps around (so `-1` is a valid, if useless, cursor).
fn parse_scan_cursor(arg: &[u8]) -> Result<u64, CommandError> {
    if let Some(c) = scan::parse_cursor(arg) {
        return Ok(c);
    }
    match arg.strip_prefix(b"-").and_then(scan::parse_cursor) {
        Some(c) if !arg.starts_with(b"--") => Ok(c.wrapping_neg()),
        _ => Err(CommandError::InvalidCursor),
    }
}

/// SCAN's cursor is a position in the keyspace's hash order: the hash of the
/// next key to visit. Keys are visited in ascending hash order, so every key
/// present for the whole scan is returned exactly once, whatever is inserted or
/// deleted between calls, and no cursor state is kept on the server. Keys
/// taken are checked against the live database (an expired key is deleted and
/// skipped). COUNT bounds the keys looked at per call, not the keys returned,
/// as in Redis.
fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor = parse_scan_cursor(&args[1])?;
    let opts = parse_scan_options(&args[2..])?;
    let now = ctx.now_ms;
    let mut taken = Vec::with_capacity(opts.count.min(1024));
    let next = ctx.db().scan(cursor, opts.count, |r| {
        if opts
            .pattern
            .as_ref()
            .is_none_or(|p| glob::matches(p, r.key()))
        {
            taken.push(Bytes::copy_from_slice(r.key()));
        }
    });
    let mut found = Vec::with_capacity(taken.len());
    for key in taken {
        let Some(type_name) = ctx.db().record(&key, now).map(|r| r.type_name()) else {
            continue;
        };
        if let Some(wanted) = &opts.type_name {
            // Redis looks the key up to learn its type, which counts as a hit.
            ctx.state.stats.keyspace_hits += 1;
            if !wanted.eq_ignore_ascii_case(type_name.as_bytes()) {
                continue;
            }
        }
        found.push(Reply::Bulk(key));
    }
    Ok(Reply::Array(vec![
        Reply::bulk(next.to_string()),
        Reply::Array(found),
    ]))
}

/// A uniformly random live key: a uniform index into the hash order, found
/// in O(depth) through the map's subtree counts.
fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms;
    let index = ctx.client.db;
    for _ in 0..RANDOMKEY_ATTEMPTS {
        let state = &mut *ctx.state;
        let len = state.keyspace.db(index).len();
        if len == 0 {
            return Ok(Reply::Null);
        }
        let pick = state.rng.below(len);
        let Some(key) = state
            .keyspace
            .db(index)
            .nth_key(pick)
            .map(Bytes::copy_from_slice)
        else {
            continue;
        };
        // Reading deletes the key if its time ran out; then pick again.
        if state.keyspace.db_mut(index).contains(&key, now) {
            return Ok(Reply::Bulk(key));
        }
    }
    // Mostly expired keys: look for a live one in order.
    let live = ctx
        .db()
        .records()
        .find(|r| !r.is_expired(now))
        .map(|r| Bytes::copy_from_slice(r.key()));
    Ok(Reply::bulk_opt(live))
}

// ---------------------------------------------------------------------------
// RENAME, RENAMENX, COPY, MOVE

/// Redis's `renameGenericCommand`: the TTL travels with the value.
fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (&args[1], &args[2]);
    let now = ctx.now_ms;
    let db = ctx.db();
    let Some(entry) = db.get(src, now).cloned() else {
        return Err(CommandError::NoSuchKey);
    };
    let done = |ok: bool| match (nx, ok) {
        (true, ok) => Reply::Integer(ok as i64),
        (false, _) => Reply::ok(),
    };
    if src == dst {
        return Ok(done(false));
    }
    if db.contains(dst, now) {
        if nx {
            return Ok(done(false));
        }
        db.delete(dst);
    }
    db.delete(src);
    db.insert(dst.clone(), entry.value.clone(), entry.expire_at);
    let index = ctx.client.db;
    signal_if_list(ctx, index, dst, &entry.value);
    ctx.dirty(1);
    ctx.notify(notify::GENERIC, "rename_from", src);
    ctx.notify(notify::GENERIC, "rename_to", dst);
    Ok(done(true))
}

fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, false)
}

fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, args, true)
}

fn same_object() -> CommandError {
    CommandError::err("source and destination objects are the same")
}

fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let src_db = ctx.client.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if args::is(&args[i], "replace") {
            replace = true;
        } else if args::is(&args[i], "db") && i + 1 < args.len() {
            dst_db = db_index(ctx, &args[i + 1])?;
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    let (src, dst) = (&args[1], &args[2]);
    if src_db == dst_db && src == dst {
        return Err(same_object());
    }
    let Some(entry) = read_entry(ctx, src) else {
        return Ok(Reply::Integer(0));
    };
    let now = ctx.now_ms;
    let target = ctx.state.keyspace.db_mut(dst_db);
    if target.contains(dst, now) {
        if !replace {
            return Ok(Reply::Integer(0));
        }
        target.delete(dst);
    }
    // Values are persistent structures: the copy shares them until either side changes.
    target.insert(dst.clone(), entry.value.clone(), entry.expire_at);
    signal_if_list(ctx, dst_db, dst, &entry.value);
    ctx.dirty(1);
    ctx.notify_db(dst_db, notify::GENERIC, "copy_to", dst);
    Ok(Reply::Integer(1))
}

fn move_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let from = ctx.client.db;
    let to = db_index(ctx, &args[2])?;
    if from == to {
        return Err(same_object());
    }
    let key = &args[1];
    let now = ctx.now_ms;
    let Some(value) = ctx.db().get(key, now).map(|e| e.value.clone()) else {
        return Ok(Reply::Integer(0));
    };
    if !ctx.state.keyspace.move_key(key, from, to, now) {
        return Ok(Reply::Integer(0));
    }
    signal_if_list(ctx, to, key, &value);
    ctx.dirty(1);
    ctx.notify(notify::GENERIC, "move_from", key);
    ctx.notify_db(to, notify::GENERIC, "move_to", key);
    Ok(Reply::Integer(1))
}

// ---------------------------------------------------------------------------
// EXPIRE family, TTL family, PERSIST

/// EXPIRE's NX/XX/GT/LT conditions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

/// Redis's `parseExtendedExpireArgumentsOrReply`.
fn parse_expire_flags(opts: &[Bytes]) -> Result<ExpireFlags, CommandError> {
    let mut f = ExpireFlags::default();
    for opt in opts {
        if args::is(opt, "nx") {
            f.nx = true;
        } else if args::is(opt, "xx") {
            f.xx = true;
        } else if args::is(opt, "gt") {
            f.gt = true;
        } else if args::is(opt, "lt") {
            f.lt = true;
        } else {
            return Err(CommandError::err(format!(
                "Unsupported option {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(CommandError::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if f.gt && f.lt {
        return Err(CommandError::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    Ok(f)
}

/// Whether the conditions allow replacing `current` (None = no TTL, which GT and
/// LT treat as infinite) with `when`.
fn expire_allowed(f: ExpireFlags, current: Option<i64>, when: i64) -> bool {
    match current {
        None => !f.xx && !f.gt,
        Some(cur) => {
            let blocked = f.nx || (f.gt && when <= cur) || (f.lt && when >= cur);
            !blocked
        }
    }
}

/// The absolute time in ms an EXPIRE-family argument names; `base_ms` is now for
/// relative commands and 0 for the *AT ones. Negative times are allowed (they
/// delete the key); only overflow is an error, as in Redis.
fn expire_when(arg: &[u8], seconds: bool, base_ms: i64, cmd: &str) -> Result<i64, CommandError> {
    let v = args::int(arg)?;
    let invalid = || CommandError::InvalidExpireTime(cmd.to_string());
    let ms = if seconds {
        v.checked_mul(1000).ok_or_else(invalid)?
    } else {
        v
    };
    ms.checked_add(base_ms).ok_or_else(invalid)
}

/// Redis's `expireGenericCommand`.
fn expire_generic(ctx: &mut Ctx<'_>, args: &[Bytes], seconds: bool, relative: bool) -> CmdResult {
    let flags = parse_expire_flags(&args[3..])?;
    let now = ctx.now_ms;
    let cmd = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    let when = expire_when(&args[2], seconds, if relative { now } else { 0 }, &cmd)?;
    let key = &args[1];
    let db = ctx.db();
    let Some(current) = db.get(key, now).map(|e| e.expire_at) else {
        return Ok(Reply::Integer(0));
    };
    if !expire_allowed(flags, current, when) {
        return Ok(Reply::Integer(0));
    }
    let event = if when <= now {
        db.delete(key);
        "del"
    } else {
        db.set_expire(key, Some(when));
        "expire"
    };
    ctx.dirty(1);
    ctx.notify(notify::GENERIC, event, key);
    Ok(Reply::Integer(1))
}

fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, true, true)
}

fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, false, true)
}

fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, true, false)
}

fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, false, false)
}

/// How TTL-family commands report a key's expiry.
#[derive(Clone, Copy)]
enum TtlOutput {
    /// Remaining time (TTL, PTTL).
    Remaining,
    /// Absolute Unix time (EXPIRETIME, PEXPIRETIME).
    Absolute,
}

/// Redis's `ttlGenericCommand`: -2 for a missing key, -1 for no TTL; seconds are
/// rounded to the nearest.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], ms: bool, output: TtlOutput) -> CmdResult {
    let Some((_, expire_at)) = peek_key(ctx, key) else {
        return Ok(Reply::Integer(-2));
    };
    let Some(at) = expire_at else {
        return Ok(Reply::Integer(-1));
    };
    let t = match output {
        TtlOutput::Remaining => at.saturating_sub(ctx.now_ms),
        TtlOutput::Absolute => at,
    }
    .max(0);
    Ok(Reply::Integer(if ms {
        t
    } else {
        t.saturating_add(500) / 1000
    }))
}

fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], false, TtlOutput::Remaining)
}

fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], true, TtlOutput::Remaining)
}

fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], false, TtlOutput::Absolute)
}

fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], true, TtlOutput::Absolute)
}

fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms;
    let key: &Key = &args[1];
    let db = ctx.db();
    let had_ttl = db.get(key, now).is_some_and(|e| e.expire_at.is_some());
    if had_ttl {
        db.set_expire(key, None);
        ctx.dirty(1);
        ctx.notify(notify::GENERIC, "persist", key);
    }
    Ok(Reply::Integer(had_ttl as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::strings::harness::*;

    fn scan_all(h: &mut Harness, extra: &[&str]) -> Vec<Reply> {
        let mut cursor = "0".to_string();
        let mut out = Vec::new();
        for _ in 0..1000 {
            let mut cmd = vec!["scan", cursor.as_str()];
            cmd.extend_from_slice(extra);
            let Reply::Array(parts) = h.run(&cmd) else {
                panic!("scan reply")
            };
            let [Reply::Bulk(next), Reply::Array(keys)] = &parts[..] else {
                panic!("scan shape {parts:?}")
            };
            out.extend(keys.iter().cloned());
            cursor = String::from_utf8(next.to_vec()).unwrap();
            if cursor == "0" {
                return out;
            }
        }
        panic!("scan did not finish");
    }

    #[test]
    fn type_rename_copy_move_keep_values_and_ttls() {
        let mut h = Harness::new();
        h.put("l", a_list());
        assert_eq!(h.run(&["type", "l"]), Reply::simple("list"));
        assert_eq!(h.run(&["type", "nokey"]), Reply::simple("none"));
        assert_eq!(h.run(&["pexpire", "l", "10000"]), Reply::Integer(1));
        assert_eq!(h.run(&["rename", "l", "l2"]), Reply::ok());
        assert_eq!(h.run(&["type", "l2"]), Reply::simple("list"));
        assert_eq!(h.run(&["pttl", "l2"]), Reply::Integer(10000));
        assert_eq!(h.run(&["copy", "l2", "l3", "db", "3"]), Reply::Integer(1));
        assert_eq!(h.run(&["copy", "l2", "l2", "db", "3"]), Reply::Integer(1));
        assert_eq!(h.run(&["move", "l2", "3"]), Reply::Integer(0));
        assert_eq!(h.run(&["move", "l2", "4"]), Reply::Integer(1));
        assert_eq!(h.run(&["exists", "l2"]), Reply::Integer(0));
        h.run(&["select", "3"]);
        assert_eq!(h.run(&["type", "l3"]), Reply::simple("list"));
        assert_eq!(h.run(&["pttl", "l3"]), Reply::Integer(10000));
        for db in 0..16 {
            h.shared.lock().keyspace.db(db).check_invariants().unwrap();
        }
    }

    #[test]
    fn scan_type_filter_and_expired_keys() {
        let mut h = Harness::new();
        for i in 0..30 {
            h.put(&format!("l{i}"), a_list());
            h.run(&["set", &format!("s{i}"), "v"]);
        }
        h.run(&["pexpire", "s0", "1"]);
        h.now_ms += 1;
        let lists = scan_all(&mut h, &["type", "LIST", "count", "7"]);
        assert_eq!(lists.len(), 30);
        let strings = scan_all(&mut h, &["type", "string"]);
        assert_eq!(strings.len(), 29, "the expired key is not returned");
        let matched = scan_all(&mut h, &["match", "s1*", "count", "1000"]);
        assert_eq!(matched.len(), 11);
    }

    #[test]
    fn randomkey_skips_expired_keys() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["randomkey"]), Reply::Null);
        for i in 0..50 {
            h.run(&["set", &format!("k{i}"), "v", "px", "10"]);
        }
        h.run(&["set", "live", "v"]);
        h.now_ms += 10;
        assert_eq!(h.run(&["randomkey"]), Reply::bulk_str("live"));
        h.run(&["del", "live"]);
        assert_eq!(h.run(&["randomkey"]), Reply::Null);
    }

    fn b(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    /// Arity, flags and key positions as `COMMAND INFO` reports them on Redis 7.0.
    #[test]
    fn specs_match_redis_command_info() {
        use crate::commands::{flags::NAMES, lookup};
        type Row = (&'static str, i32, &'static str, (i32, i32, i32));
        let expected: &[Row] = &[
            ("get", 2, "readonly,fast", (1, 1, 1)),
            ("set", -3, "write,denyoom", (1, 1, 1)),
            ("setnx", 3, "write,denyoom,fast", (1, 1, 1)),
            ("setex", 4, "write,denyoom", (1, 1, 1)),
            ("psetex", 4, "write,denyoom", (1, 1, 1)),
            ("getset", 3, "write,denyoom,fast", (1, 1, 1)),
            ("getdel", 2, "write,fast", (1, 1, 1)),
            ("getex", -2, "write,fast", (1, 1, 1)),
            ("mget", -2, "readonly,fast", (1, -1, 1)),
            ("mset", -3, "write,denyoom", (1, -1, 2)),
            ("msetnx", -3, "write,denyoom", (1, -1, 2)),
            ("append", 3, "write,denyoom,fast", (1, 1, 1)),
            ("strlen", 2, "readonly,fast", (1, 1, 1)),
            ("getrange", 4, "readonly", (1, 1, 1)),
            ("substr", 4, "readonly", (1, 1, 1)),
            ("setrange", 4, "write,denyoom", (1, 1, 1)),
            ("incr", 2, "write,denyoom,fast", (1, 1, 1)),
            ("decr", 2, "write,denyoom,fast", (1, 1, 1)),
            ("incrby", 3, "write,denyoom,fast", (1, 1, 1)),
            ("decrby", 3, "write,denyoom,fast", (1, 1, 1)),
            ("incrbyfloat", 3, "write,denyoom,fast", (1, 1, 1)),
            ("del", -2, "write", (1, -1, 1)),
            ("unlink", -2, "write,fast", (1, -1, 1)),
            ("exists", -2, "readonly,fast", (1, -1, 1)),
            ("type", 2, "readonly,fast", (1, 1, 1)),
            ("keys", 2, "readonly", (0, 0, 0)),
            ("scan", -2, "readonly", (0, 0, 0)),
            ("randomkey", 1, "readonly", (0, 0, 0)),
            ("rename", 3, "write", (1, 2, 1)),
            ("renamenx", 3, "write,fast", (1, 2, 1)),
            ("copy", -3, "write,denyoom", (1, 2, 1)),
            ("move", 3, "write,fast", (1, 1, 1)),
            ("touch", -2, "readonly,fast", (1, -1, 1)),
            ("expire", -3, "write,fast", (1, 1, 1)),
            ("pexpire", -3, "write,fast", (1, 1, 1)),
            ("expireat", -3, "write,fast", (1, 1, 1)),
            ("pexpireat", -3, "write,fast", (1, 1, 1)),
            ("ttl", 2, "readonly,fast", (1, 1, 1)),
            ("pttl", 2, "readonly,fast", (1, 1, 1)),
            ("expiretime", 2, "readonly,fast", (1, 1, 1)),
            ("pexpiretime", 2, "readonly,fast", (1, 1, 1)),
            ("persist", 2, "write,fast", (1, 1, 1)),
        ];
        for (name, arity, flags, keys) in expected {
            let spec = lookup(name.as_bytes()).unwrap_or_else(|| panic!("{name} missing"));
            let names: Vec<&str> = NAMES
                .iter()
                .filter(|(bit, _)| spec.flags & bit != 0)
                .map(|(_, n)| *n)
                .collect();
            assert_eq!(spec.arity, *arity, "{name}");
            assert_eq!(names.join(","), *flags, "{name}");
            assert_eq!((spec.first_key, spec.last_key, spec.step), *keys, "{name}");
        }
        assert_eq!(lookup(b"getdel").unwrap().since, "6.2.0");
        assert_eq!(lookup(b"expiretime").unwrap().since, "7.0.0");
        assert_eq!(lookup(b"get").unwrap().since, "1.0.0");
    }

    #[test]
    fn expire_flag_combinations() {
        let nx_err = "ERR NX and XX, GT or LT options at the same time are not compatible";
        for opts in [&["nx", "xx"][..], &["NX", "gt"], &["lt", "nx"]] {
            assert_eq!(
                parse_expire_flags(&b(opts)).unwrap_err().to_string(),
                nx_err
            );
        }
        assert_eq!(
            parse_expire_flags(&b(&["gt", "lt"]))
                .unwrap_err()
                .to_string(),
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(
            parse_expire_flags(&b(&["foo"])).unwrap_err().to_string(),
            "ERR Unsupported option foo"
        );
        let f = parse_expire_flags(&b(&["xx", "gt"])).unwrap();
        assert!(f.xx && f.gt);
    }

    #[test]
    fn gt_lt_treat_no_ttl_as_infinite() {
        let gt = ExpireFlags {
            gt: true,
            ..Default::default()
        };
        let lt = ExpireFlags {
            lt: true,
            ..Default::default()
        };
        assert!(!expire_allowed(gt, None, 100));
        assert!(expire_allowed(lt, None, 100));
        assert!(expire_allowed(gt, Some(50), 100));
        assert!(!expire_allowed(gt, Some(100), 100));
        assert!(expire_allowed(lt, Some(150), 100));
        assert!(!expire_allowed(lt, Some(100), 100));
        let nx = ExpireFlags {
            nx: true,
            ..Default::default()
        };
        assert!(expire_allowed(nx, None, 1));
        assert!(!expire_allowed(nx, Some(5), 1));
    }

    #[test]
    fn expire_overflow() {
        let e = |a: &str, s, base| expire_when(a.as_bytes(), s, base, "expire");
        assert_eq!(e("10", true, 5), Ok(10_005));
        assert_eq!(e("-10", true, 0), Ok(-10_000));
        assert!(e("9223372036854775807", true, 0).is_err());
        assert!(e("9223372036854775807", false, 1).is_err());
        assert!(e("-9223372036854775808", true, 0).is_err());
    }

    #[test]
    fn scan_options_and_cursor() {
        assert_eq!(parse_scan_cursor(b"0"), Ok(0));
        assert_eq!(parse_scan_cursor(b"-1"), Ok(u64::MAX));
        assert!(parse_scan_cursor(b"abc").is_err());
        assert!(parse_scan_cursor(b"--1").is_err());
        assert!(parse_scan_cursor(b" 1").is_err());
        assert!(parse_scan_options(&b(&["count"])).is_err());
        assert_eq!(
            parse_scan_options(&b(&["count", "0"])).err(),
            Some(CommandError::Syntax)
        );
        assert_eq!(
            parse_scan_options(&b(&["count", "x"])).err(),
            Some(CommandError::NotInteger)
        );
        let o = parse_scan_options(&b(&["MATCH", "*", "type", "hash", "COUNT", "7"])).unwrap();
        assert!(o.pattern.is_none());
        assert_eq!(o.count, 7);
        assert_eq!(o.type_name, Some(Bytes::from("hash")));
    }
}
