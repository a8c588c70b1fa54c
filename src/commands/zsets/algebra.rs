//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD, as Redis 7.0's
//! `zunionInterDiffGenericCommand`: inputs may be sorted sets or plain sets
//! (every member scoring 1), weighted and aggregated with SUM, MIN or MAX; a
//! product or sum that comes out NaN (`0 * inf`, `inf + -inf`) counts as 0.
//!
//! Inputs are O(1) clones taken up front; the union and intersection visit
//! the inputs smallest first, as Redis does, so sums add in the same order.

use std::collections::HashMap;

use bytes::Bytes;

use super::{owned, resp3, scored, store_result, Ctx};
use crate::commands::args;
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::set::Set;
use crate::keyspace::zset::order::cmp_entry;
use crate::keyspace::zset::ZSet;
use crate::keyspace::Value;
use crate::reply::Reply;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// One input: a sorted set, a set (scores 1) or nothing (a missing key).
enum Source {
    Z(ZSet),
    S(Set),
    None,
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::Z(z) => z.len(),
            Source::S(s) => s.len(),
            Source::None => 0,
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Z(z) => z.score(member),
            Source::S(s) => s.contains(member).then_some(1.0),
            Source::None => None,
        }
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Source::Z(z) => z.iter().for_each(|(s, m)| f(m, s)),
            Source::S(s) => s.iter().for_each(|m| f(&m.to_bytes(), 1.0)),
            Source::None => {}
        }
    }
}

fn weighted(weight: f64, score: f64) -> f64 {
    let v = weight * score;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

fn aggregate(target: &mut f64, value: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += value;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if value < *target {
                *target = value;
            }
        }
        Aggregate::Max => {
            if value > *target {
                *target = value;
            }
        }
    }
}

/// The input keys' values; a key of any other type is WRONGTYPE. `read`
/// lookups count keyspace hits and misses, a STORE's do not.
fn gather(ctx: &mut Ctx<'_>, keys: &[Bytes], read: bool) -> Result<Vec<Source>, CommandError> {
    let now = ctx.now_ms;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let found = ctx.db().get(key, now).map(|e| e.value.clone());
        if read {
            let stats = &mut ctx.state.stats;
            if found.is_some() {
                stats.keyspace_hits += 1;
            } else {
                stats.keyspace_misses += 1;
            }
        }
        out.push(match found {
            None => Source::None,
            Some(Value::ZSet(z)) => Source::Z(z),
            Some(Value::Set(s)) => Source::S(s),
            Some(_) => return Err(CommandError::WrongType),
        });
    }
    Ok(out)
}

/// `numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`.
struct Parsed {
    sources: Vec<Source>,
    weights: Vec<f64>,
    how: Aggregate,
    withscores: bool,
}

fn parse(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    numkeys_idx: usize,
    op: Op,
    store: bool,
    name: &str,
) -> Result<Parsed, CommandError> {
    let setnum = args::int(&args[numkeys_idx])?;
    if setnum < 1 {
        return Err(CommandError::err(format!(
            "at least 1 input key is needed for '{name}' command"
        )));
    }
    let first = numkeys_idx + 1;
    let setnum = usize::try_from(setnum).unwrap_or(usize::MAX);
    if setnum > args.len() - first {
        return Err(CommandError::Syntax);
    }
    let sources = gather(ctx, &args[first..first + setnum], !store)?;
    let mut weights = vec![1.0; setnum];
    let mut how = Aggregate::Sum;
    let mut withscores = false;
    let mut j = first + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        if op != Op::Diff && remaining > setnum && args::is(&args[j], "weights") {
            for (i, w) in weights.iter_mut().enumerate() {
                *w = args::parse_f64(&args[j + 1 + i])
                    .ok_or_else(|| CommandError::err("weight value is not a float"))?;
            }
            j += 1 + setnum;
        } else if op != Op::Diff && remaining >= 2 && args::is(&args[j], "aggregate") {
            let a = &args[j + 1];
            how = if args::is(a, "sum") {
                Aggregate::Sum
            } else if args::is(a, "min") {
                Aggregate::Min
            } else if args::is(a, "max") {
                Aggregate::Max
            } else {
                return Err(CommandError::Syntax);
            };
            j += 2;
        } else if !store && args::is(&args[j], "withscores") {
            withscores = true;
            j += 1;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(Parsed {
        sources,
        weights,
        how,
        withscores,
    })
}

/// The result pairs in ascending (score, member) order.
fn compute(p: &Parsed, op: Op) -> Vec<(f64, Bytes)> {
    let mut out: Vec<(f64, Bytes)> = Vec::new();
    // Smallest input first, as Redis sorts them for union and intersection.
    let mut order: Vec<usize> = (0..p.sources.len()).collect();
    match op {
        Op::Inter => {
            order.sort_by_key(|&i| p.sources[i].len());
            let (first, rest) = order.split_first().expect("at least one key");
            let src = &p.sources[*first];
            if src.len() == 0 {
                return out;
            }
            src.for_each(|m, s| {
                let mut score = weighted(p.weights[*first], s);
                for &j in rest {
                    match p.sources[j].score(m) {
                        Some(v) => aggregate(&mut score, weighted(p.weights[j], v), p.how),
                        None => return,
                    }
                }
                out.push((score, Bytes::copy_from_slice(m)));
            });
        }
        Op::Union => {
            order.sort_by_key(|&i| p.sources[i].len());
            let mut acc: HashMap<Bytes, f64> = HashMap::new();
            for &i in &order {
                p.sources[i].for_each(|m, s| {
                    let v = weighted(p.weights[i], s);
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, v, p.how),
                        None => {
                            acc.insert(Bytes::copy_from_slice(m), v);
                        }
                    }
                });
            }
            out = acc.into_iter().map(|(m, s)| (s, m)).collect();
        }
        Op::Diff => {
            let (first, rest) = p.sources.split_first().expect("at least one key");
            first.for_each(|m, s| {
                if rest.iter().all(|r| r.score(m).is_none()) {
                    out.push((s, Bytes::copy_from_slice(m)));
                }
            });
        }
    }
    out.sort_by(|a, b| cmp_entry(a.0, &a.1, b.0, &b.1));
    out
}

fn reply(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op, name: &str) -> CmdResult {
    let p = parse(ctx, args, 1, op, false, name)?;
    let pairs = compute(&p, op);
    Ok(scored(
        pairs.iter().map(|(s, m)| (*s, &m[..])),
        p.withscores,
        resp3(ctx),
    ))
}

fn store(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op, name: &str) -> CmdResult {
    let p = parse(ctx, args, 2, op, true, name)?;
    let pairs = compute(&p, op);
    drop(p);
    let result = ZSet::from_sorted_tree(pairs);
    store_result(ctx, &owned(&args[1]), result, name)
}

pub(super) fn zunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    reply(ctx, args, Op::Union, "zunion")
}

pub(super) fn zinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    reply(ctx, args, Op::Inter, "zinter")
}

pub(super) fn zdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    reply(ctx, args, Op::Diff, "zdiff")
}

pub(super) fn zunionstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    store(ctx, args, Op::Union, "zunionstore")
}

pub(super) fn zinterstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    store(ctx, args, Op::Inter, "zinterstore")
}

pub(super) fn zdiffstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    store(ctx, args, Op::Diff, "zdiffstore")
}

/// ZINTERCARD numkeys key... [LIMIT limit]; a limit of 0 means none.
pub(super) fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let setnum = args::int(&args[1])?;
    if setnum < 1 {
        return Err(CommandError::err(
            "at least 1 input key is needed for 'zintercard' command",
        ));
    }
    let setnum = usize::try_from(setnum).unwrap_or(usize::MAX);
    if setnum > args.len() - 2 {
        return Err(CommandError::Syntax);
    }
    let keys = &args[2..2 + setnum];
    let sources = gather(ctx, keys, true)?;
    let mut limit = 0usize;
    let mut j = 2 + setnum;
    while j < args.len() {
        if j + 1 < args.len() && args::is(&args[j], "limit") {
            limit = args::parse_i64_strict(&args[j + 1])
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| CommandError::err("LIMIT can't be negative"))?;
            j += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let limit = if limit == 0 { usize::MAX } else { limit };
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| sources[i].len());
    let (first, rest) = order.split_first().expect("at least one key");
    let mut card = 0usize;
    let src = &sources[*first];
    src.for_each(|m, _| {
        if card < limit && rest.iter().all(|&j| sources[j].score(m).is_some()) {
            card += 1;
        }
    });
    Ok(Reply::Integer(card as i64))
}
