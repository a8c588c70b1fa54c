//! String commands: GET, SET and its options, GETEX/GETDEL/GETSET, MGET/MSET,
//! APPEND, ranges, the integer and float counters and LCS, with Redis 7.0's
//! replies.

mod lcs;

use bytes::{Bytes, BytesMut};

use super::args;
use super::flags::*;
use super::{spec, CommandSpec, Ctx, KEY1};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::{Key, Value};
use crate::longdouble::{self, SumError};
use crate::pubsub::notify;
use crate::reply::Reply;

/// MGET: every argument is a key.
const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);
/// MSET/MSETNX: every other argument is a key.
const PAIR_KEYS: (i32, i32, i32) = (1, -1, 2);

/// Sets the Redis version a command first appeared in (COMMAND DOCS `since`).
pub(crate) const fn since(spec: CommandSpec, version: &'static str) -> CommandSpec {
    CommandSpec {
        since: version,
        ..spec
    }
}

pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "get",
        2,
        READONLY | FAST,
        KEY1,
        "string",
        "Returns the string value of a key.",
        get,
    ),
    spec(
        "set",
        -3,
        WRITE | DENYOOM,
        KEY1,
        "string",
        "Sets the string value of a key, ignoring its type.",
        set,
    ),
    spec(
        "setnx",
        3,
        WRITE | DENYOOM | FAST,
        KEY1,
        "string",
        "Sets the value of a key only when it does not exist.",
        setnx,
    ),
    since(
        spec(
            "setex",
            4,
            WRITE | DENYOOM,
            KEY1,
            "string",
            "Sets the value and expiration time in seconds of a key.",
            setex,
        ),
        "2.0.0",
    ),
    since(
        spec(
            "psetex",
            4,
            WRITE | DENYOOM,
            KEY1,
            "string",
            "Sets the value and expiration time in milliseconds of a key.",
            psetex,
        ),
        "2.6.0",
    ),
    spec(
        "getset",
        3,
        WRITE | DENYOOM | FAST,
        KEY1,
        "string",
        "Returns the previous value of a key after setting it to a new value.",
        getset,
    ),
    since(
        spec(
            "getdel",
            2,
            WRITE | FAST,
            KEY1,
            "string",
            "Returns the value of a key after deleting the key.",
            getdel,
        ),
        "6.2.0",
    ),
    since(
        spec(
            "getex",
            -2,
            WRITE | FAST,
            KEY1,
            "string",
            "Returns the value of a key after setting its expiration time.",
            getex,
        ),
        "6.2.0",
    ),
    spec(
        "mget",
        -2,
        READONLY | FAST,
        ALL_KEYS,
        "string",
        "Atomically returns the values of one or more keys.",
        mget,
    ),
    since(
        spec(
            "mset",
            -3,
            WRITE | DENYOOM,
            PAIR_KEYS,
            "string",
            "Atomically sets the values of one or more keys.",
            mset,
        ),
        "1.0.1",
    ),
    since(
        spec(
            "msetnx",
            -3,
            WRITE | DENYOOM,
            PAIR_KEYS,
            "string",
            "Atomically sets the values of keys only when none of them exist.",
            msetnx,
        ),
        "1.0.1",
    ),
    since(
        spec(
            "append",
            3,
            WRITE | DENYOOM | FAST,
            KEY1,
            "string",
            "Appends a string to the value of a key.",
            append,
        ),
        "2.0.0",
    ),
    since(
        spec(
            "strlen",
            2,
            READONLY | FAST,
            KEY1,
            "string",
            "Returns the length of a string value.",
            strlen,
        ),
        "2.2.0",
    ),
    since(
        spec(
            "lcs",
            -3,
            READONLY,
            (1, 2, 1),
            "string",
            "Finds the longest common substring.",
            lcs::lcs,
        ),
        "7.0.0",
    ),
    since(
        spec(
            "getrange",
            4,
            READONLY,
            KEY1,
            "string",
            "Returns a substring of the string stored at a key.",
            getrange,
        ),
        "2.4.0",
    ),
    spec(
        "substr",
        4,
        READONLY,
        KEY1,
        "string",
        "Returns a substring from a string value.",
        getrange,
    ),
    since(
        spec(
            "setrange",
            4,
            WRITE | DENYOOM,
            KEY1,
            "string",
            "Overwrites a part of a string value with another by an offset.",
            setrange,
        ),
        "2.2.0",
    ),
    spec(
        "incr",
        2,
        WRITE | DENYOOM | FAST,
        KEY1,
        "string",
        "Increments the integer value of a key by one.",
        incr,
    ),
    spec(
        "decr",
        2,
        WRITE | DENYOOM | FAST,
        KEY1,
        "string",
        "Decrements the integer value of a key by one.",
        decr,
    ),
    spec(
        "incrby",
        3,
        WRITE | DENYOOM | FAST,
        KEY1,
        "string",
        "Increments the integer value of a key by a number.",
        incrby,
    ),
    spec(
        "decrby",
        3,
        WRITE | DENYOOM | FAST,
        KEY1,
        "string",
        "Decrements a number from the integer value of a key.",
        decrby,
    ),
    since(
        spec(
            "incrbyfloat",
            3,
            WRITE | DENYOOM | FAST,
            KEY1,
            "string",
            "Increments the floating point value of a key by a number.",
            incrbyfloat,
        ),
        "2.6.0",
    ),
];

// ---------------------------------------------------------------------------
// Shared helpers

/// Reads `key` as a string, counting a keyspace hit or miss as Redis's
/// `lookupKeyRead` does. Another type is WRONGTYPE (after counting the hit).
fn read_str(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, CommandError> {
    let now = ctx.now_ms;
    let found = ctx.db().get(key, now).map(|e| e.value.clone());
    count_lookup(ctx, found.is_some());
    match found {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(CommandError::WrongType),
    }
}

/// Reads `key` as a string for a write (no hit/miss counted, as `lookupKeyWrite`).
fn write_lookup(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, CommandError> {
    let now = ctx.now_ms;
    match ctx.db().get(key, now) {
        None => Ok(None),
        Some(e) => e.value.as_str().cloned().map(Some),
    }
}

fn count_lookup(ctx: &mut Ctx<'_>, hit: bool) {
    if hit {
        ctx.state.stats.keyspace_hits += 1;
    } else {
        ctx.state.stats.keyspace_misses += 1;
    }
}

/// Stores a new string under `key`, keeping its TTL (INCR, APPEND, SETRANGE).
fn store_keep_ttl(ctx: &mut Ctx<'_>, key: &Key, value: Bytes) {
    let now = ctx.now_ms;
    ctx.db()
        .insert_keep_ttl(key.clone(), Value::Str(value), now);
    ctx.dirty(1);
}

/// Redis's `checkStringLength`: a string may not grow past proto-max-bulk-len.
fn check_string_length(ctx: &Ctx<'_>, size: u64, append: u64) -> Result<(), CommandError> {
    let max = ctx.shared.config().proto_max_bulk_len as u64;
    match size.checked_add(append) {
        Some(total) if total <= max => Ok(()),
        _ => Err(CommandError::StringTooLong),
    }
}

// ---------------------------------------------------------------------------
// SET and its options

/// How an expire argument is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    /// EX: relative seconds.
    Ex,
    /// PX: relative milliseconds.
    Px,
    /// EXAT: absolute Unix seconds.
    ExAt,
    /// PXAT: absolute Unix milliseconds.
    PxAt,
}

/// The options of SET (and, restricted, of GETEX), as Redis's
/// `parseExtendedStringArgumentsOrReply` accepts them.
#[derive(Debug, Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, Bytes)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OptionsFor {
    Set,
    GetEx,
}

/// Parses the options from `opts`. Repeating the same expire option is allowed
/// (the last one wins); mixing two different ones, or NX with XX, or KEEPTTL /
/// PERSIST with an expire, is a syntax error, exactly as in Redis.
fn parse_set_options(opts: &[Bytes], cmd: OptionsFor) -> Result<SetOptions, CommandError> {
    let mut o = SetOptions::default();
    let is_set = cmd == OptionsFor::Set;
    let mut i = 0;
    while i < opts.len() {
        let opt = &opts[i];
        let next = opts.get(i + 1);
        let expire_kind = o.expire.as_ref().map(|(k, _)| *k);
        let expire_allowed = |k: ExpireKind| {
            !o.keepttl && !o.persist && (expire_kind.is_none() || expire_kind == Some(k))
        };
        let kind = [
            ("ex", ExpireKind::Ex),
            ("px", ExpireKind::Px),
            ("exat", ExpireKind::ExAt),
            ("pxat", ExpireKind::PxAt),
        ]
        .into_iter()
        .find(|(name, _)| args::is(opt, name))
        .map(|(_, k)| k);
        if is_set && args::is(opt, "nx") && !o.xx {
            o.nx = true;
        } else if is_set && args::is(opt, "xx") && !o.nx {
            o.xx = true;
        } else if is_set && args::is(opt, "get") {
            o.get = true;
        } else if is_set && args::is(opt, "keepttl") && expire_kind.is_none() {
            o.keepttl = true;
        } else if !is_set && args::is(opt, "persist") && expire_kind.is_none() {
            o.persist = true;
        } else if let (Some(k), Some(value)) = (kind, next) {
            if !expire_allowed(k) {
                return Err(CommandError::Syntax);
            }
            o.expire = Some((k, value.clone()));
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// Turns an expire argument into an absolute Unix time in ms, with Redis's
/// errors: not an integer, or `invalid expire time in '<cmd>' command` for a
/// time <= 0 or one that overflows.
fn expire_at_ms(kind: ExpireKind, arg: &[u8], now_ms: i64, cmd: &str) -> Result<i64, CommandError> {
    let v = args::int(arg)?;
    let invalid = || CommandError::InvalidExpireTime(cmd.to_string());
    let seconds = matches!(kind, ExpireKind::Ex | ExpireKind::ExAt);
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = if seconds { v * 1000 } else { v };
    let at = match kind {
        ExpireKind::Ex | ExpireKind::Px => ms.checked_add(now_ms).ok_or_else(invalid)?,
        ExpireKind::ExAt | ExpireKind::PxAt => ms,
    };
    if at <= 0 {
        return Err(invalid());
    }
    Ok(at)
}

/// What SET replies when NX/XX stop it or when it succeeds.
struct SetReplies {
    ok: Reply,
    aborted: Reply,
}

/// Redis's `setGenericCommand`.
fn set_generic(
    ctx: &mut Ctx<'_>,
    key: &Key,
    value: &Bytes,
    opts: &SetOptions,
    cmd: &str,
    replies: SetReplies,
) -> CmdResult {
    let now = ctx.now_ms;
    let expire_at = match &opts.expire {
        Some((kind, arg)) => Some(expire_at_ms(*kind, arg, now, cmd)?),
        None => None,
    };
    let old = if opts.get {
        Some(read_str(ctx, key)?)
    } else {
        None
    };
    if opts.nx || opts.xx {
        let found = ctx.db().contains(key, now);
        if (opts.nx && found) || (opts.xx && !found) {
            return Ok(match old {
                Some(old) => Reply::bulk_opt(old),
                None => replies.aborted,
            });
        }
    }
    let db = ctx.db();
    if opts.keepttl {
        // A copy: a stored value never shares an argument's buffer.
        db.insert_keep_ttl(key.clone(), Value::Str(Bytes::copy_from_slice(value)), now);
    } else {
        // One walk down the map: no separate existence check, and the
        // record built from the arguments' bytes without cloning them.
        db.insert_str_live(key, value, expire_at, now);
    }
    ctx.dirty(1);
    ctx.notify(notify::STRING, "set", key);
    if expire_at.is_some() {
        ctx.notify(notify::GENERIC, "expire", key);
    }
    Ok(match old {
        Some(old) => Reply::bulk_opt(old),
        None => replies.ok,
    })
}

fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::bulk_opt(read_str(ctx, &args[1])?))
}

fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let opts = parse_set_options(&args[3..], OptionsFor::Set)?;
    let replies = SetReplies {
        ok: Reply::ok(),
        aborted: Reply::Null,
    };
    set_generic(ctx, &args[1], &args[2], &opts, "set", replies)
}

fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let opts = SetOptions {
        nx: true,
        ..SetOptions::default()
    };
    let replies = SetReplies {
        ok: Reply::Integer(1),
        aborted: Reply::Integer(0),
    };
    set_generic(ctx, &args[1], &args[2], &opts, "setnx", replies)
}

fn setex_generic(ctx: &mut Ctx<'_>, args: &[Bytes], kind: ExpireKind, cmd: &str) -> CmdResult {
    let opts = SetOptions {
        expire: Some((kind, args[2].clone())),
        ..SetOptions::default()
    };
    let replies = SetReplies {
        ok: Reply::ok(),
        aborted: Reply::Null,
    };
    set_generic(ctx, &args[1], &args[3], &opts, cmd, replies)
}

fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, ExpireKind::Ex, "setex")
}

fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    setex_generic(ctx, args, ExpireKind::Px, "psetex")
}

fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let old = read_str(ctx, &args[1])?;
    let now = ctx.now_ms;
    ctx.db().insert_str_live(&args[1], &args[2], None, now);
    ctx.dirty(1);
    ctx.notify(notify::STRING, "set", &args[1]);
    Ok(Reply::bulk_opt(old))
}

fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let old = read_str(ctx, &args[1])?;
    if old.is_some() {
        ctx.db().delete(&args[1]);
        ctx.dirty(1);
        ctx.notify(notify::GENERIC, "del", &args[1]);
    }
    Ok(Reply::bulk_opt(old))
}

fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let opts = parse_set_options(&args[2..], OptionsFor::GetEx)?;
    let key = &args[1];
    let Some(value) = read_str(ctx, key)? else {
        return Ok(Reply::Null);
    };
    let now = ctx.now_ms;
    if let Some((kind, arg)) = &opts.expire {
        let at = expire_at_ms(*kind, arg, now, "getex")?;
        let db = ctx.db();
        let event = if at <= now {
            db.delete(key);
            "del"
        } else {
            db.set_expire(key, Some(at));
            "expire"
        };
        ctx.dirty(1);
        ctx.notify(notify::GENERIC, event, key);
    } else if opts.persist {
        let db = ctx.db();
        let had_ttl = db.get(key, now).is_some_and(|e| e.expire_at.is_some());
        if had_ttl {
            db.set_expire(key, None);
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "persist", key);
        }
    }
    Ok(Reply::Bulk(value))
}

fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms;
    let mut out = Vec::with_capacity(args.len() - 1);
    for key in &args[1..] {
        let found = ctx.db().get(key, now).map(|e| e.value.clone());
        count_lookup(ctx, found.is_some());
        out.push(match found {
            Some(Value::Str(s)) => Reply::Bulk(s),
            _ => Reply::Null,
        });
    }
    Ok(Reply::Array(out))
}

fn mset_pairs(args: &[Bytes]) -> Result<&[Bytes], CommandError> {
    if args.len().is_multiple_of(2) {
        return Err(CommandError::wrong_arity(&String::from_utf8_lossy(
            &args[0],
        )));
    }
    Ok(&args[1..])
}

fn mset_all(ctx: &mut Ctx<'_>, pairs: &[Bytes]) {
    let now = ctx.now_ms;
    let db = ctx.db();
    for pair in pairs.chunks_exact(2) {
        db.insert_str(&pair[0], &pair[1], None, now);
    }
    ctx.dirty((pairs.len() / 2) as u64);
    for pair in pairs.chunks_exact(2) {
        ctx.notify(notify::STRING, "set", &pair[0]);
    }
}

fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let pairs = mset_pairs(args)?;
    mset_all(ctx, pairs);
    Ok(Reply::ok())
}

fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let pairs = mset_pairs(args)?;
    let now = ctx.now_ms;
    let db = ctx.db();
    if pairs.chunks_exact(2).any(|p| db.contains(&p[0], now)) {
        return Ok(Reply::Integer(0));
    }
    mset_all(ctx, pairs);
    Ok(Reply::Integer(1))
}

// ---------------------------------------------------------------------------
// APPEND, STRLEN, GETRANGE, SETRANGE

fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let new = match write_lookup(ctx, key)? {
        None => args[2].clone(),
        Some(old) => {
            check_string_length(ctx, old.len() as u64, args[2].len() as u64)?;
            let mut buf = BytesMut::with_capacity(old.len() + args[2].len());
            buf.extend_from_slice(&old);
            buf.extend_from_slice(&args[2]);
            buf.freeze()
        }
    };
    let len = new.len() as i64;
    store_keep_ttl(ctx, key, new);
    ctx.notify(notify::STRING, "append", key);
    Ok(Reply::Integer(len))
}

fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let len = read_str(ctx, &args[1])?.map_or(0, |s| s.len());
    Ok(Reply::Integer(len as i64))
}

/// The byte range GETRANGE returns for a string of `len` bytes, by Redis's rules
/// (negative indexes count from the end; clamped; empty when inverted).
fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    (start <= end).then_some((start as usize, end as usize))
}

fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let start = args::int(&args[2])?;
    let end = args::int(&args[3])?;
    let Some(s) = read_str(ctx, &args[1])? else {
        return Ok(Reply::Bulk(Bytes::new()));
    };
    Ok(Reply::Bulk(match clamp_range(start, end, s.len()) {
        Some((a, b)) => s.slice(a..=b),
        None => Bytes::new(),
    }))
}

fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let offset = args::int(&args[2])?;
    if offset < 0 {
        return Err(CommandError::err("offset is out of range"));
    }
    let (key, value) = (&args[1], &args[3]);
    let old = write_lookup(ctx, key)?;
    if value.is_empty() {
        // Nothing to write: a missing key stays missing.
        return Ok(Reply::Integer(old.map_or(0, |s| s.len() as i64)));
    }
    check_string_length(ctx, offset as u64, value.len() as u64)?;
    let old = old.unwrap_or_default();
    let offset = offset as usize;
    let new_len = old.len().max(offset + value.len());
    let mut buf = BytesMut::with_capacity(new_len);
    buf.extend_from_slice(&old);
    buf.resize(new_len, 0);
    buf[offset..offset + value.len()].copy_from_slice(value);
    store_keep_ttl(ctx, key, buf.freeze());
    ctx.notify(notify::STRING, "setrange", key);
    Ok(Reply::Integer(new_len as i64))
}

// ---------------------------------------------------------------------------
// Counters

fn incr_decr(ctx: &mut Ctx<'_>, key: &Key, by: i64) -> CmdResult {
    let now = ctx.now_ms;
    let new = ctx.db().incr_by(key, by, now)?;
    ctx.dirty(1);
    ctx.notify(notify::STRING, "incrby", key);
    Ok(Reply::Integer(new))
}

fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    incr_decr(ctx, &args[1], 1)
}

fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    incr_decr(ctx, &args[1], -1)
}

fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let by = args::int(&args[2])?;
    incr_decr(ctx, &args[1], by)
}

fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let by = args::int(&args[2])?;
    // Negating i64::MIN would overflow before the addition is even tried.
    let neg = by
        .checked_neg()
        .ok_or_else(|| CommandError::err("decrement would overflow"))?;
    incr_decr(ctx, &args[1], neg)
}

fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let current = write_lookup(ctx, key)?.unwrap_or_else(|| Bytes::from_static(b"0"));
    // In long double, as Redis: see crate::longdouble.
    let text = longdouble::add(&current, &args[2]).map_err(|e| match e {
        SumError::FirstNotFloat | SumError::SecondNotFloat => CommandError::NotFloat,
        SumError::NanOrInfinity => CommandError::NanOrInfinity,
    })?;
    store_keep_ttl(ctx, key, text.clone());
    ctx.notify(notify::STRING, "incrbyfloat", key);
    Ok(Reply::Bulk(text))
}

/// Runs commands against an in-process state, for unit tests of command
/// families that need keys of types their own commands cannot create.
#[cfg(test)]
pub(crate) mod harness {
    use argh::FromArgs;
    use bytes::Bytes;

    use crate::clients::ClientState;
    use crate::commands::{execute, Ctx};
    use crate::config::{Args, Config};
    use crate::keyspace::Value;
    use crate::reply::Reply;
    use crate::state::Shared;

    pub struct Harness {
        pub shared: Shared,
        pub client: ClientState,
        pub now_ms: i64,
    }

    impl Harness {
        pub fn new() -> Harness {
            let args = Args::from_args(&["forkless"], &[]).expect("default args");
            let shared = Shared::new(Config::from_args(&args).expect("default config"));
            let info = shared.clients.register("test".into(), "test".into());
            let client = ClientState::new(1, "test".into(), "test".into(), info);
            Harness {
                shared,
                client,
                now_ms: 1_700_000_000_000,
            }
        }

        pub fn run(&mut self, cmd: &[&str]) -> Reply {
            let args: Vec<Bytes> = cmd
                .iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect();
            let mut state = self.shared.lock();
            let mut ctx = Ctx {
                shared: &self.shared,
                state: &mut state,
                client: &mut self.client,
                now_ms: self.now_ms,
                blocked: None,
                may_block: false,
            };
            execute(&mut ctx, &args)
        }

        /// Stores a value of any type directly, with no TTL.
        pub fn put(&mut self, key: &str, value: Value) {
            let db = self.client.db;
            self.shared.lock().keyspace.db_mut(db).insert(
                Bytes::copy_from_slice(key.as_bytes()),
                value,
                None,
            );
        }

        pub fn dirty(&self) -> u64 {
            self.shared.lock().dirty
        }
    }

    pub fn err(text: &str) -> Reply {
        Reply::Error(text.to_string())
    }

    pub fn bulk(text: &str) -> Reply {
        Reply::bulk_str(text)
    }

    pub fn a_list() -> Value {
        Value::List(crate::keyspace::List::from_iter(["x"]))
    }
}

#[cfg(test)]
mod tests {
    use super::harness::*;
    use super::*;

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    #[test]
    fn string_commands_refuse_other_types() {
        let mut h = Harness::new();
        h.put("l", a_list());
        for cmd in [
            &["get", "l"][..],
            &["set", "l", "v", "get"],
            &["getset", "l", "v"],
            &["getdel", "l"],
            &["getex", "l", "persist"],
            &["append", "l", "x"],
            &["strlen", "l"],
            &["getrange", "l", "0", "1"],
            &["setrange", "l", "0", "x"],
            &["incr", "l"],
            &["decrby", "l", "2"],
            &["incrbyfloat", "l", "1.5"],
        ] {
            assert_eq!(h.run(cmd), err(WRONGTYPE), "{cmd:?}");
        }
        assert_eq!(h.dirty(), 0, "a refused command changes nothing");
        assert_eq!(
            h.run(&["mget", "l", "nokey"]),
            Reply::Array(vec![Reply::Null, Reply::Null])
        );
        // SET (without GET) replaces any type.
        assert_eq!(h.run(&["set", "l", "v"]), Reply::ok());
        assert_eq!(h.run(&["get", "l"]), bulk("v"));
    }

    #[test]
    fn counters_dirty_and_stats() {
        let mut h = Harness::new();
        assert_eq!(h.run(&["incrby", "n", "5"]), Reply::Integer(5));
        assert_eq!(h.run(&["incrbyfloat", "n", "0.5"]), bulk("5.5"));
        assert_eq!(h.run(&["mset", "a", "1", "b", "2"]), Reply::ok());
        assert_eq!(h.dirty(), 4);
        h.run(&["get", "a"]);
        h.run(&["get", "nokey"]);
        h.run(&["mget", "a", "b", "nokey"]);
        let stats = h.shared.lock().stats.clone();
        assert_eq!((stats.keyspace_hits, stats.keyspace_misses), (3, 2));
    }

    #[test]
    fn ttl_survives_counters_and_keepttl_only() {
        let mut h = Harness::new();
        h.run(&["set", "k", "1", "px", "5000"]);
        h.run(&["incr", "k"]);
        h.run(&["append", "k", "0"]);
        h.run(&["set", "k", "x", "keepttl"]);
        assert_eq!(h.run(&["pttl", "k"]), Reply::Integer(5000));
        h.run(&["set", "k", "y"]);
        assert_eq!(h.run(&["pttl", "k"]), Reply::Integer(-1));
        h.run(&["set", "k", "1", "px", "5000"]);
        h.now_ms += 5000;
        assert_eq!(h.run(&["get", "k"]), Reply::Null, "expired at its deadline");
        let db = h.shared.lock().keyspace.db(0).clone();
        db.check_invariants().unwrap();
    }

    fn b(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn set_option_conflicts_are_syntax_errors() {
        let bad: &[&[&str]] = &[
            &["nx", "xx"],
            &["xx", "nx"],
            &["ex", "10", "px", "100"],
            &["keepttl", "ex", "10"],
            &["ex", "10", "keepttl"],
            &["ex"],
            &["persist"],
            &["foo"],
        ];
        for opts in bad {
            assert_eq!(
                parse_set_options(&b(opts), OptionsFor::Set).unwrap_err(),
                CommandError::Syntax,
                "{opts:?}"
            );
        }
        let o =
            parse_set_options(&b(&["ex", "10", "EX", "20", "get", "nx"]), OptionsFor::Set).unwrap();
        assert!(o.nx && o.get);
        assert_eq!(o.expire.unwrap().1, Bytes::from("20"));
        for opts in [&["nx"][..], &["get"], &["keepttl"], &["persist", "ex", "1"]] {
            assert!(parse_set_options(&b(opts), OptionsFor::GetEx).is_err());
        }
        assert!(
            parse_set_options(&b(&["persist"]), OptionsFor::GetEx)
                .unwrap()
                .persist
        );
    }

    #[test]
    fn expire_times() {
        let now = 1_000_000;
        assert_eq!(
            expire_at_ms(ExpireKind::Ex, b"10", now, "set"),
            Ok(now + 10_000)
        );
        assert_eq!(expire_at_ms(ExpireKind::PxAt, b"5", now, "set"), Ok(5));
        let invalid = Err(CommandError::InvalidExpireTime("set".into()));
        assert_eq!(expire_at_ms(ExpireKind::Ex, b"0", now, "set"), invalid);
        assert_eq!(expire_at_ms(ExpireKind::Px, b"-5", now, "set"), invalid);
        assert_eq!(
            expire_at_ms(ExpireKind::Ex, b"9223372036854775", now, "set"),
            invalid
        );
        assert_eq!(
            expire_at_ms(ExpireKind::Px, b"9223372036854775807", now, "set"),
            invalid
        );
        assert_eq!(
            expire_at_ms(ExpireKind::Ex, b"x", now, "set"),
            Err(CommandError::NotInteger)
        );
    }

    #[test]
    fn ranges_follow_redis() {
        assert_eq!(clamp_range(0, -1, 11), Some((0, 10)));
        assert_eq!(clamp_range(-3, -1, 11), Some((8, 10)));
        assert_eq!(clamp_range(-1, -3, 11), None);
        assert_eq!(clamp_range(5, 3, 11), None);
        assert_eq!(clamp_range(0, 100, 11), Some((0, 10)));
        assert_eq!(clamp_range(-100, 2, 11), Some((0, 2)));
        assert_eq!(clamp_range(0, -1, 0), None);
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
    }
}
