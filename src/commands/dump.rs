//! DUMP and RESTORE (and RESTORE-ASKING) with Redis's payload: the value in
//! RDB encoding, the RDB version (10, as Redis 7.0) and a CRC-64, so values
//! move between forkless and redis-server in both directions. The codec is
//! [`crate::rdb`].

use bytes::Bytes;

use super::args;
use super::flags::*;
use super::strings::since;
use super::{spec, CommandSpec, Ctx, KEY1};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::Value;
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
    // forkless keeps no access time or frequency per key (see OBJECT
    // IDLETIME): IDLETIME and FREQ are checked as Redis does, then unused.
    let _ = (idle, freq);
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
    if wakes {
        ctx.signal_key(key);
    }
    ctx.notify(notify::GENERIC, "restore", key);
    ctx.dirty(1);
    Ok(Reply::ok())
}
