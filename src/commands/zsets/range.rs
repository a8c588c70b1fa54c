//! The range commands: ZRANGE with BYSCORE, BYLEX, REV, LIMIT and
//! WITHSCORES, its older forms (ZREVRANGE, Z[REV]RANGEBYSCORE,
//! Z[REV]RANGEBYLEX), ZRANGESTORE, and ZREMRANGEBYRANK/SCORE/LEX.
//!
//! Every form is parsed by one function in the order of Redis 7.0's
//! `zrangeGenericCommand` (options, then conflicts, then the range, then the
//! key), so the same bad input gets the same error. A range becomes a start
//! rank, a direction and a length, found in O(log n) by
//! [`ZSet::score_ranks`]/[`ZSet::lex_ranks`] and walked in O(k).

use std::iter::Take;

use bytes::Bytes;

use super::parse::{lex_range, score_range};
use super::{existing_zset, existing_zset_mut, owned, read_zset, resp3, scored, store_result, Ctx};
use crate::commands::args;
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::zset::order::cmp_entry;
use crate::keyspace::zset::{LexBound, RangeIter, ScoreBound, ZSet};
use crate::pubsub::notify;
use crate::reply::Reply;

/// What a range selects.
enum Kind {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

/// The range type a command fixes, or `Auto` for ZRANGE's keywords.
#[derive(Clone, Copy, PartialEq)]
enum Preset {
    Auto,
    Rank,
    Score,
    Lex,
}

struct Request {
    kind: Kind,
    rev: bool,
    offset: i64,
    /// Negative: no limit.
    limit: i64,
    withscores: bool,
}

/// Parses `key min max [options]` with the key at `key_idx`.
fn parse(
    args: &[Bytes],
    key_idx: usize,
    preset: Preset,
    rev_preset: Option<bool>,
    store: bool,
) -> Result<Request, CommandError> {
    let mut kind = preset;
    let mut rev = rev_preset;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut withscores = false;
    let mut j = key_idx + 3;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && args::is(a, "withscores") {
            withscores = true;
        } else if args::is(a, "limit") && left >= 2 {
            offset = args::int(&args[j + 1])?;
            limit = args::int(&args[j + 2])?;
            j += 2;
        } else if rev.is_none() && args::is(a, "rev") {
            rev = Some(true);
        } else if kind == Preset::Auto && args::is(a, "bylex") {
            kind = Preset::Lex;
        } else if kind == Preset::Auto && args::is(a, "byscore") {
            kind = Preset::Score;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if kind == Preset::Auto {
        kind = Preset::Rank;
    }
    if limit != -1 && kind == Preset::Rank {
        return Err(CommandError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == Preset::Lex {
        return Err(CommandError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut lo, mut hi) = (&args[key_idx + 1], &args[key_idx + 2]);
    // The reverse forms take the range as `max min`.
    if rev && kind != Preset::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let kind = match kind {
        Preset::Score => {
            let (min, max) = score_range(lo, hi)?;
            Kind::Score(min, max)
        }
        Preset::Lex => {
            let (min, max) = lex_range(lo, hi)?;
            Kind::Lex(min, max)
        }
        Preset::Rank | Preset::Auto => Kind::Rank(args::int(lo)?, args::int(hi)?),
    };
    Ok(Request {
        kind,
        rev,
        offset,
        limit,
        withscores,
    })
}

/// Clamps Redis-style `start stop` ranks (negatives from the end) to the
/// ascending ranks `lo..hi` of a set of `len`.
fn rank_span(start: i64, end: i64, len: usize) -> (usize, usize) {
    let llen = len as i64;
    let start = if start < 0 { llen + start } else { start }.max(0);
    let end = if end < 0 { llen + end } else { end };
    if start > end || start >= llen {
        return (0, 0);
    }
    let end = end.min(llen - 1);
    (start as usize, end as usize + 1)
}

/// The pairs a request selects, in reply order (a walk, nothing collected).
fn select<'z>(z: &'z ZSet, req: &Request) -> Take<RangeIter<'z>> {
    let (lo, hi, offset, limit) = match &req.kind {
        Kind::Rank(start, end) => {
            let (lo, hi) = if req.rev {
                // Ranks counted from the top.
                let (a, b) = rank_span(*start, *end, z.len());
                (z.len() - b, z.len() - a)
            } else {
                rank_span(*start, *end, z.len())
            };
            (lo, hi, 0, -1)
        }
        Kind::Score(min, max) => {
            let (lo, hi) = z.score_ranks(*min, *max);
            (lo, hi, req.offset, req.limit)
        }
        Kind::Lex(min, max) => {
            let (lo, hi) = z.lex_ranks(min, max);
            (lo, hi, req.offset, req.limit)
        }
    };
    // A negative offset skips everything in Redis's walk.
    let Ok(offset) = usize::try_from(offset) else {
        return z.iter_from(z.len(), false).take(0);
    };
    let avail = (hi - lo).saturating_sub(offset);
    let n = usize::try_from(limit).map_or(avail, |l| l.min(avail));
    if n == 0 {
        z.iter_from(z.len(), false).take(0)
    } else if req.rev {
        z.iter_from(hi - 1 - offset, true).take(n)
    } else {
        z.iter_from(lo + offset, false).take(n)
    }
}

fn range_reply(ctx: &mut Ctx<'_>, args: &[Bytes], preset: Preset, rev: Option<bool>) -> CmdResult {
    let req = parse(args, 1, preset, rev, false)?;
    let resp3 = resp3(ctx);
    let Some(z) = read_zset(ctx, &args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    Ok(scored(select(z, &req), req.withscores, resp3))
}

pub(super) fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    range_reply(ctx, args, Preset::Auto, None)
}

pub(super) fn zrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    range_reply(ctx, args, Preset::Rank, Some(true))
}

pub(super) fn zrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    range_reply(ctx, args, Preset::Score, Some(false))
}

pub(super) fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    range_reply(ctx, args, Preset::Score, Some(true))
}

pub(super) fn zrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    range_reply(ctx, args, Preset::Lex, Some(false))
}

pub(super) fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    range_reply(ctx, args, Preset::Lex, Some(true))
}

pub(super) fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let req = parse(args, 2, Preset::Auto, None, true)?;
    let mut pairs: Vec<(f64, Bytes)> = match read_zset(ctx, &args[2])? {
        None => Vec::new(),
        Some(z) => select(z, &req)
            .map(|(s, m)| (s, Bytes::copy_from_slice(m)))
            .collect(),
    };
    if req.rev {
        pairs.reverse();
    }
    debug_assert!(pairs
        .windows(2)
        .all(|w| cmp_entry(w[0].0, &w[0].1, w[1].0, &w[1].1).is_lt()));
    let result = ZSet::from_sorted_tree(pairs);
    store_result(ctx, &owned(&args[1]), result, "zrangestore")
}

/// ZREMRANGEBY*: removes ranks `lo..hi` of the set at `key`.
fn remove_span(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    span: impl FnOnce(&ZSet) -> (usize, usize),
    event: &str,
) -> CmdResult {
    let Some(z) = existing_zset(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let (lo, hi) = span(z);
    if lo >= hi {
        return Ok(Reply::Integer(0));
    }
    let Some(z) = existing_zset_mut(ctx, key)? else {
        return Ok(Reply::Integer(0));
    };
    let n = z.remove_ranks(lo, hi).len();
    ctx.db().remove_if_empty(key);
    ctx.dirty(n as u64);
    ctx.notify(notify::ZSET, event, key);
    ctx.del_if_gone(key);
    Ok(Reply::Integer(n as i64))
}

pub(super) fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (start, end) = (args::int(&args[2])?, args::int(&args[3])?);
    remove_span(
        ctx,
        &args[1],
        |z| rank_span(start, end, z.len()),
        "zremrangebyrank",
    )
}

pub(super) fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (min, max) = score_range(&args[2], &args[3])?;
    remove_span(
        ctx,
        &args[1],
        |z| z.score_ranks(min, max),
        "zremrangebyscore",
    )
}

pub(super) fn zremrangebylex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (min, max) = lex_range(&args[2], &args[3])?;
    remove_span(ctx, &args[1], |z| z.lex_ranks(&min, &max), "zremrangebylex")
}

#[cfg(test)]
mod tests {
    use super::rank_span;

    #[test]
    fn rank_spans_clamp_like_redis() {
        assert_eq!(rank_span(0, -1, 5), (0, 5));
        assert_eq!(rank_span(-100, 100, 5), (0, 5));
        assert_eq!(rank_span(3, 1, 5), (0, 0));
        assert_eq!(rank_span(5, 10, 5), (0, 0));
        assert_eq!(rank_span(-2, -1, 5), (3, 5));
        assert_eq!(rank_span(0, 0, 0), (0, 0));
    }
}
