//! Consumer group commands: XGROUP (CREATE, SETID, DESTROY,
//! CREATECONSUMER, DELCONSUMER, HELP), XACK, XPENDING, XCLAIM and
//! XAUTOCLAIM, in the order of checks of Redis 7.0's `t_stream.c`.

use bytes::Bytes;

use super::{
    entry_reply, id_reply, integer, parse_bound, parse_id, parse_strict_id, peek_stream,
    stream_mut, Ctx,
};
use crate::commands::server::{dispatch_sub, help_reply, Sub};
use crate::errors::{stream as err, CmdResult, CommandError};
use crate::keyspace::stream::{Group, Nack, Stream, StreamId, INVALID_ENTRIES_READ};
use crate::keyspace::Value;
use crate::pubsub::notify;
use crate::reply::Reply;

pub(crate) const XGROUP_SUBS: &[Sub] = &[
    Sub {
        name: "create",
        arity: -5,
        handler: xgroup_create,
    },
    Sub {
        name: "setid",
        arity: -5,
        handler: xgroup_setid,
    },
    Sub {
        name: "destroy",
        arity: 4,
        handler: xgroup_destroy,
    },
    Sub {
        name: "createconsumer",
        arity: 5,
        handler: xgroup_createconsumer,
    },
    Sub {
        name: "delconsumer",
        arity: 5,
        handler: xgroup_delconsumer,
    },
    Sub {
        name: "help",
        arity: 2,
        handler: xgroup_help,
    },
];

pub(super) fn xgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "xgroup", XGROUP_SUBS)
}

fn sub_syntax(args: &[Bytes]) -> CommandError {
    CommandError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn no_group_for_key(group: &[u8], key: &[u8]) -> CommandError {
    CommandError::Other(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        lossy(group),
        lossy(key)
    ))
}

fn no_key_or_group(key: &[u8], group: &[u8]) -> CommandError {
    CommandError::Other(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        lossy(key),
        lossy(group)
    ))
}

/// ENTRIESREAD's value: non-negative or -1.
fn entries_read(arg: &[u8]) -> Result<i64, CommandError> {
    let n = integer(arg)?;
    if n < 0 && n != INVALID_ENTRIES_READ {
        return Err(CommandError::err(err::ENTRIES_READ_INVALID));
    }
    Ok(n)
}

/// The stream an XGROUP subcommand works on; it must exist (CREATE with
/// MKSTREAM excepted).
fn xgroup_stream<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
    may_create: bool,
) -> Result<Option<&'c Stream>, CommandError> {
    let s = peek_stream(ctx, key)?;
    if s.is_none() && !may_create {
        return Err(CommandError::err(err::XGROUP_NEEDS_KEY));
    }
    Ok(s)
}

fn xgroup_create(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut mkstream = false;
    let mut read = INVALID_ENTRIES_READ;
    let mut i = 5;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"mkstream") {
            mkstream = true;
            i += 1;
        } else if args[i].eq_ignore_ascii_case(b"entriesread") && i + 1 < args.len() {
            read = entries_read(&args[i + 1])?;
            i += 2;
        } else {
            return Err(sub_syntax(args));
        }
    }
    let (key, name) = (&args[2], &args[3]);
    let existing = xgroup_stream(ctx, key, mkstream)?;
    let last = existing.map(Stream::last_id);
    let existing_missing = existing.is_none();
    if existing.is_some_and(|s| s.group(name).is_some()) {
        // Redis parses the id before finding the group taken.
        if &args[4][..] != b"$" {
            parse_strict_id(&args[4], 0)?;
        }
        return Err(CommandError::Other(err::BUSYGROUP.into()));
    }
    let id = if &args[4][..] == b"$" {
        last.unwrap_or(StreamId::MIN)
    } else {
        parse_strict_id(&args[4], 0)?
    };
    let now = ctx.now_ms;
    let owned_key = Bytes::copy_from_slice(key);
    let s = ctx
        .db()
        .get_or_insert_with(&owned_key, now, || Value::Stream(Stream::new()))
        .value
        .as_stream_mut()?;
    s.groups_mut()
        .insert(Bytes::copy_from_slice(name), Group::new(id, read));
    ctx.dirty(1);
    if existing_missing {
        // MKSTREAM made the key: that is a modification, as in Redis.
        ctx.notify(notify::STREAM, "xgroup-create", key);
    } else {
        ctx.notify_event(notify::STREAM, "xgroup-create", key);
    }
    Ok(Reply::ok())
}

fn xgroup_setid(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut read = INVALID_ENTRIES_READ;
    match args.len() {
        5 => {}
        7 if args[5].eq_ignore_ascii_case(b"entriesread") => read = entries_read(&args[6])?,
        _ => return Err(sub_syntax(args)),
    }
    let (key, name) = (&args[2], &args[3]);
    let s = xgroup_stream(ctx, key, false)?.expect("checked");
    if s.group(name).is_none() {
        return Err(no_group_for_key(name, key));
    }
    let id = if &args[4][..] == b"$" {
        s.last_id()
    } else {
        parse_id(&args[4], 0)?
    };
    let s = stream_mut(ctx, key)?.expect("checked");
    let g = s.group_mut(name).expect("checked");
    g.last_id = id;
    g.entries_read = read;
    ctx.dirty(1);
    ctx.notify_event(notify::STREAM, "xgroup-setid", key);
    Ok(Reply::ok())
}

fn xgroup_destroy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, name) = (&args[2], &args[3]);
    let s = xgroup_stream(ctx, key, false)?.expect("checked");
    if s.group(name).is_none() {
        return Ok(Reply::Integer(0));
    }
    let s = stream_mut(ctx, key)?.expect("checked");
    s.groups_mut().remove(&name[..]);
    ctx.dirty(1);
    ctx.notify_event(notify::STREAM, "xgroup-destroy", key);
    // Clients blocked in XREADGROUP on this group get NOGROUP.
    ctx.signal_key(key);
    Ok(Reply::Integer(1))
}

fn xgroup_createconsumer(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, name, consumer) = (&args[2], &args[3], &args[4]);
    let s = xgroup_stream(ctx, key, false)?.expect("checked");
    let Some(g) = s.group(name) else {
        return Err(no_group_for_key(name, key));
    };
    if g.consumers.contains_key(&consumer[..]) {
        return Ok(Reply::Integer(0));
    }
    let now = ctx.now_ms;
    let s = stream_mut(ctx, key)?.expect("checked");
    s.group_mut(name)
        .expect("checked")
        .consumer_mut(consumer, now);
    ctx.dirty(1);
    ctx.notify_event(notify::STREAM, "xgroup-createconsumer", key);
    Ok(Reply::Integer(1))
}

fn xgroup_delconsumer(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, name, consumer) = (&args[2], &args[3], &args[4]);
    let s = xgroup_stream(ctx, key, false)?.expect("checked");
    let Some(g) = s.group(name) else {
        return Err(no_group_for_key(name, key));
    };
    if !g.consumers.contains_key(&consumer[..]) {
        return Ok(Reply::Integer(0));
    }
    let s = stream_mut(ctx, key)?.expect("checked");
    let pending = s
        .group_mut(name)
        .expect("checked")
        .delete_consumer(consumer)
        .unwrap_or(0);
    ctx.dirty(1);
    ctx.notify_event(notify::STREAM, "xgroup-delconsumer", key);
    Ok(Reply::Integer(pending as i64))
}

fn xgroup_help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    ))
}

pub(super) fn xack(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, name) = (&args[1], &args[2]);
    let Some(s) = super::read_stream(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let Some(g) = s.group(name) else {
        return Ok(Reply::Integer(0));
    };
    let ids = args[3..]
        .iter()
        .map(|a| parse_strict_id(a, 0))
        .collect::<Result<Vec<_>, _>>()?;
    if !ids.iter().any(|id| g.pel.contains_key(id)) {
        return Ok(Reply::Integer(0));
    }
    let s = stream_mut(ctx, key)?.expect("checked");
    let g = s.group_mut(name).expect("checked");
    let acked = ids.into_iter().filter(|id| g.ack(*id)).count();
    ctx.dirty(acked as u64);
    Ok(Reply::Integer(acked as i64))
}

pub(super) fn xpending(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CommandError::Syntax);
    }
    let mut range = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if args[3].eq_ignore_ascii_case(b"idle") {
            min_idle = integer(&args[4])?;
            if argc < 8 {
                return Err(CommandError::Syntax);
            }
            at += 2;
        }
        let count = integer(&args[at + 2])?.max(0) as usize;
        let (mut start, start_ex) = parse_bound(&args[at], 0)?;
        if start_ex {
            start = start
                .next()
                .ok_or_else(|| CommandError::err(err::INVALID_START))?;
        }
        let (mut end, end_ex) = parse_bound(&args[at + 1], u64::MAX)?;
        if end_ex {
            end = end
                .prev()
                .ok_or_else(|| CommandError::err(err::INVALID_END))?;
        }
        let consumer = args.get(at + 3).cloned();
        range = Some((min_idle, start, end, count, consumer));
    }
    let (key, name) = (&args[1], &args[2]);
    let now = ctx.now_ms;
    let s = super::read_stream(ctx, key)?;
    let Some(g) = s.and_then(|s| s.group(name)) else {
        return Err(no_key_or_group(key, name));
    };
    let Some((min_idle, start, end, count, consumer)) = range else {
        if g.pel.is_empty() {
            return Ok(Reply::Array(vec![
                Reply::Integer(0),
                Reply::Null,
                Reply::Null,
                Reply::NullArray,
            ]));
        }
        let first = g.pel.get_min().expect("not empty").0;
        let last = g.pel.get_max().expect("not empty").0;
        let owners = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pending.is_empty())
            .map(|(n, c)| {
                Reply::Array(vec![
                    Reply::Bulk(n.clone()),
                    Reply::Bulk(Bytes::from(c.pending.len().to_string())),
                ])
            })
            .collect();
        return Ok(Reply::Array(vec![
            Reply::Integer(g.pel.len() as i64),
            id_reply(first),
            id_reply(last),
            Reply::Array(owners),
        ]));
    };
    let row = |id: StreamId, n: &Nack| {
        Reply::Array(vec![
            id_reply(id),
            Reply::Bulk(n.consumer.clone()),
            Reply::Integer((now - n.delivery_time).max(0)),
            Reply::Integer(n.delivery_count as i64),
        ])
    };
    let idle_ok = |n: &Nack| min_idle == 0 || now - n.delivery_time >= min_idle;
    let mut out = Vec::new();
    if start > end || count == 0 {
        return Ok(Reply::Array(out));
    }
    match consumer {
        Some(c) => {
            let Some(c) = g.consumers.get(&c[..]) else {
                return Ok(Reply::Array(out));
            };
            for id in c.pending.range(start..=end) {
                if out.len() >= count {
                    break;
                }
                if let Some(n) = g.pel.get(id).filter(|n| idle_ok(n)) {
                    out.push(row(*id, n));
                }
            }
        }
        None => {
            for (id, n) in g.pel.range(start..=end) {
                if out.len() >= count {
                    break;
                }
                if idle_ok(n) {
                    out.push(row(*id, n));
                }
            }
        }
    }
    Ok(Reply::Array(out))
}

/// Moves `id` in group `name` to `consumer` (creating it, with its event)
/// and sets its delivery time and count; `nack_count` gives the new count.
fn claim_one(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    name: &[u8],
    consumer: &[u8],
    id: StreamId,
    time: i64,
    count: impl FnOnce(u64) -> u64,
) {
    let now = ctx.now_ms;
    let Ok(Some(s)) = stream_mut(ctx, key) else {
        return;
    };
    let g = s.group_mut(name).expect("the group exists");
    let (c, created) = g.consumer_mut(consumer, now);
    c.seen_time = now;
    let old = g.pel.get(&id).map_or(0, |n| n.delivery_count);
    g.deliver(id, consumer, time, count(old));
    if created {
        ctx.notify_event(notify::STREAM, "xgroup-createconsumer", key);
    }
}

/// Drops `id` from group `name`'s PEL (its entry is gone from the stream).
fn forget(ctx: &mut Ctx<'_>, key: &[u8], name: &[u8], id: StreamId) {
    if let Ok(Some(s)) = stream_mut(ctx, key) {
        if let Some(g) = s.group_mut(name) {
            g.ack(id);
        }
    }
}

fn claim_error(what: &str, cmd: &str) -> CommandError {
    CommandError::err(format!("Invalid {what} argument for {cmd}"))
}

pub(super) fn xclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, name, consumer) = (&args[1], &args[2], &args[3]);
    let s = super::read_stream(ctx, key)?;
    if s.and_then(|s| s.group(name)).is_none() {
        return Err(no_key_or_group(key, name));
    }
    let min_idle = super::args_int(&args[4])
        .ok_or_else(|| claim_error("min-idle-time", "XCLAIM"))?
        .max(0);
    let mut j = 5;
    let mut ids = Vec::new();
    while j < args.len() {
        match parse_strict_id(&args[j], 0) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.now_ms;
    let (mut force, mut justid) = (false, false);
    let mut time: Option<i64> = None;
    let mut retry: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        let is = |k: &str| opt.eq_ignore_ascii_case(k.as_bytes());
        if is("force") {
            force = true;
        } else if is("justid") {
            justid = true;
        } else if is("idle") && more > 0 {
            j += 1;
            let idle =
                super::args_int(&args[j]).ok_or_else(|| claim_error("IDLE option", "XCLAIM"))?;
            time = Some(now - idle);
        } else if is("time") && more > 0 {
            j += 1;
            time = Some(
                super::args_int(&args[j]).ok_or_else(|| claim_error("TIME option", "XCLAIM"))?,
            );
        } else if is("retrycount") && more > 0 {
            j += 1;
            retry = Some(
                super::args_int(&args[j])
                    .ok_or_else(|| claim_error("RETRYCOUNT option", "XCLAIM"))?,
            );
        } else if is("lastid") && more > 0 {
            j += 1;
            last_id = parse_strict_id(&args[j], 0)?;
        } else {
            return Err(CommandError::err(format!(
                "Unrecognized XCLAIM option '{}'",
                lossy(opt)
            )));
        }
        j += 1;
    }
    let s = peek_stream(ctx, key)?.expect("checked");
    if last_id > s.group(name).expect("checked").last_id {
        stream_mut(ctx, key)?
            .expect("checked")
            .group_mut(name)
            .expect("checked")
            .last_id = last_id;
        ctx.dirty(1);
    }
    let time = match time {
        Some(t) if t >= 0 && t <= now => t,
        _ => now,
    };
    let mut out = Vec::new();
    for id in ids {
        let s = peek_stream(ctx, key)?.expect("checked");
        let g = s.group(name).expect("checked");
        let nack = g.pel.get(&id).cloned();
        let entry = s.get(id);
        let Some(entry) = entry else {
            if nack.is_some() {
                forget(ctx, key, name, id);
                ctx.dirty(1);
            }
            continue;
        };
        let (was_count, fresh) = match &nack {
            Some(n) => (n.delivery_count, false),
            None if force => (1, true),
            None => continue,
        };
        if !fresh && min_idle > 0 {
            let idle = now - nack.as_ref().map_or(now, |n| n.delivery_time);
            if idle < min_idle {
                continue;
            }
        }
        let new_count = match retry {
            Some(r) if r >= 0 => r as u64,
            _ if justid => was_count,
            _ => was_count + 1,
        };
        claim_one(ctx, key, name, consumer, id, time, |_| new_count);
        out.push(if justid {
            id_reply(id)
        } else {
            entry_reply(entry)
        });
        ctx.dirty(1);
    }
    Ok(Reply::Array(out))
}

pub(super) fn xautoclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, name, consumer) = (&args[1], &args[2], &args[3]);
    let min_idle = super::args_int(&args[4])
        .ok_or_else(|| claim_error("min-idle-time", "XAUTOCLAIM"))?
        .max(0);
    let (mut start, start_ex) = parse_bound(&args[5], 0)?;
    if start_ex {
        start = start
            .next()
            .ok_or_else(|| CommandError::err(err::INVALID_START))?;
    }
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if args[j].eq_ignore_ascii_case(b"count") && more > 0 {
            let max = i64::MAX / 16;
            count = super::args_int(&args[j + 1])
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| CommandError::err(err::COUNT_POSITIVE))?;
            j += 1;
        } else if args[j].eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    let s = super::read_stream(ctx, key)?;
    let Some(g) = s.and_then(|s| s.group(name)) else {
        return Err(no_key_or_group(key, name));
    };
    let mut count = count as usize;
    let attempts = count * 10;
    let candidates: Vec<(StreamId, i64)> = g
        .pel
        .range(start..)
        .take(attempts + 1)
        .map(|(id, n)| (*id, n.delivery_time))
        .collect();
    let now = ctx.now_ms;
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut visited = 0;
    for &(id, delivered) in candidates.iter().take(attempts) {
        if count == 0 {
            break;
        }
        visited += 1;
        let s = peek_stream(ctx, key)?.expect("checked");
        let Some(entry) = s.get(id) else {
            forget(ctx, key, name, id);
            ctx.dirty(1);
            deleted.push(id_reply(id));
            count -= 1;
            continue;
        };
        if min_idle > 0 && now - delivered < min_idle {
            continue;
        }
        claim_one(ctx, key, name, consumer, id, now, |c| {
            if justid {
                c
            } else {
                c + 1
            }
        });
        claimed.push(if justid {
            id_reply(id)
        } else {
            entry_reply(entry)
        });
        count -= 1;
        ctx.dirty(1);
    }
    let next = candidates.get(visited).map_or(StreamId::MIN, |c| c.0);
    Ok(Reply::Array(vec![
        id_reply(next),
        Reply::Array(claimed),
        Reply::Array(deleted),
    ]))
}
