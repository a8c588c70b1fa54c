//! XREAD and XREADGROUP, and their blocking through [`crate::blocking`].
//!
//! A read that finds nothing and has BLOCK registers with [`Ctx::block_on`]
//! under all its keys, its `$` ids replaced by the streams' last ids at that
//! moment (so `$` means "after what was there when it blocked"). Any change
//! to one of the keys (an XADD, a deletion, a group destroyed) makes
//! [`crate::blocking::serve_ready`] run the read again for it: it answers
//! with the new entries of that one stream, or with Redis's error when the
//! stream or the group went away; otherwise the client stays blocked.
//! Inside MULTI a read that would block answers a null array at once.

use std::time::Duration;

use bytes::Bytes;

use super::{entry_reply, id_reply, parse_strict_id, Ctx};
use crate::errors::{stream as err, CmdResult, CommandError};
use crate::keyspace::stream::{Stream, StreamId};
use crate::keyspace::Value;
use crate::pubsub::notify;
use crate::reply::Reply;
use crate::state::State;

/// Redis's `XREAD_BLOCKED_DEFAULT_COUNT`: a blocked read with no COUNT
/// gets at most this many entries.
const BLOCKED_DEFAULT_COUNT: usize = 1000;

/// What a read's id for one stream asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Entries after this id.
    After(StreamId),
    /// `>`: entries the group has not delivered yet.
    New,
}

struct ReadArgs {
    timeout: Option<Option<Duration>>,
    count: usize,
    group: Option<(Bytes, Bytes)>,
    noack: bool,
    /// Index of the first key.
    streams_at: usize,
    keys: Vec<Bytes>,
    wants: Vec<Want>,
}

/// BLOCK's milliseconds: `None` for 0 (forever).
fn block_timeout(arg: &[u8]) -> Result<Option<Duration>, CommandError> {
    let ms = crate::commands::args::parse_i64_strict(arg)
        .ok_or_else(|| CommandError::err(err::TIMEOUT_NOT_INTEGER))?;
    if ms < 0 {
        return Err(CommandError::err(err::TIMEOUT_NEGATIVE));
    }
    Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
}

/// Parses the options up to STREAMS, in `xreadCommand`'s order of checks.
/// `from_script`: called by a running script, where BLOCK is refused.
fn parse_options(
    args: &[Bytes],
    xreadgroup: bool,
    from_script: bool,
) -> Result<ReadArgs, CommandError> {
    let mut out = ReadArgs {
        timeout: None,
        count: 0,
        group: None,
        noack: false,
        streams_at: 0,
        keys: Vec::new(),
        wants: Vec::new(),
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = &args[i];
        let is = |k: &str| o.eq_ignore_ascii_case(k.as_bytes());
        if is("block") && more > 0 {
            if from_script {
                return Err(CommandError::err(format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(&args[0])
                )));
            }
            i += 1;
            out.timeout = Some(block_timeout(&args[i])?);
        } else if is("count") && more > 0 {
            i += 1;
            out.count = super::integer(&args[i])?.max(0) as usize;
        } else if is("streams") && more > 0 {
            out.streams_at = i + 1;
            let n = args.len() - out.streams_at;
            if !n.is_multiple_of(2) {
                let (name, symbol) = if xreadgroup {
                    ("XREADGROUP", '>')
                } else {
                    ("XREAD", '$')
                };
                return Err(CommandError::err(format!(
                    "Unbalanced {name} list of streams: for each stream key an ID or '{symbol}' must be specified."
                )));
            }
            break;
        } else if is("group") && more >= 2 {
            if !xreadgroup {
                return Err(CommandError::err(err::GROUP_ONLY_XREADGROUP));
            }
            out.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if is("noack") {
            if !xreadgroup {
                return Err(CommandError::err(err::NOACK_ONLY_XREADGROUP));
            }
            out.noack = true;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if out.streams_at == 0 {
        return Err(CommandError::Syntax);
    }
    if xreadgroup && out.group.is_none() {
        return Err(CommandError::err(err::MISSING_GROUP));
    }
    Ok(out)
}

/// Resolves each stream's id, checking the keys' types and the group, as
/// Redis does before serving anything.
fn resolve(ctx: &mut Ctx<'_>, args: &[Bytes], r: &mut ReadArgs) -> Result<(), CommandError> {
    let n = (args.len() - r.streams_at) / 2;
    let xreadgroup = r.group.is_some();
    for i in 0..n {
        let key = &args[r.streams_at + i];
        let arg = &args[r.streams_at + n + i];
        let stream = super::read_stream(ctx, key)?;
        if let Some((group, _)) = &r.group {
            if stream.and_then(|s| s.group(group)).is_none() {
                return Err(CommandError::Other(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(group)
                )));
            }
        }
        let want = match &arg[..] {
            b"$" => {
                if xreadgroup {
                    return Err(CommandError::err(err::DOLLAR_IN_XREADGROUP));
                }
                Want::After(stream.map_or(StreamId::MIN, Stream::last_id))
            }
            b">" => {
                if !xreadgroup {
                    return Err(CommandError::err(err::GT_IN_XREAD));
                }
                Want::New
            }
            a => Want::After(parse_strict_id(a, 0)?),
        };
        r.keys.push(key.clone());
        r.wants.push(want);
    }
    Ok(())
}

/// One stream's part of the reply: `[key, entries]` pairs, a map in RESP3.
fn streams_reply(resp: u8, parts: Vec<(Bytes, Reply)>) -> Reply {
    if resp >= 3 {
        Reply::Map(
            parts
                .into_iter()
                .map(|(k, v)| (Reply::Bulk(k), v))
                .collect(),
        )
    } else {
        Reply::Array(
            parts
                .into_iter()
                .map(|(k, v)| Reply::Array(vec![Reply::Bulk(k), v]))
                .collect(),
        )
    }
}

pub(super) fn xread(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    read_cmd(ctx, args, false)
}

pub(super) fn xreadgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    read_cmd(ctx, args, true)
}

fn read_cmd(ctx: &mut Ctx<'_>, args: &[Bytes], xreadgroup: bool) -> CmdResult {
    // Scripts run under the state lock: a script running now is the caller.
    let from_script = ctx.shared.scripts.running().is_some();
    let mut r = parse_options(args, xreadgroup, from_script)?;
    resolve(ctx, args, &mut r)?;
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let resp = if ctx.client.proto == crate::reply::Protocol::Resp2 {
        2
    } else {
        3
    };
    let mut parts = Vec::new();
    for (key, want) in r.keys.iter().zip(&r.wants) {
        let served = match &r.group {
            Some((group, consumer)) => {
                let history = match want {
                    Want::After(id) => Some(*id),
                    _ => None,
                };
                read_group(
                    ctx.state, db, key, group, consumer, history, r.count, r.noack, now, false,
                )
            }
            None => {
                let Want::After(after) = *want else {
                    continue;
                };
                read_plain(ctx.state, db, key, after, r.count, now, false)
            }
        };
        if let Some(entries) = served {
            parts.push((key.clone(), entries));
        }
    }
    if !parts.is_empty() {
        return Ok(streams_reply(resp, parts));
    }
    let Some(timeout) = r.timeout else {
        return Ok(Reply::NullArray);
    };
    // The waiter's copy of the line has `$` resolved to the ids of now, and
    // in place of the command name the protocol its reply takes.
    let mut line = args.to_vec();
    line[0] = Bytes::from_static(if resp >= 3 { b"3" } else { b"2" });
    let n = r.keys.len();
    for (i, want) in r.wants.iter().enumerate() {
        if let Want::After(id) = want {
            line[r.streams_at + n + i] = super::id_bytes(*id);
        }
    }
    let serve = if xreadgroup { serve_group } else { serve_plain };
    let reply = ctx.block_on(r.keys.clone(), &line, timeout, serve, Reply::NullArray)?;
    if let Some(b) = &ctx.blocked {
        ctx.state.blocking.set_try_all(b.waiter_id);
    }
    Ok(reply)
}

/// XREAD of one stream: its entries after `after`, if it has any.
fn read_plain(
    state: &mut State,
    db: usize,
    key: &[u8],
    after: StreamId,
    count: usize,
    now_ms: i64,
    blocked: bool,
) -> Option<Reply> {
    let entry = state.keyspace.db_mut(db).get(key, now_ms)?;
    let Value::Stream(s) = &entry.value else {
        return None;
    };
    // A served waiter compares with the last id ever given, as Redis does.
    let last = if blocked {
        s.last_id()
    } else {
        s.last_entry_id()
    };
    if s.is_empty() && !blocked || last <= after {
        return None;
    }
    let start = after.next()?;
    let entries = s.range(start, StreamId::MAX, count);
    Some(Reply::Array(entries.into_iter().map(entry_reply).collect()))
}

/// XREADGROUP of one stream: the consumer's pending entries from `history`
/// on, or (`None`, the `>` id) entries never delivered to the group.
#[allow(clippy::too_many_arguments)]
fn read_group(
    state: &mut State,
    db: usize,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    history: Option<StreamId>,
    count: usize,
    noack: bool,
    now_ms: i64,
    blocked: bool,
) -> Option<Reply> {
    let d = state.keyspace.db_mut(db);
    let s = d.get_mut(key, now_ms)?.value.as_stream_mut().ok()?;
    let g = s.group(group)?;
    // `>` with nothing past the group's last id: not served now.
    let start = match history {
        Some(id) => id,
        None => {
            let newest = if blocked {
                s.last_id()
            } else {
                s.last_entry_id()
            };
            if s.is_empty() && !blocked || newest <= g.last_id {
                touch_consumer(state, db, key, group, consumer, now_ms);
                return None;
            }
            g.last_id
        }
    };
    touch_consumer(state, db, key, group, consumer, now_ms);
    let s = state
        .keyspace
        .db_mut(db)
        .get_mut(key, now_ms)?
        .value
        .as_stream_mut()
        .ok()?;
    let reply = match history {
        Some(from) => {
            let g = s.group(group)?;
            let c = g.consumers.get(consumer)?;
            // Like `>`, a history read starts after the id given.
            let Some(from) = from.next() else {
                return Some(Reply::Array(Vec::new()));
            };
            let ids: Vec<StreamId> = c
                .pending
                .range(from..)
                .take(if count == 0 { usize::MAX } else { count })
                .copied()
                .collect();
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                match s.get(id) {
                    Some(entry) => {
                        out.push(entry_reply(entry));
                        let g = s.group_mut(group)?;
                        if let Some(n) = g.pel.get_mut(&id) {
                            n.delivery_time = now_ms;
                            n.delivery_count += 1;
                        }
                    }
                    None => out.push(Reply::Array(vec![id_reply(id), Reply::NullArray])),
                }
            }
            Reply::Array(out)
        }
        None => {
            let from = start.next()?;
            let entries = s.range(from, StreamId::MAX, count);
            for (id, _) in &entries {
                s.advance_group(group, *id);
                if !noack {
                    s.group_mut(group)?.deliver(*id, consumer, now_ms, 1);
                }
            }
            Reply::Array(entries.into_iter().map(entry_reply).collect())
        }
    };
    state.dirty += 1;
    Some(reply)
}

/// Creates the consumer if needed (with its event) and sets its seen time.
/// Returns whether it was created.
fn touch_consumer(
    state: &mut State,
    db: usize,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    now_ms: i64,
) -> bool {
    let Some(entry) = state.keyspace.db_mut(db).get_mut(key, now_ms) else {
        return false;
    };
    let Ok(s) = entry.value.as_stream_mut() else {
        return false;
    };
    let Some(g) = s.group_mut(group) else {
        return false;
    };
    let (c, created) = g.consumer_mut(consumer, now_ms);
    c.seen_time = now_ms;
    if created {
        state.key_event(db, notify::STREAM, "xgroup-createconsumer", key, now_ms);
    }
    created
}

/// The waiter's read, parsed again from its line (`$` already resolved).
fn waiter_args(args: &[Bytes], xreadgroup: bool) -> Option<ReadArgs> {
    let mut r = parse_options(args, xreadgroup, false).ok()?;
    let n = (args.len() - r.streams_at) / 2;
    for i in 0..n {
        r.keys.push(args[r.streams_at + i].clone());
        let arg = &args[r.streams_at + n + i];
        r.wants.push(if &arg[..] == b">" {
            Want::New
        } else {
            Want::After(parse_strict_id(arg, 0).ok()?)
        });
    }
    if r.count == 0 {
        r.count = BLOCKED_DEFAULT_COUNT;
    }
    Some(r)
}

fn want_for<'r>(r: &'r ReadArgs, key: &[u8]) -> Option<&'r Want> {
    r.keys
        .iter()
        .position(|k| &k[..] == key)
        .map(|i| &r.wants[i])
}

fn serve_plain(
    state: &mut State,
    db: usize,
    args: &[Bytes],
    ready_key: &[u8],
    now_ms: i64,
) -> Option<Reply> {
    let r = waiter_args(args, false)?;
    let Want::After(after) = *want_for(&r, ready_key)? else {
        return None;
    };
    let entries = read_plain(state, db, ready_key, after, r.count, now_ms, true)?;
    Some(streams_reply(
        resp_of(args),
        vec![(Bytes::copy_from_slice(ready_key), entries)],
    ))
}

fn serve_group(
    state: &mut State,
    db: usize,
    args: &[Bytes],
    ready_key: &[u8],
    now_ms: i64,
) -> Option<Reply> {
    let r = waiter_args(args, true)?;
    let (group, consumer) = r.group.clone()?;
    let d = state.keyspace.db_mut(db);
    match d.get(ready_key, now_ms).map(|e| &e.value) {
        Some(Value::Stream(s)) => {
            if s.group(&group).is_none() {
                state.stats.total_error_replies += 1;
                return Some(Reply::Error(err::NOGROUP_WHILE_BLOCKED.into()));
            }
        }
        _ => {
            state.stats.total_error_replies += 1;
            return Some(Reply::Error(err::UNBLOCKED_KEY_GONE.into()));
        }
    }
    let entries = read_group(
        state, db, ready_key, &group, &consumer, None, r.count, r.noack, now_ms, true,
    )?;
    Some(streams_reply(
        resp_of(args),
        vec![(Bytes::copy_from_slice(ready_key), entries)],
    ))
}

/// The protocol a waiter's reply is shaped for, recorded in its line.
fn resp_of(args: &[Bytes]) -> u8 {
    if &args[0][..] == b"3" {
        3
    } else {
        2
    }
}
