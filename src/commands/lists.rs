//! List commands: pushes, pops, ranges, positional edits, moves, and (in
//! [`blocking`]) the blocking pops and moves.
//!
//! Lists are [`List`]s: elements packed into chunks, so a range read or a trim
//! skips whole chunks, a push or pop touches one chunk, and an edit of a list a
//! snapshot still shares copies only the touched chunk. The list primitives here
//! work on a [`Db`] rather than a [`Ctx`], so that a blocked client can be served
//! later with exactly the code its command would have run.

mod blocking;

use bytes::Bytes;

use super::flags::*;
use super::{args, spec, CommandSpec, Ctx, KEY1};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::list::{Fill, List};
use crate::keyspace::{Db, Key, Value};
use crate::pubsub::notify;
use crate::reply::{BulkRun, Reply};
use crate::state::State;

/// Redis's key positions for commands whose two first arguments are keys.
const KEY1_2: (i32, i32, i32) = (1, 2, 1);
/// LMPOP and BLMPOP give their keys through a count (movable keys).
const MOVABLE: (i32, i32, i32) = (0, 0, 0);

pub const COMMANDS: &[CommandSpec] = &[
    spec("lpush", -3, WRITE | DENYOOM | FAST, KEY1, "list", "Prepends elements to a list.", lpush),
    spec("rpush", -3, WRITE | DENYOOM | FAST, KEY1, "list", "Appends elements to a list.", rpush),
    spec("lpushx", -3, WRITE | DENYOOM | FAST, KEY1, "list", "Prepends elements to an existing list.", lpushx),
    spec("rpushx", -3, WRITE | DENYOOM | FAST, KEY1, "list", "Appends elements to an existing list.", rpushx),
    spec("lpop", -2, WRITE | FAST, KEY1, "list", "Removes and returns the first elements of a list.", lpop),
    spec("rpop", -2, WRITE | FAST, KEY1, "list", "Removes and returns the last elements of a list.", rpop),
    spec("llen", 2, READONLY | FAST, KEY1, "list", "Returns the length of a list.", llen),
    spec("lrange", 4, READONLY, KEY1, "list", "Returns a range of elements from a list.", lrange),
    spec("lindex", 3, READONLY, KEY1, "list", "Returns an element from a list by its index.", lindex),
    spec("lset", 4, WRITE | DENYOOM, KEY1, "list", "Sets the value of an element in a list by its index.", lset),
    spec("linsert", 5, WRITE | DENYOOM, KEY1, "list", "Inserts an element before or after another element in a list.", linsert),
    spec("lrem", 4, WRITE, KEY1, "list", "Removes elements from a list.", lrem),
    spec("ltrim", 4, WRITE, KEY1, "list", "Removes elements from both ends of a list.", ltrim),
    spec("lpos", -3, READONLY, KEY1, "list", "Returns the index of matching elements in a list.", lpos),
    spec("lmove", 5, WRITE | DENYOOM, KEY1_2, "list", "Pops an element from a list, pushes it to another list and returns it.", lmove),
    spec("rpoplpush", 3, WRITE | DENYOOM, KEY1_2, "list", "Pops the last element of a list, pushes it to another list and returns it.", rpoplpush),
    spec("lmpop", -4, WRITE, MOVABLE, "list", "Pops elements from the first non-empty list of several.", lmpop),
    spec("blpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), "list", "Pops the first element of the first non-empty list, or blocks until one is available.", blocking::blpop),
    spec("brpop", -3, WRITE | NOSCRIPT | BLOCKING, (1, -2, 1), "list", "Pops the last element of the first non-empty list, or blocks until one is available.", blocking::brpop),
    spec("blmove", 6, WRITE | DENYOOM | NOSCRIPT | BLOCKING, KEY1_2, "list", "Pops an element from a list, pushes it to another list and returns it; blocks until one is available.", blocking::blmove),
    spec("brpoplpush", 4, WRITE | DENYOOM | NOSCRIPT | BLOCKING, KEY1_2, "list", "Pops the last element of a list, pushes it to another list and returns it; blocks until one is available.", blocking::brpoplpush),
    spec("blmpop", -5, WRITE | BLOCKING, MOVABLE, "list", "Pops elements from the first non-empty list of several, or blocks until one is available.", blocking::blmpop),
];

/// Which end of a list a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Left,
    Right,
}

impl End {
    /// `LEFT` or `RIGHT`, case-insensitively; `ERR syntax error` otherwise.
    fn parse(arg: &[u8]) -> Result<End, CommandError> {
        if args::is(arg, "left") {
            Ok(End::Left)
        } else if args::is(arg, "right") {
            Ok(End::Right)
        } else {
            Err(CommandError::Syntax)
        }
    }
}

// ---------------------------------------------------------------------------
// Keyspace events, shared with the blocking serve path.

/// `lpush`/`rpush` on `key`.
fn notify_push(state: &mut State, db: usize, end: End, key: &[u8], now_ms: i64) {
    let event = match end {
        End::Left => "lpush",
        End::Right => "rpush",
    };
    state.key_changed(db, notify::LIST, event, key, now_ms);
}

/// `lpop`/`rpop` on `key`, then `del` if the pop emptied it.
fn notify_pop(state: &mut State, db: usize, end: End, key: &[u8], now_ms: i64) {
    if state.pubsub.notify_flags == 0 && state.watches.is_empty() {
        return;
    }
    let event = match end {
        End::Left => "lpop",
        End::Right => "rpop",
    };
    state.key_changed(db, notify::LIST, event, key, now_ms);
    notify_if_deleted(state, db, key, now_ms);
}

/// `del` if removing elements emptied (and so deleted) `key`.
fn notify_if_deleted(state: &mut State, db: usize, key: &[u8], now_ms: i64) {
    if state.pubsub.notify_flags != 0 && state.keyspace.db(db).peek(key, now_ms).is_none() {
        notify::emit(&state.pubsub, notify::GENERIC, "del", key, db, now_ms);
    }
}

// ---------------------------------------------------------------------------
// List primitives on a database, shared with the blocking serve path.
// ---------------------------------------------------------------------------

/// The list at `key`, `None` if absent, WRONGTYPE if it holds something else.
fn read_list<'a>(
    db: &'a mut Db,
    key: &[u8],
    now_ms: i64,
) -> Result<Option<&'a List>, CommandError> {
    db.get(key, now_ms).map(|e| e.value.as_list()).transpose()
}

/// Like [`read_list`], for changing the list in place.
fn write_list<'a>(
    db: &'a mut Db,
    key: &[u8],
    now_ms: i64,
) -> Result<Option<&'a mut List>, CommandError> {
    db.get_mut(key, now_ms)
        .map(|e| e.value.as_list_mut())
        .transpose()
}

/// Fails with WRONGTYPE if `key` holds a value that is not a list.
fn check_list_or_absent(db: &mut Db, key: &[u8], now_ms: i64) -> Result<(), CommandError> {
    read_list(db, key, now_ms).map(|_| ())
}

/// Pushes `elems` in order at `end`, creating the list unless `only_existing`.
/// Returns the new length, or 0 when the key is absent and `only_existing`.
fn push_elems(
    db: &mut Db,
    key: &Key,
    now_ms: i64,
    end: End,
    elems: &[Bytes],
    only_existing: bool,
    fill: Fill,
) -> Result<usize, CommandError> {
    let push_all = |list: &mut List| {
        match end {
            End::Left => elems.iter().for_each(|e| list.push_front(e, fill)),
            End::Right => elems.iter().for_each(|e| list.push_back(e, fill)),
        }
        list.len()
    };
    // One walk down the map for a list that exists (every push but the
    // first); a key of another type answers WRONGTYPE from here, as Redis's
    // lookupKeyWrite then type check.
    if let Some(list) = write_list(db, key, now_ms)? {
        return Ok(push_all(list));
    }
    if only_existing {
        return Ok(0);
    }
    let list = db
        .get_or_insert_with(key, now_ms, || Value::List(List::new()))
        .value
        .as_list_mut()?;
    Ok(push_all(list))
}

/// Pops up to `count` elements from `end`, in pop order; deletes the key if that
/// emptied it. `None` when the key is absent.
fn pop_elems(
    db: &mut Db,
    key: &[u8],
    now_ms: i64,
    end: End,
    count: usize,
) -> Result<Option<Vec<Bytes>>, CommandError> {
    let Some(list) = write_list(db, key, now_ms)? else {
        return Ok(None);
    };
    let n = count.min(list.len());
    // Each pop is O(1) at either end (a chunk's end moves).
    let popped: Vec<Bytes> = match end {
        End::Left => (0..n).filter_map(|_| list.pop_front()).collect(),
        End::Right => (0..n).filter_map(|_| list.pop_back()).collect(),
    };
    if list.is_empty() {
        db.remove_if_empty(key);
    }
    Ok(Some(popped))
}

/// Pops one element from `end` (LPOP and RPOP without a count): no vector
/// for a single element. `Ok(None)` when the key is absent.
fn pop_one(db: &mut Db, key: &[u8], now_ms: i64, end: End) -> Result<Option<Bytes>, CommandError> {
    let Some(list) = write_list(db, key, now_ms)? else {
        return Ok(None);
    };
    let elem = match end {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    };
    if list.is_empty() {
        db.remove_if_empty(key);
    }
    Ok(elem)
}

/// Pops up to `count` elements from the first key holding a non-empty list.
/// WRONGTYPE if a key before it holds another type.
fn pop_first_nonempty(
    db: &mut Db,
    keys: &[Bytes],
    now_ms: i64,
    end: End,
    count: usize,
) -> Result<Option<(Bytes, Vec<Bytes>)>, CommandError> {
    for key in keys {
        let nonempty = read_list(db, key, now_ms)?.is_some_and(|l| !l.is_empty());
        if nonempty {
            let popped = pop_elems(db, key, now_ms, end, count)?.unwrap_or_default();
            return Ok(Some((key.clone(), popped)));
        }
    }
    Ok(None)
}

/// Moves one element from `src`'s `from` end to `dst`'s `to` end (the same key
/// rotates the list). `None` when `src` is absent. Checks both types first, so a
/// WRONGTYPE destination leaves the source untouched.
fn move_elem(
    db: &mut Db,
    src: &Key,
    dst: &Key,
    from: End,
    to: End,
    now_ms: i64,
    fill: Fill,
) -> Result<Option<Bytes>, CommandError> {
    if read_list(db, src, now_ms)?.is_none_or(|l| l.is_empty()) {
        return Ok(None);
    }
    check_list_or_absent(db, dst, now_ms)?;
    let Some(list) = write_list(db, src, now_ms)? else {
        return Ok(None);
    };
    let elem = match from {
        End::Left => list.pop_front(),
        End::Right => list.pop_back(),
    };
    let Some(elem) = elem else {
        return Ok(None);
    };
    push_elems(
        db,
        dst,
        now_ms,
        to,
        std::slice::from_ref(&elem),
        false,
        fill,
    )?;
    db.remove_if_empty(src);
    Ok(Some(elem))
}

/// Resolves a Redis (start, stop) range, negative indexes counting from the
/// end, to a half-open range of `len`; `None` when it selects nothing.
fn resolve_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len_i = len as i64;
    let start = if start < 0 {
        len_i.saturating_add(start)
    } else {
        start
    }
    .max(0);
    let stop = if stop < 0 {
        len_i.saturating_add(stop)
    } else {
        stop
    };
    if start > stop || start >= len_i {
        return None;
    }
    let stop = stop.min(len_i - 1);
    Some((start as usize, stop as usize + 1))
}

/// Resolves a single index (negative from the end) to a position in `len`.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len_i = len as i64;
    let i = if index < 0 {
        len_i.checked_add(index)?
    } else {
        index
    };
    (0..len_i).contains(&i).then_some(i as usize)
}

// ---------------------------------------------------------------------------
// Argument helpers with Redis's per-command error texts.
// ---------------------------------------------------------------------------

/// A count that must be a non-negative integer; `ERR <msg>` otherwise (Redis
/// uses the same text for a non-integer and for a negative value).
fn non_negative(arg: &[u8], msg: &str) -> Result<usize, CommandError> {
    args::parse_i64_strict(arg)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| CommandError::err(msg))
}

/// Parses LMPOP/BLMPOP's `numkeys key... LEFT|RIGHT [COUNT n]` starting at
/// `numkeys_idx`, in Redis's order of checks.
fn parse_mpop(
    args: &[Bytes],
    numkeys_idx: usize,
) -> Result<(Vec<Bytes>, End, usize), CommandError> {
    args::mpop_args(args, numkeys_idx, End::parse)
}

/// The `[key, [elements...]]` reply of LMPOP and BLMPOP.
fn mpop_reply(key: Bytes, elems: Vec<Bytes>) -> Reply {
    Reply::Array(vec![Reply::Bulk(key), Reply::bulks(elems)])
}

/// Counts a read towards `keyspace_hits` / `keyspace_misses`, as Redis's read lookups do.
fn count_read(ctx: &mut Ctx<'_>, key: &[u8]) {
    let now = ctx.now_ms;
    let hit = ctx.db().contains(key, now);
    let stats = &mut ctx.state.stats;
    if hit {
        stats.keyspace_hits += 1;
    } else {
        stats.keyspace_misses += 1;
    }
}

// ---------------------------------------------------------------------------
// Handlers.
// ---------------------------------------------------------------------------

fn push_cmd(ctx: &mut Ctx<'_>, args: &[Bytes], end: End, only_existing: bool) -> CmdResult {
    let now = ctx.now_ms;
    let key = &args[1];
    let elems = &args[2..];
    let fill = ctx.state.encodings.list_fill();
    let len = push_elems(ctx.db(), key, now, end, elems, only_existing, fill)?;
    if len > 0 {
        ctx.dirty(elems.len() as u64);
        ctx.signal_key(key);
        notify_push(ctx.state, ctx.client.db, end, key, now);
    }
    Ok(Reply::Integer(len as i64))
}

fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push_cmd(ctx, args, End::Left, false)
}

fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push_cmd(ctx, args, End::Right, false)
}

fn lpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push_cmd(ctx, args, End::Left, true)
}

fn rpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    push_cmd(ctx, args, End::Right, true)
}

fn pop_cmd(ctx: &mut Ctx<'_>, args: &[Bytes], end: End, name: &str) -> CmdResult {
    if args.len() > 3 {
        return Err(CommandError::wrong_arity(name));
    }
    let count = match args.get(2) {
        Some(arg) => Some(non_negative(
            arg,
            "value is out of range, must be positive",
        )?),
        None => None,
    };
    let now = ctx.now_ms;
    let Some(count) = count else {
        let Some(elem) = pop_one(ctx.db(), &args[1], now, end)? else {
            return Ok(Reply::Null);
        };
        ctx.dirty(1);
        notify_pop(ctx.state, ctx.client.db, end, &args[1], now);
        return Ok(Reply::Bulk(elem));
    };
    let Some(popped) = pop_elems(ctx.db(), &args[1], now, end, count)? else {
        // Redis answers a missing key with a null array when a count was given.
        return Ok(Reply::NullArray);
    };
    ctx.dirty(popped.len() as u64);
    notify_pop(ctx.state, ctx.client.db, end, &args[1], now);
    Ok(Reply::bulks(popped))
}

fn lpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    pop_cmd(ctx, args, End::Left, "lpop")
}

fn rpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    pop_cmd(ctx, args, End::Right, "rpop")
}

fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    count_read(ctx, &args[1]);
    let now = ctx.now_ms;
    let len = read_list(ctx.db(), &args[1], now)?.map_or(0, List::len);
    Ok(Reply::Integer(len as i64))
}

fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let start = args::int(&args[2])?;
    let stop = args::int(&args[3])?;
    count_read(ctx, &args[1]);
    let now = ctx.now_ms;
    let Some(list) = read_list(ctx.db(), &args[1], now)? else {
        return Ok(Reply::Array(vec![]));
    };
    let Some((from, to)) = resolve_range(start, stop, list.len()) else {
        return Ok(Reply::Array(vec![]));
    };
    // Straight from the chunks into wire form: one copy, nothing per element.
    let mut run = BulkRun::with_capacity(to - from, (to - from) * 8);
    list.range(from, to).for_each(|e| run.push(e));
    Ok(Reply::Bulks(run))
}

fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    count_read(ctx, &args[1]);
    let now = ctx.now_ms;
    let Some(list) = read_list(ctx.db(), &args[1], now)? else {
        return Ok(Reply::Null);
    };
    let index = args::int(&args[2])?;
    let elem =
        resolve_index(index, list.len()).and_then(|i| list.get(i).map(Bytes::copy_from_slice));
    Ok(Reply::bulk_opt(elem))
}

fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms;
    let fill = ctx.state.encodings.list_fill();
    let Some(list) = write_list(ctx.db(), &args[1], now)? else {
        return Err(CommandError::NoSuchKey);
    };
    let index = args::int(&args[2])?;
    let i = resolve_index(index, list.len()).ok_or(CommandError::IndexOutOfRange)?;
    list.set(i, &args[3], fill);
    ctx.dirty(1);
    ctx.notify(notify::LIST, "lset", &args[1]);
    Ok(Reply::ok())
}

fn linsert(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let after = if args::is(&args[2], "after") {
        true
    } else if args::is(&args[2], "before") {
        false
    } else {
        return Err(CommandError::Syntax);
    };
    let now = ctx.now_ms;
    let fill = ctx.state.encodings.list_fill();
    let Some(list) = write_list(ctx.db(), &args[1], now)? else {
        return Ok(Reply::Integer(0));
    };
    let Some(pos) = list.iter().position(|e| e == &args[3][..]) else {
        return Ok(Reply::Integer(-1));
    };
    list.insert(pos + usize::from(after), &args[4], fill);
    let len = list.len();
    ctx.dirty(1);
    ctx.signal_key(&args[1]);
    ctx.notify(notify::LIST, "linsert", &args[1]);
    Ok(Reply::Integer(len as i64))
}

fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = args::int(&args[2])?;
    let now = ctx.now_ms;
    let Some(list) = write_list(ctx.db(), &args[1], now)? else {
        return Ok(Reply::Integer(0));
    };
    // Chunks without a match are not touched: no match is no write, and a
    // shared list stays uncopied (WATCH, snapshots).
    let limit = match count {
        0 => usize::MAX,
        n => usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX),
    };
    let removed = list.remove_matches(&args[3], limit, count < 0);
    ctx.db().remove_if_empty(&args[1]);
    ctx.dirty(removed as u64);
    if removed > 0 {
        ctx.notify(notify::LIST, "lrem", &args[1]);
        notify_if_deleted(ctx.state, ctx.client.db, &args[1], now);
    }
    Ok(Reply::Integer(removed as i64))
}

fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let start = args::int(&args[2])?;
    let stop = args::int(&args[3])?;
    let now = ctx.now_ms;
    let Some(list) = write_list(ctx.db(), &args[1], now)? else {
        return Ok(Reply::ok());
    };
    let before = list.len();
    match resolve_range(start, stop, before) {
        Some((from, to)) => list.trim(from, to),
        None => *list = List::new(),
    }
    let removed = before - list.len();
    ctx.db().remove_if_empty(&args[1]);
    ctx.dirty(removed as u64);
    ctx.notify(notify::LIST, "ltrim", &args[1]);
    notify_if_deleted(ctx.state, ctx.client.db, &args[1], now);
    Ok(Reply::ok())
}

/// LPOS options: rank (never 0), count (`None` = one integer reply; 0 = all)
/// and maxlen (0 = the whole list).
struct LposOptions {
    rank: i64,
    count: Option<usize>,
    maxlen: usize,
}

fn parse_lpos(args: &[Bytes]) -> Result<LposOptions, CommandError> {
    let mut opts = LposOptions {
        rank: 1,
        count: None,
        maxlen: 0,
    };
    let mut j = 3;
    while j < args.len() {
        if j + 1 >= args.len() {
            return Err(CommandError::Syntax);
        }
        let value = &args[j + 1];
        if args::is(&args[j], "rank") {
            opts.rank = args::int(value)?;
            if opts.rank == 0 {
                return Err(CommandError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if args::is(&args[j], "count") {
            opts.count = Some(non_negative(value, "COUNT can't be negative")?);
        } else if args::is(&args[j], "maxlen") {
            opts.maxlen = non_negative(value, "MAXLEN can't be negative")?;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 2;
    }
    Ok(opts)
}

fn lpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let opts = parse_lpos(args)?;
    count_read(ctx, &args[1]);
    let now = ctx.now_ms;
    let Some(list) = read_list(ctx.db(), &args[1], now)? else {
        return Ok(match opts.count {
            Some(_) => Reply::Array(vec![]),
            None => Reply::Null,
        });
    };
    let elem = &args[2];
    // Redis negates the rank in a C long; i64::MIN stays negative there and so
    // matches from the first hit: keep that.
    let skip = usize::try_from(opts.rank.unsigned_abs().saturating_sub(1)).unwrap_or(usize::MAX);
    let skip = if opts.rank == i64::MIN { 0 } else { skip };
    let want = match opts.count {
        Some(0) => usize::MAX,
        Some(n) => n,
        None => 1,
    };
    let scan = if opts.maxlen == 0 {
        usize::MAX
    } else {
        opts.maxlen
    };
    let found: Vec<Reply> = if opts.rank > 0 {
        positions(list.iter().enumerate(), elem, scan, skip, want)
    } else {
        positions(list.iter().enumerate().rev(), elem, scan, skip, want)
    };
    Ok(match opts.count {
        Some(_) => Reply::Array(found),
        None => found.into_iter().next().unwrap_or(Reply::Null),
    })
}

fn positions<'a>(
    iter: impl Iterator<Item = (usize, &'a [u8])>,
    elem: &[u8],
    scan: usize,
    skip: usize,
    want: usize,
) -> Vec<Reply> {
    iter.take(scan)
        .filter(|(_, e)| *e == elem)
        .skip(skip)
        .take(want)
        .map(|(i, _)| Reply::Integer(i as i64))
        .collect()
}

/// Runs a move for the client and does its bookkeeping.
fn move_cmd(ctx: &mut Ctx<'_>, src: &Key, dst: &Key, from: End, to: End) -> CmdResult {
    let now = ctx.now_ms;
    let fill = ctx.state.encodings.list_fill();
    let moved = move_elem(ctx.db(), src, dst, from, to, now, fill)?;
    if moved.is_some() {
        ctx.dirty(1);
        ctx.signal_key(dst);
        notify_move(ctx.state, ctx.client.db, src, dst, from, to, now);
    }
    Ok(Reply::bulk_opt(moved))
}

/// The events of a move, in Redis's order: push on `dst`, pop on `src`, `del`.
fn notify_move(
    state: &mut State,
    db: usize,
    src: &[u8],
    dst: &[u8],
    from: End,
    to: End,
    now_ms: i64,
) {
    if state.pubsub.notify_flags != 0 || !state.watches.is_empty() {
        notify_push(state, db, to, dst, now_ms);
        notify_pop(state, db, from, src, now_ms);
    }
}

fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let from = End::parse(&args[3])?;
    let to = End::parse(&args[4])?;
    move_cmd(ctx, &args[1], &args[2], from, to)
}

fn rpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    move_cmd(ctx, &args[1], &args[2], End::Right, End::Left)
}

fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, end, count) = parse_mpop(args, 1)?;
    let now = ctx.now_ms;
    match pop_first_nonempty(ctx.db(), &keys, now, end, count)? {
        Some((key, popped)) => {
            ctx.dirty(popped.len() as u64);
            notify_pop(ctx.state, ctx.client.db, end, &key, now);
            Ok(mpop_reply(key, popped))
        }
        None => Ok(Reply::NullArray),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn list_of(db: &mut Db, key: &str) -> Vec<Bytes> {
        read_list(db, key.as_bytes(), 0)
            .unwrap()
            .map(|l| l.iter().map(Bytes::copy_from_slice).collect())
            .unwrap_or_default()
    }

    /// Runs commands through the real dispatcher, as a client that may not block
    /// (inside MULTI): blocking commands answer at once.
    fn run_all(setup: impl FnOnce(&mut Db), cmds: &[&[&str]]) -> Vec<Reply> {
        use crate::clients::ClientState;
        use crate::config::Config;
        use crate::state::Shared;
        let shared = Shared::new(Config::default());
        let info = shared.clients.register("a".into(), "b".into());
        let mut client = ClientState::new(info.id, "a".into(), "b".into(), info);
        let mut state = shared.lock();
        setup(state.keyspace.db_mut(0));
        cmds.iter()
            .map(|cmd| {
                let args: Vec<Bytes> = cmd.iter().map(|s| b(s)).collect();
                let mut ctx = Ctx {
                    shared: &shared,
                    state: &mut state,
                    client: &mut client,
                    now_ms: 0,
                    blocked: None,
                    may_block: false,
                };
                let reply = super::super::execute(&mut ctx, &args);
                assert!(ctx.blocked.is_none());
                reply
            })
            .collect()
    }

    #[test]
    fn every_command_refuses_another_type() {
        let cmds: &[&[&str]] = &[
            &["lpush", "s", "a"],
            &["rpush", "s", "a"],
            &["lpushx", "s", "a"],
            &["rpushx", "s", "a"],
            &["lpop", "s"],
            &["rpop", "s", "2"],
            &["llen", "s"],
            &["lrange", "s", "0", "-1"],
            &["lindex", "s", "0"],
            &["lset", "s", "0", "a"],
            &["linsert", "s", "before", "a", "b"],
            &["lrem", "s", "0", "a"],
            &["ltrim", "s", "0", "1"],
            &["lpos", "s", "a"],
            &["lmove", "s", "l", "left", "left"],
            &["lmove", "l", "s", "left", "left"],
            &["rpoplpush", "s", "l"],
            &["lmpop", "2", "s", "l", "left"],
            &["blpop", "s", "l", "0"],
            &["brpop", "s", "0"],
            &["blmove", "s", "l", "left", "left", "0"],
            &["brpoplpush", "l", "s", "0"],
            &["blmpop", "0", "1", "s", "left"],
        ];
        let replies = run_all(
            |db| {
                db.insert(b("s"), Value::Str(b("x")), None);
                db.insert(b("l"), Value::List(List::from_iter(["e"])), None);
            },
            cmds,
        );
        for (cmd, reply) in cmds.iter().zip(replies) {
            assert_eq!(reply, CommandError::WrongType.to_reply(), "{cmd:?}");
        }
    }

    #[test]
    fn blocking_commands_answer_at_once_where_they_may_not_block() {
        let replies = run_all(
            |_| {},
            &[
                &["blpop", "a", "b", "0"],
                &["brpop", "a", "1"],
                &["blmove", "a", "b", "left", "right", "0"],
                &["brpoplpush", "a", "b", "0"],
                &["blmpop", "0", "1", "a", "left"],
                &["rpush", "b", "x"],
                &["blmpop", "0", "2", "a", "b", "right", "count", "9"],
            ],
        );
        // As in Redis 7.0: null arrays, except a null bulk for the moves.
        let nulls = [
            Reply::NullArray,
            Reply::NullArray,
            Reply::Null,
            Reply::Null,
            Reply::NullArray,
        ];
        assert_eq!(replies[..5], nulls);
        assert_eq!(replies[6], mpop_reply(b("b"), vec![b("x")]));
    }

    #[test]
    fn ranges_follow_redis_rules() {
        assert_eq!(resolve_range(0, -1, 3), Some((0, 3)));
        assert_eq!(resolve_range(-100, 100, 3), Some((0, 3)));
        assert_eq!(resolve_range(2, 1, 3), None);
        assert_eq!(resolve_range(3, 5, 3), None);
        assert_eq!(resolve_range(-2, -1, 3), Some((1, 3)));
        assert_eq!(resolve_range(i64::MIN, i64::MAX, 3), Some((0, 3)));
        assert_eq!(resolve_range(0, -1, 0), None);
        assert_eq!(resolve_index(-1, 3), Some(2));
        assert_eq!(resolve_index(-4, 3), None);
        assert_eq!(resolve_index(3, 3), None);
        assert_eq!(resolve_index(i64::MIN, 3), None);
    }

    #[test]
    fn push_pop_and_delete_when_empty() {
        let mut db = Db::default();
        let k = b("k");
        assert_eq!(
            push_elems(
                &mut db,
                &k,
                0,
                End::Left,
                &[b("a"), b("b")],
                false,
                Fill::DEFAULT
            ),
            Ok(2)
        );
        assert_eq!(
            push_elems(&mut db, &k, 0, End::Right, &[b("c")], true, Fill::DEFAULT),
            Ok(3)
        );
        assert_eq!(list_of(&mut db, "k"), vec![b("b"), b("a"), b("c")]);
        assert_eq!(
            pop_elems(&mut db, b"k", 0, End::Right, 2),
            Ok(Some(vec![b("c"), b("a")]))
        );
        assert_eq!(
            pop_elems(&mut db, b"k", 0, End::Left, 5),
            Ok(Some(vec![b("b")]))
        );
        assert!(db.is_empty());
        assert_eq!(
            push_elems(&mut db, &k, 0, End::Left, &[b("x")], true, Fill::DEFAULT),
            Ok(0)
        );
        assert!(db.is_empty());
    }

    #[test]
    fn move_rotates_and_checks_types_first() {
        let mut db = Db::default();
        let (k, s) = (b("k"), b("s"));
        push_elems(
            &mut db,
            &k,
            0,
            End::Right,
            &[b("1"), b("2"), b("3")],
            false,
            Fill::DEFAULT,
        )
        .unwrap();
        assert_eq!(
            move_elem(&mut db, &k, &k, End::Right, End::Left, 0, Fill::DEFAULT),
            Ok(Some(b("3")))
        );
        assert_eq!(list_of(&mut db, "k"), vec![b("3"), b("1"), b("2")]);
        db.insert(s.clone(), Value::Str(b("x")), None);
        assert_eq!(
            move_elem(&mut db, &k, &s, End::Left, End::Left, 0, Fill::DEFAULT),
            Err(CommandError::WrongType)
        );
        assert_eq!(list_of(&mut db, "k").len(), 3);
    }

    #[test]
    fn mpop_arguments() {
        let a = |v: &[&str]| v.iter().map(|s| b(s)).collect::<Vec<_>>();
        let (keys, end, count) =
            parse_mpop(&a(&["lmpop", "2", "a", "b", "right", "count", "3"]), 1).unwrap();
        assert_eq!((keys.len(), end, count), (2, End::Right, 3));
        assert_eq!(
            parse_mpop(&a(&["lmpop", "3", "a", "left"]), 1),
            Err(CommandError::Syntax)
        );
        assert_eq!(
            parse_mpop(&a(&["lmpop", "9223372036854775807", "a", "left"]), 1),
            Err(CommandError::Syntax)
        );
        assert!(parse_mpop(&a(&["lmpop", "0", "a", "left"]), 1).is_err());
    }
}
