//! DUMP and RESTORE (and RESTORE-ASKING) with Redis's payload: the value in
//! RDB encoding, the RDB version (10, as Redis 7.0) and a CRC-64, so values
//! move between forkless and redis-server in both directions; and MIGRATE,
//! which sends them to another server as RESTORE commands. The codec is
//! [`crate::rdb`], the connection [`crate::migrate`].

use bytes::Bytes;

use super::args;
use super::flags::*;
use super::strings::since;
use super::{spec, CommandSpec, Ctx, KEY1};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::access::Tracking;
use crate::keyspace::Value;
use crate::migrate::{self, Auth, IoFailure, Item};
use crate::pubsub::notify;
use crate::rdb;
use crate::reply::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    since(
        spec(
            "dump",
            2,
            READONLY,
            KEY1,
            "keyspace",
            "Returns a serialized representation of the value stored at a key.",
            dump,
        ),
        "2.6.0",
    ),
    since(
        spec(
            "restore",
            -4,
            WRITE | DENYOOM,
            KEY1,
            "keyspace",
            "Creates a key from the serialized representation of a value.",
            restore,
        ),
        "2.6.0",
    ),
    since(
        spec(
            "restore-asking",
            -4,
            WRITE | DENYOOM,
            KEY1,
            "keyspace",
            "An internal command for migrating keys in a cluster.",
            restore,
        ),
        "3.0.0",
    ),
    since(
        spec(
            "migrate",
            -6,
            WRITE,
            (3, 3, 1),
            "keyspace",
            "Atomically transfers a key from one Redis instance to another.",
            migrate_cmd,
        ),
        "2.6.0",
    ),
];

fn dump(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms;
    let payload = ctx
        .db()
        .get(&args[1], now)
        .map(|e| rdb::writer::dump_payload(&e.value));
    match payload {
        Some(p) => {
            ctx.state.stats.keyspace_hits += 1;
            Ok(Reply::Bulk(Bytes::from(p)))
        }
        None => {
            ctx.state.stats.keyspace_misses += 1;
            Ok(Reply::Null)
        }
    }
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], checked
/// in Redis's order: options, an existing key, the TTL, the payload.
fn restore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < args.len() {
        let more = j + 1 < args.len();
        if args::is(&args[j], "replace") {
            replace = true;
        } else if args::is(&args[j], "absttl") {
            absttl = true;
        } else if args::is(&args[j], "idletime") && more && freq.is_none() {
            let v = args::int(&args[j + 1])?;
            if v < 0 {
                return Err(CommandError::err("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v);
            j += 1;
        } else if args::is(&args[j], "freq") && more && idle.is_none() {
            let v = args::int(&args[j + 1])?;
            if !(0..=255).contains(&v) {
                return Err(CommandError::err(
                    "Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            freq = Some(v);
            j += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    let key = &args[1];
    let now = ctx.now_ms;
    if !replace && ctx.db().contains(key, now) {
        return Err(CommandError::BusyKey);
    }
    let mut ttl = args::int(&args[2])?;
    if ttl < 0 {
        return Err(CommandError::err("Invalid TTL value, must be >= 0"));
    }
    let limits = ctx.state.encodings;
    let value: Value = rdb::reader::decode_payload(&args[3], &limits).map_err(|e| match e {
        None => CommandError::DumpPayload,
        Some(_) => CommandError::BadDataFormat,
    })?;
    let deleted = replace && ctx.db().delete(key);
    if ttl != 0 && !absttl {
        ttl = ttl.saturating_add(now);
    }
    if ttl != 0 && ttl <= now {
        // Already expired: the key is gone (a replaced one counts as deleted).
        if deleted {
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "del", key);
        }
        return Ok(Reply::ok());
    }
    let wakes = matches!(value, Value::List(_) | Value::ZSet(_));
    ctx.db()
        .insert(key.clone(), value, (ttl != 0).then_some(ttl));
    if let Some(word) = Tracking::current().restored(now, idle, freq) {
        ctx.db().set_access(key, word);
    }
    if wakes {
        ctx.signal_key(key);
    }
    ctx.notify(notify::GENERIC, "restore", key);
    ctx.dirty(1);
    Ok(Reply::ok())
}

/// MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw]
/// [AUTH2 user pw] [KEYS key...]: the keys go to the target as RESTORE
/// commands; those it accepted are deleted here unless COPY. The server
/// waits for the target meanwhile (at most `timeout` per step), as Redis does.
fn migrate_cmd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (mut copy, mut replace) = (false, false);
    let mut auth: Option<Auth<'_>> = None;
    let mut keys: &[Bytes] = &args[3..4];
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args::is(&args[j], "copy") {
            copy = true;
        } else if args::is(&args[j], "replace") {
            replace = true;
        } else if args::is(&args[j], "auth") {
            if more < 1 {
                return Err(CommandError::Syntax);
            }
            auth = Some(Auth {
                user: None,
                password: &args[j + 1],
            });
            j += 1;
        } else if args::is(&args[j], "auth2") {
            if more < 2 {
                return Err(CommandError::Syntax);
            }
            auth = Some(Auth {
                user: Some(&args[j + 1]),
                password: &args[j + 2],
            });
            j += 2;
        } else if args::is(&args[j], "keys") {
            if !args[3].is_empty() {
                return Err(CommandError::err(
                    "When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys = &args[j + 1..];
            break;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    let timeout = args::int(&args[5])?;
    let db = args::int(&args[4])?;
    let timeout = if timeout <= 0 { 1000 } else { timeout };
    let now = ctx.now_ms;
    let mut items = Vec::new();
    for key in keys {
        let Some(entry) = ctx.db().get(key, now) else {
            continue;
        };
        // Redis sends at least 1 ms of a TTL that is about to run out.
        let ttl_ms = entry.expire_at.map_or(0, |t| (t - now).max(1));
        let payload = rdb::writer::dump_payload(&entry.value);
        items.push(Item {
            key,
            ttl_ms,
            payload,
        });
    }
    if items.is_empty() {
        return Ok(Reply::simple("NOKEY"));
    }
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    let port = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    let timeout = std::time::Duration::from_millis(timeout.unsigned_abs());
    let replies =
        migrate::send(&host, port, timeout, auth, db, &items, replace).map_err(io_error)?;
    // A refused AUTH or SELECT fails every key; otherwise each key whose
    // RESTORE the target accepted leaves this server (unless COPY).
    let mut target_error = replies
        .auth
        .iter()
        .chain([&replies.select])
        .find(|r| r.starts_with('-'))
        .cloned();
    let session_ok = target_error.is_none();
    for (item, reply) in items.iter().zip(&replies.restores) {
        if reply.starts_with('-') {
            target_error.get_or_insert_with(|| reply.clone());
        } else if session_ok && !copy && ctx.db().delete(item.key) {
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "del", item.key);
        }
    }
    if let Some(e) = target_error {
        return Err(CommandError::err(format!(
            "Target instance replied with error: {}",
            &e[1..]
        )));
    }
    if let Some(f) = replies.failure {
        return Err(io_error(f));
    }
    Ok(Reply::ok())
}

fn io_error(f: IoFailure) -> CommandError {
    CommandError::Other(
        match f {
            IoFailure::Connecting => "IOERR error or timeout connecting to the client",
            IoFailure::Writing => "IOERR error or timeout writing to target instance",
            IoFailure::Reading => "IOERR error or timeout reading to target instance",
        }
        .into(),
    )
}
