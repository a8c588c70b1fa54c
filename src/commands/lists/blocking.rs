//! The blocking list commands: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH and BLMPOP.
//!
//! Each first runs its non-blocking form. When there is nothing to take it
//! registers the client with [`Ctx::block_on`] and a serve function; after any
//! command that pushed to one of its keys, [`crate::blocking::serve_ready`] calls
//! that function with the ready key, which runs the same list primitive the
//! command would have run, for the waiter's database. Serving happens under the
//! state lock between whole commands. Timeouts answer with a null array, as Redis
//! 7.0 does for every blocked list command (BLMOVE and BRPOPLPUSH included); where
//! blocking is not allowed (MULTI) BLMOVE and BRPOPLPUSH answer a null bulk.

use bytes::Bytes;

use super::{
    check_list_or_absent, move_cmd, move_elem, mpop_reply, notify_move, notify_pop, parse_mpop,
    pop_elems, pop_first_nonempty, read_list, End,
};
use crate::commands::{args, Ctx};
use crate::errors::CmdResult;
use crate::reply::Reply;
use crate::state::State;

/// The `[key, element]` reply of BLPOP and BRPOP.
fn pair_reply(key: Bytes, elem: Bytes) -> Reply {
    Reply::Array(vec![Reply::Bulk(key), Reply::Bulk(elem)])
}

pub(super) fn blpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bpop(ctx, args, End::Left)
}

pub(super) fn brpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bpop(ctx, args, End::Right)
}

fn bpop(ctx: &mut Ctx<'_>, args: &[Bytes], end: End) -> CmdResult {
    let last = args.len() - 1;
    let timeout = args::timeout(&args[last])?;
    let keys = &args[1..last];
    let now = ctx.now_ms;
    if let Some((key, popped)) = pop_first_nonempty(ctx.db(), keys, now, end, 1)? {
        ctx.dirty(popped.len() as u64);
        notify_pop(ctx.state, ctx.client.db, end, &key, now);
        if let Some(elem) = popped.into_iter().next() {
            return Ok(pair_reply(key, elem));
        }
    }
    ctx.block_on(keys.to_vec(), args, timeout, serve_bpop, Reply::NullArray)
}

fn serve_bpop(
    state: &mut State,
    db: usize,
    args: &[Bytes],
    ready_key: &[u8],
    now_ms: i64,
) -> Option<Reply> {
    let end = if args::is(&args[0], "brpop") {
        End::Right
    } else {
        End::Left
    };
    let (key, popped) = serve_pop(state, db, ready_key, end, 1, now_ms)?;
    popped.into_iter().next().map(|elem| pair_reply(key, elem))
}

/// Pops up to `count` elements of `ready_key` for a waiter. `None` while the key
/// holds no list elements (absent, or another type: the waiter stays blocked).
fn serve_pop(
    state: &mut State,
    db: usize,
    ready_key: &[u8],
    end: End,
    count: usize,
    now_ms: i64,
) -> Option<(Bytes, Vec<Bytes>)> {
    let popped = pop_elems(state.keyspace.db_mut(db), ready_key, now_ms, end, count).ok()??;
    if popped.is_empty() {
        return None;
    }
    state.dirty += popped.len() as u64;
    notify_pop(state, db, end, ready_key, now_ms);
    Some((Bytes::copy_from_slice(ready_key), popped))
}

pub(super) fn blmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let from = End::parse(&args[3])?;
    let to = End::parse(&args[4])?;
    let timeout = args::timeout(&args[5])?;
    bmove(ctx, args, from, to, timeout)
}

pub(super) fn brpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let timeout = args::timeout(&args[3])?;
    bmove(ctx, args, End::Right, End::Left, timeout)
}

fn bmove(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    from: End,
    to: End,
    timeout: Option<std::time::Duration>,
) -> CmdResult {
    let (src, dst) = (&args[1], &args[2]);
    let now = ctx.now_ms;
    check_list_or_absent(ctx.db(), src, now)?;
    if ctx.db().contains(src, now) {
        return move_cmd(ctx, src, dst, from, to);
    }
    if !ctx.may_block {
        // Inside MULTI Redis answers a null bulk here, though a real timeout
        // answers a null array.
        return Ok(Reply::Null);
    }
    ctx.block_on(
        vec![src.clone()],
        args,
        timeout,
        serve_bmove,
        Reply::NullArray,
    )
}

/// The ends of a blocked BLMOVE or BRPOPLPUSH (validated when it blocked).
fn move_ends(args: &[Bytes]) -> Option<(End, End)> {
    if args::is(&args[0], "brpoplpush") {
        return Some((End::Right, End::Left));
    }
    Some((
        End::parse(args.get(3)?).ok()?,
        End::parse(args.get(4)?).ok()?,
    ))
}

fn serve_bmove(
    state: &mut State,
    db: usize,
    args: &[Bytes],
    ready_key: &[u8],
    now_ms: i64,
) -> Option<Reply> {
    let (from, to) = move_ends(args)?;
    let src = Bytes::copy_from_slice(ready_key);
    let dst = args.get(2)?.clone();
    let fill = state.encodings.list_fill();
    let d = state.keyspace.db_mut(db);
    // A source that is absent or of another type keeps the waiter blocked.
    read_list(d, &src, now_ms).ok()??;
    match move_elem(d, &src, &dst, from, to, now_ms, fill) {
        Ok(Some(elem)) => {
            state.dirty += 1;
            // The pushed element may serve clients blocked on the destination.
            state.blocking.signal(db, &dst);
            notify_move(state, db, &src, &dst, from, to, now_ms);
            Some(Reply::Bulk(elem))
        }
        Ok(None) => None,
        // A destination of another type: Redis unblocks the waiter with the
        // error and leaves the source untouched.
        Err(e) => {
            state.stats.total_error_replies += 1;
            Some(e.to_reply())
        }
    }
}

pub(super) fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, end, count) = parse_mpop(args, 2)?;
    let timeout = args::timeout(&args[1])?;
    let now = ctx.now_ms;
    if let Some((key, popped)) = pop_first_nonempty(ctx.db(), &keys, now, end, count)? {
        ctx.dirty(popped.len() as u64);
        notify_pop(ctx.state, ctx.client.db, end, &key, now);
        return Ok(mpop_reply(key, popped));
    }
    ctx.block_on(keys, args, timeout, serve_bmpop, Reply::NullArray)
}

fn serve_bmpop(
    state: &mut State,
    db: usize,
    args: &[Bytes],
    ready_key: &[u8],
    now_ms: i64,
) -> Option<Reply> {
    let (_, end, count) = parse_mpop(args, 2).ok()?;
    let (key, popped) = serve_pop(state, db, ready_key, end, count, now_ms)?;
    Some(mpop_reply(key, popped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Key;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn argv(v: &[&str]) -> Vec<Bytes> {
        v.iter().map(|s| b(s)).collect()
    }

    fn push(state: &mut State, key: &str, elems: &[&str]) {
        let key: Key = b(key);
        super::super::push_elems(
            state.keyspace.db_mut(0),
            &key,
            0,
            End::Right,
            &argv(elems),
            false,
            crate::keyspace::list::Fill::DEFAULT,
        )
        .unwrap();
    }

    #[test]
    fn serve_pop_takes_from_the_ready_key() {
        let mut state = State::new(1);
        assert_eq!(
            serve_bpop(&mut state, 0, &argv(&["blpop", "a", "0"]), b"a", 0),
            None
        );
        push(&mut state, "a", &["1", "2"]);
        let reply = serve_bpop(&mut state, 0, &argv(&["BRPOP", "a", "0"]), b"a", 0);
        assert_eq!(reply, Some(pair_reply(b("a"), b("2"))));
        assert_eq!(state.dirty, 1);
        let args = argv(&["blmpop", "0", "1", "a", "left", "count", "5"]);
        let reply = serve_bmpop(&mut state, 0, &args, b"a", 0);
        assert_eq!(reply, Some(mpop_reply(b("a"), vec![b("1")])));
        assert!(state.keyspace.db_mut(0).is_empty());
    }

    #[test]
    fn serve_move_reports_a_wrong_type_destination() {
        let mut state = State::new(1);
        push(&mut state, "src", &["x"]);
        state
            .keyspace
            .db_mut(0)
            .insert(b("dst"), crate::keyspace::Value::Str(b("s")), None);
        let args = argv(&["blmove", "src", "dst", "left", "right", "0"]);
        let reply = serve_bmove(&mut state, 0, &args, b"src", 0);
        assert!(matches!(reply, Some(Reply::Error(ref e)) if e.starts_with("WRONGTYPE")));
        let args = argv(&["brpoplpush", "src", "new", "0"]);
        assert_eq!(
            serve_bmove(&mut state, 0, &args, b"src", 0),
            Some(Reply::Bulk(b("x")))
        );
        assert_eq!(serve_bmove(&mut state, 0, &args, b"src", 0), None);
    }
}
