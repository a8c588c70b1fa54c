//! Stream commands: XADD, XLEN, XRANGE/XREVRANGE, XDEL, XTRIM and XSETID
//! here; reads (XREAD, XREADGROUP and their blocking) in [`read`], consumer
//! groups (XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM) in [`groups`], XINFO
//! in [`info`]. Replies, errors and their order follow Redis 7.0's
//! `t_stream.c`; the representation is [`crate::keyspace::stream`].

mod groups;
mod info;
mod read;

pub(crate) use groups::XGROUP_SUBS;
pub(crate) use info::XINFO_SUBS;

use bytes::Bytes;

use super::flags::*;
use super::{spec, CommandSpec, Ctx, KEY1, NO_KEYS};
use crate::errors::{stream as err, CmdResult, CommandError};
use crate::keyspace::stream::id::ID_TEXT_MAX;
use crate::keyspace::stream::{OwnedEntry, Stream, StreamId, Trim, TrimTo};
use crate::keyspace::Value;
use crate::pubsub::notify;
use crate::reply::Reply;

const fn since(version: &'static str, spec: CommandSpec) -> CommandSpec {
    CommandSpec {
        since: version,
        ..spec
    }
}

/// XREAD's and XREADGROUP's keys are found after STREAMS (see
/// [`stream_keys`]); the table names none.
pub const MOVABLE: (i32, i32, i32) = (0, 0, 0);

pub const COMMANDS: &[CommandSpec] = &[
    since(
        "5.0.0",
        spec("xadd", -5, WRITE | DENYOOM | FAST, KEY1, "stream", "Appends a new entry to a stream", xadd),
    ),
    since(
        "5.0.0",
        spec("xlen", 2, READONLY | FAST, KEY1, "stream", "Return the number of entries in a stream", xlen),
    ),
    since(
        "5.0.0",
        spec(
            "xrange",
            -4,
            READONLY,
            KEY1,
            "stream",
            "Return a range of elements in a stream, with IDs matching the specified IDs interval",
            xrange,
        ),
    ),
    since(
        "5.0.0",
        spec(
            "xrevrange",
            -4,
            READONLY,
            KEY1,
            "stream",
            "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE",
            xrevrange,
        ),
    ),
    since(
        "5.0.0",
        spec(
            "xdel",
            -3,
            WRITE | FAST,
            KEY1,
            "stream",
            "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.",
            xdel,
        ),
    ),
    since(
        "5.0.0",
        spec(
            "xtrim",
            -4,
            WRITE,
            KEY1,
            "stream",
            "Trims the stream to (approximately if '~' is passed) a certain size",
            xtrim,
        ),
    ),
    since(
        "5.0.0",
        spec(
            "xsetid",
            -3,
            WRITE | DENYOOM | FAST,
            KEY1,
            "stream",
            "An internal command for replicating stream values",
            xsetid,
        ),
    ),
    since(
        "5.0.0",
        spec(
            "xread",
            -4,
            READONLY | BLOCKING,
            MOVABLE,
            "stream",
            "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.",
            read::xread,
        ),
    ),
    since(
        "5.0.0",
        spec(
            "xreadgroup",
            -7,
            WRITE | BLOCKING,
            MOVABLE,
            "stream",
            "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.",
            read::xreadgroup,
        ),
    ),
    since(
        "5.0.0",
        spec("xgroup", -2, 0, NO_KEYS, "stream", "A container for consumer groups commands", groups::xgroup),
    ),
    since(
        "5.0.0",
        spec(
            "xack",
            -4,
            WRITE | FAST,
            KEY1,
            "stream",
            "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.",
            groups::xack,
        ),
    ),
    since(
        "5.0.0",
        spec(
            "xpending",
            -3,
            READONLY,
            KEY1,
            "stream",
            "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.",
            groups::xpending,
        ),
    ),
    since(
        "5.0.0",
        spec(
            "xclaim",
            -6,
            WRITE | FAST,
            KEY1,
            "stream",
            "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.",
            groups::xclaim,
        ),
    ),
    since(
        "6.2.0",
        spec(
            "xautoclaim",
            -6,
            WRITE | FAST,
            KEY1,
            "stream",
            "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.",
            groups::xautoclaim,
        ),
    ),
    since(
        "5.0.0",
        spec("xinfo", -2, 0, NO_KEYS, "stream", "A container for stream introspection commands", info::xinfo),
    ),
];

/// The keys of an XREAD or XREADGROUP line: the first half of the words
/// after STREAMS (COMMAND GETKEYS); `None` when the line has no balanced
/// STREAMS list.
pub fn stream_keys(line: &[Bytes]) -> Option<Vec<Bytes>> {
    let at = line
        .iter()
        .position(|a| a.eq_ignore_ascii_case(b"streams"))?;
    let rest = &line[at + 1..];
    // As Redis's key spec: the first half, rounded down, of what follows.
    let keys = &rest[..rest.len() / 2];
    (!keys.is_empty()).then(|| keys.to_vec())
}

// ---------------------------------------------------------------------------
// Ids, lookups and replies shared by the stream commands.

fn invalid_id() -> CommandError {
    CommandError::err(err::INVALID_ID)
}

/// Redis's `streamGenericParseIDOrReply`: `-`, `+` (unless `strict`),
/// `<ms>`, `<ms>-<seq>`; with `seq_star`, `<ms>-*` too (the bool is then
/// false: the sequence is to be generated).
fn parse_id_full(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_star: bool,
) -> Result<(StreamId, bool), CommandError> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    if !strict {
        match arg {
            b"-" => return Ok((StreamId::MIN, true)),
            b"+" => return Ok((StreamId::MAX, true)),
            _ => {}
        }
    }
    if seq_star {
        if let Some(ms) = arg.strip_suffix(b"-*") {
            let ms = crate::keyspace::stream::id::parse_u64(ms).ok_or_else(invalid_id)?;
            return Ok((StreamId::new(ms, 0), false));
        }
    }
    StreamId::parse(arg, missing_seq)
        .map(|id| (id, true))
        .ok_or_else(invalid_id)
}

/// An id where `-` and `+` mean the smallest and greatest.
pub(super) fn parse_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, CommandError> {
    parse_id_full(arg, missing_seq, false, false).map(|(id, _)| id)
}

/// An id that must be explicit (no `-` or `+`).
pub(super) fn parse_strict_id(arg: &[u8], missing_seq: u64) -> Result<StreamId, CommandError> {
    parse_id_full(arg, missing_seq, true, false).map(|(id, _)| id)
}

/// An interval bound: an id or `(`id (exclusive, explicit). Returns the id
/// and whether it is exclusive.
pub(super) fn parse_bound(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CommandError> {
    match arg.strip_prefix(b"(") {
        Some(rest) if !rest.is_empty() => Ok((parse_strict_id(rest, missing_seq)?, true)),
        _ => Ok((parse_id(arg, missing_seq)?, false)),
    }
}

/// `[id, [field, value, ...]]`.
pub(super) fn entry_reply((id, fields): OwnedEntry) -> Reply {
    let mut flat = Vec::with_capacity(fields.len() * 2);
    for (f, v) in fields {
        flat.push(Reply::Bulk(f));
        flat.push(Reply::Bulk(v));
    }
    Reply::Array(vec![id_reply(id), Reply::Array(flat)])
}

pub(super) fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id_bytes(id))
}

/// The id's text, in one allocation.
pub(super) fn id_bytes(id: StreamId) -> Bytes {
    let mut buf = [0; ID_TEXT_MAX];
    Bytes::copy_from_slice(id.text(&mut buf))
}

pub(super) fn entries_reply(entries: Vec<OwnedEntry>) -> Reply {
    Reply::Array(entries.into_iter().map(entry_reply).collect())
}

/// The stream at `key` for reading, counting a keyspace hit or miss.
pub(super) fn read_stream<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c Stream>, CommandError> {
    super::hashes::lookup_read(ctx, key)
        .map(Value::as_stream)
        .transpose()
}

/// The stream at `key` for writing (no statistics, as `lookupKeyWrite`).
pub(super) fn stream_mut<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut Stream>, CommandError> {
    let now = ctx.now_ms;
    ctx.db()
        .get_mut(key, now)
        .map(|e| e.value.as_stream_mut())
        .transpose()
}

/// The stream at `key` read by a write command, without copying anything a
/// snapshot shares.
pub(super) fn peek_stream<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c Stream>, CommandError> {
    let now = ctx.now_ms;
    ctx.db()
        .get(key, now)
        .map(|e| e.value.as_stream())
        .transpose()
}

fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    super::args::int(arg)
}

// ---------------------------------------------------------------------------
// XADD and XTRIM's shared options.

/// What `streamParseAddOrTrimArgsOrReply` gathers.
#[derive(Default)]
struct AddTrimArgs {
    trim: Option<Trim>,
    no_mkstream: bool,
    /// XADD: the id's position.
    id_at: usize,
}

fn parse_add_trim(ctx: &Ctx<'_>, args: &[Bytes], xadd: bool) -> Result<AddTrimArgs, CommandError> {
    let mut out = AddTrimArgs::default();
    let mut to: Option<TrimTo> = None;
    let mut approx = false;
    let mut limit: Option<i64> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i][..];
        let is = |k: &str| opt.eq_ignore_ascii_case(k.as_bytes());
        if xadd && opt == b"*" {
            break;
        } else if (is("maxlen") || is("minid")) && more > 0 {
            if to.is_some() {
                return Err(CommandError::err(err::MAXLEN_AND_MINID));
            }
            approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && next == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let value = &args[i + 1];
            to = Some(if is("maxlen") {
                let n = integer(value)?;
                if n < 0 {
                    return Err(CommandError::err(err::MAXLEN_NEGATIVE));
                }
                TrimTo::MaxLen(n as u64)
            } else {
                TrimTo::MinId(parse_strict_id(value, 0)?)
            });
            i += 1;
        } else if is("limit") && more > 0 {
            let n = integer(&args[i + 1])?;
            if n < 0 {
                return Err(CommandError::err(err::LIMIT_NEGATIVE));
            }
            limit = Some(n);
            i += 1;
        } else if xadd && is("nomkstream") {
            out.no_mkstream = true;
        } else if xadd {
            break;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    out.id_at = i;
    if limit.is_some_and(|l| l != 0) && to.is_none() {
        return Err(CommandError::err(err::LIMIT_WITHOUT_STRATEGY));
    }
    if !xadd && to.is_none() {
        return Err(CommandError::err(err::XTRIM_WITHOUT_STRATEGY));
    }
    let limit = match limit {
        Some(_) if !approx => return Err(CommandError::err(err::LIMIT_WITHOUT_APPROX)),
        Some(l) => l as u64,
        None if approx => {
            // Redis's default: 100 nodes' worth, within [1, 1M]; 10000
            // when nodes have no entry limit.
            match 100 * ctx.state.encodings.stream_node_max_entries as u64 {
                0 => 10_000,
                l => l.min(1_000_000),
            }
        }
        None => 0,
    };
    out.trim = to.map(|to| Trim { to, approx, limit });
    Ok(out)
}

/// The id XADD gives the entry: `*` from the clock, `<ms>-*` after the
/// last id, or as given; errors as `streamAppendItem`.
fn next_id(
    last: StreamId,
    given: Option<(StreamId, bool)>,
    now_ms: i64,
) -> Result<StreamId, CommandError> {
    let id = match given {
        None => {
            let ms = now_ms.max(0) as u64;
            if ms > last.ms {
                StreamId::new(ms, 0)
            } else {
                last.next()
                    .ok_or_else(|| CommandError::err(err::EXHAUSTED))?
            }
        }
        Some((id, true)) => id,
        Some((id, false)) if id.ms == last.ms => {
            if last.seq == u64::MAX {
                return Err(CommandError::err(err::XADD_NOT_GREATER));
            }
            StreamId::new(last.ms, last.seq + 1)
        }
        Some((id, false)) => id,
    };
    if given.is_some() && id <= last {
        return Err(CommandError::err(err::XADD_NOT_GREATER));
    }
    Ok(id)
}

fn xadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let opts = parse_add_trim(ctx, args, true)?;
    let id_at = opts.id_at;
    let given = match args.get(id_at) {
        Some(a) if &a[..] == b"*" => None,
        Some(a) => Some(parse_id_full(a, 0, true, true)?),
        None => None,
    };
    let field_at = id_at + 1;
    if args.len() < field_at + 2 || (args.len() - field_at) % 2 == 1 {
        return Err(CommandError::wrong_arity("xadd"));
    }
    if let Some((id, true)) = given {
        if id.is_zero() {
            return Err(CommandError::err(err::XADD_ZERO));
        }
    }
    let key = &args[1];
    let now = ctx.now_ms;
    let limits = ctx.state.encodings.stream_nodes();
    // The pairs as slices, on the stack for the usual few fields.
    let flat = &args[field_at..];
    let mut stack: [(&[u8], &[u8]); 8] = [(&[], &[]); 8];
    let heap: Vec<(&[u8], &[u8])>;
    let fields: &[(&[u8], &[u8])] = if flat.len() <= 2 * stack.len() {
        for (slot, p) in stack.iter_mut().zip(flat.chunks(2)) {
            *slot = (&p[0], &p[1]);
        }
        &stack[..flat.len() / 2]
    } else {
        heap = flat.chunks(2).map(|p| (&p[0][..], &p[1][..])).collect();
        &heap
    };
    let add = |stream: &mut Stream| -> Result<(StreamId, u64), CommandError> {
        if stream.last_id() == StreamId::MAX {
            return Err(CommandError::err(err::EXHAUSTED));
        }
        let id = next_id(stream.last_id(), given, now)?;
        stream.append(id, fields, limits);
        let trimmed = opts.trim.map(|t| stream.trim(t)).unwrap_or(0);
        Ok((id, trimmed))
    };
    // One walk down the keyspace when the stream exists.
    let added = match ctx.db().get_mut(key, now) {
        Some(e) => Some(add(e.value.as_stream_mut()?)),
        None => None,
    };
    let (id, trimmed) = match added {
        Some(done) => done?,
        None => {
            if opts.no_mkstream {
                return Ok(Reply::Null);
            }
            let owned_key = Bytes::copy_from_slice(key);
            ctx.db()
                .insert(owned_key, Value::Stream(Stream::new()), None);
            let e = ctx.db().get_mut(key, now).expect("just inserted");
            add(e.value.as_stream_mut()?)?
        }
    };
    ctx.dirty(1);
    ctx.notify(notify::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(notify::STREAM, "xtrim", key);
    }
    ctx.signal_key(key);
    Ok(id_reply(id))
}

fn xtrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let opts = parse_add_trim(ctx, args, false)?;
    let Some(trim) = opts.trim else {
        return Ok(Reply::Integer(0));
    };
    let Some(stream) = stream_mut(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let n = stream.trim(trim);
    if n > 0 {
        ctx.notify(notify::STREAM, "xtrim", key);
        ctx.dirty(n);
    }
    Ok(Reply::Integer(n as i64))
}

fn xlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(
        read_stream(ctx, &args[1])?.map_or(0, |s| s.len() as i64),
    ))
}

fn xrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    range_cmd(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    range_cmd(ctx, args, true)
}

fn range_cmd(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let (mut start, start_ex) = parse_bound(start_arg, 0)?;
    let (mut end, end_ex) = parse_bound(end_arg, u64::MAX)?;
    if start_ex {
        start = start
            .next()
            .ok_or_else(|| CommandError::err(err::INVALID_START))?;
    }
    if end_ex {
        end = end
            .prev()
            .ok_or_else(|| CommandError::err(err::INVALID_END))?;
    }
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            count = integer(&args[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let Some(stream) = read_stream(ctx, &args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count == 0 {
        return Ok(Reply::NullArray);
    }
    let count = if count < 0 { 0 } else { count as usize };
    let entries = if rev {
        stream.rev_range(start, end, count)
    } else {
        stream.range(start, end, count)
    };
    Ok(entries_reply(entries))
}

fn xdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(stream) = peek_stream(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let ids = args[2..]
        .iter()
        .map(|a| parse_strict_id(a, 0))
        .collect::<Result<Vec<_>, _>>()?;
    if !ids.iter().any(|id| stream.contains(*id)) {
        return Ok(Reply::Integer(0));
    }
    let Some(stream) = stream_mut(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let deleted = ids.into_iter().filter(|id| stream.delete(*id)).count();
    ctx.notify(notify::STREAM, "xdel", key);
    ctx.dirty(deleted as u64);
    Ok(Reply::Integer(deleted as i64))
}

fn xsetid(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let id = parse_strict_id(&args[2], 0)?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if args[i].eq_ignore_ascii_case(b"entriesadded") && more > 0 {
            let n = integer(&args[i + 1])?;
            if n < 0 {
                return Err(CommandError::err(err::ENTRIES_ADDED_NEGATIVE));
            }
            entries_added = Some(n as u64);
        } else if args[i].eq_ignore_ascii_case(b"maxdeletedid") && more > 0 {
            max_deleted = parse_strict_id(&args[i + 1], 0)?;
            if id < max_deleted {
                return Err(CommandError::err(err::XSETID_BELOW_GIVEN_MAX_DELETED));
            }
        } else {
            return Err(CommandError::Syntax);
        }
        i += 2;
    }
    let key = &args[1];
    let Some(s) = stream_mut(ctx, key)? else {
        return Err(CommandError::NoSuchKey);
    };
    if !s.is_empty() {
        if id < s.last_entry_id() {
            return Err(CommandError::err(err::XSETID_BELOW_TOP));
        }
        if entries_added.is_some_and(|n| n < s.len()) {
            return Err(CommandError::err(err::ENTRIES_ADDED_BELOW_LENGTH));
        }
    }
    if id < s.max_deleted() {
        return Err(CommandError::err(err::XSETID_BELOW_MAX_DELETED));
    }
    let added = entries_added.unwrap_or(s.entries_added());
    let max_del = if max_deleted.is_zero() {
        s.max_deleted()
    } else {
        max_deleted
    };
    s.set_meta(id, max_del, added);
    ctx.notify(notify::STREAM, "xsetid", key);
    ctx.dirty(1);
    Ok(Reply::ok())
}

/// An integer argument, or `None` (for errors with their own text).
fn args_int(arg: &[u8]) -> Option<i64> {
    super::args::parse_i64_strict(arg)
}
