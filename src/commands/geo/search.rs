//! The geo searches: GEOSEARCH and GEOSEARCHSTORE (centre from a member
//! or coordinates, a radius or a box), the older GEORADIUS and
//! GEORADIUSBYMEMBER (with STORE and STOREDIST) and their read-only `_RO`
//! forms, all through one option parser and one search, as Redis's
//! `georadiusGeneric`: the same option words per command, the same error
//! order, and the same replies.

use bytes::Bytes;

use super::super::hashes::owned;
use super::super::{args, Ctx};
use super::{coordinate, distance_reply, lon_lat, msg, read_index, unit};
use crate::errors::{CmdResult, CommandError};
use crate::geo::area::Kind;
use crate::geo::search::{search, sort_by_distance, Found};
use crate::geo::{self, hash, Shape};
use crate::keyspace::zset::ZSet;
use crate::keyspace::Value;
use crate::pubsub::notify;
use crate::reply::Reply;

/// Which command is parsing: what its fixed arguments are and which
/// options it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// GEORADIUS: `key lon lat radius unit`.
    Radius,
    /// GEORADIUSBYMEMBER: `key member radius unit`.
    ByMember,
    /// GEOSEARCH: `key` then FROM... and BY... options.
    Search,
    /// GEOSEARCHSTORE: `dest src` then as GEOSEARCH, plus STOREDIST.
    SearchStore,
}

pub(super) fn georadius(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Variant::Radius, false)
}

pub(super) fn georadius_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Variant::Radius, true)
}

pub(super) fn georadiusbymember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Variant::ByMember, false)
}

pub(super) fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Variant::ByMember, true)
}

pub(super) fn geosearch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Variant::Search, false)
}

pub(super) fn geosearchstore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Variant::SearchStore, false)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// Everything the options asked for.
struct Request {
    center: Option<[f64; 2]>,
    kind: Option<Kind>,
    conversion: f64,
    store: Option<Bytes>,
    storedist: bool,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    any: bool,
    /// 0: no COUNT.
    count: usize,
}

/// The point of `member` in `z`, for a centre.
fn member_point(z: &ZSet, member: &[u8]) -> Result<[f64; 2], CommandError> {
    z.score(member)
        .map(geo::point_of_score)
        .ok_or_else(|| CommandError::err(msg::UNKNOWN_MEMBER))
}

/// `radius unit`, as a circle and the unit's size in meters.
fn radius(r: &[u8], u: &[u8]) -> Result<(Kind, f64), CommandError> {
    let r = args::parse_f64(r).ok_or_else(|| CommandError::err(msg::NEED_RADIUS))?;
    if r < 0.0 {
        return Err(CommandError::err(msg::NEGATIVE_RADIUS));
    }
    Ok((Kind::Radius(r), unit(u)?))
}

/// `width height unit`, as a box and the unit's size in meters.
fn bybox(w: &[u8], h: &[u8], u: &[u8]) -> Result<(Kind, f64), CommandError> {
    let width = args::parse_f64(w).ok_or_else(|| CommandError::err(msg::NEED_WIDTH))?;
    let height = args::parse_f64(h).ok_or_else(|| CommandError::err(msg::NEED_HEIGHT))?;
    if height < 0.0 || width < 0.0 {
        return Err(CommandError::err(msg::NEGATIVE_BOX));
    }
    Ok((Kind::Box { width, height }, unit(u)?))
}

/// Parses the fixed arguments and the options in Redis's order: each
/// value is checked as it is met, so the first bad one is the error.
fn parse(
    args: &[Bytes],
    variant: Variant,
    no_store: bool,
    z: Option<&ZSet>,
) -> Result<Request, CommandError> {
    let mut req = Request {
        center: None,
        kind: None,
        conversion: 1.0,
        store: None,
        storedist: false,
        withdist: false,
        withhash: false,
        withcoord: false,
        sort: Sort::None,
        any: false,
        count: 0,
    };
    let search = matches!(variant, Variant::Search | Variant::SearchStore);
    let base = match variant {
        Variant::Radius => {
            req.center = Some(lon_lat(&args[2], &args[3])?);
            (req.kind, req.conversion) = radius(&args[4], &args[5]).map(|(k, c)| (Some(k), c))?;
            6
        }
        // Without a source the reply is empty whatever the arguments say,
        // but the options are still parsed (STORE changes the reply).
        Variant::ByMember => {
            if let Some(z) = z {
                req.center = Some(member_point(z, &args[2])?);
                (req.kind, req.conversion) =
                    radius(&args[3], &args[4]).map(|(k, c)| (Some(k), c))?;
            }
            5
        }
        Variant::Search => 2,
        Variant::SearchStore => {
            req.store = Some(args[1].clone());
            3
        }
    };
    let (mut frommember, mut fromloc, mut byradius, mut bybox_seen) = (false, false, false, false);
    let rest = &args[base..];
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        let left = rest.len() - i - 1;
        if args::is(arg, "withdist") {
            req.withdist = true;
        } else if args::is(arg, "withhash") {
            req.withhash = true;
        } else if args::is(arg, "withcoord") {
            req.withcoord = true;
        } else if args::is(arg, "any") {
            req.any = true;
        } else if args::is(arg, "asc") {
            req.sort = Sort::Asc;
        } else if args::is(arg, "desc") {
            req.sort = Sort::Desc;
        } else if args::is(arg, "count") && left >= 1 {
            let n = args::int(&rest[i + 1])?;
            if n <= 0 {
                return Err(CommandError::err(msg::COUNT_POSITIVE));
            }
            req.count = usize::try_from(n).unwrap_or(usize::MAX);
            i += 1;
        } else if (args::is(arg, "store") || args::is(arg, "storedist"))
            && left >= 1
            && !no_store
            && !search
        {
            req.store = Some(rest[i + 1].clone());
            req.storedist = args::is(arg, "storedist");
            i += 1;
        } else if args::is(arg, "storedist") && variant == Variant::SearchStore {
            req.storedist = true;
        } else if args::is(arg, "frommember") && left >= 1 && search && !fromloc {
            // Without a source there is nothing to look the member up in.
            if let Some(z) = z {
                req.center = Some(member_point(z, &rest[i + 1])?);
            }
            frommember = true;
            i += 1;
        } else if args::is(arg, "fromlonlat") && left >= 2 && search && !frommember {
            req.center = Some(lon_lat(&rest[i + 1], &rest[i + 2])?);
            fromloc = true;
            i += 2;
        } else if args::is(arg, "byradius") && left >= 2 && search && !bybox_seen {
            let (k, c) = radius(&rest[i + 1], &rest[i + 2])?;
            (req.kind, req.conversion) = (Some(k), c);
            byradius = true;
            i += 2;
        } else if args::is(arg, "bybox") && left >= 3 && search && !byradius {
            let (k, c) = bybox(&rest[i + 1], &rest[i + 2], &rest[i + 3])?;
            (req.kind, req.conversion) = (Some(k), c);
            bybox_seen = true;
            i += 3;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    if req.store.is_some() && (req.withdist || req.withhash || req.withcoord) {
        return Err(CommandError::err(if variant == Variant::SearchStore {
            msg::SEARCHSTORE_WITH_OPTIONS
        } else {
            msg::STORE_WITH_OPTIONS
        }));
    }
    let name = String::from_utf8_lossy(&args[0]);
    if search && !(frommember || fromloc) {
        return Err(CommandError::err(msg::missing_center(&name)));
    }
    if search && !(byradius || bybox_seen) {
        return Err(CommandError::err(msg::missing_shape(&name)));
    }
    if req.any && req.count == 0 {
        return Err(CommandError::err(msg::ANY_WITHOUT_COUNT));
    }
    Ok(req)
}

fn generic(ctx: &mut Ctx<'_>, args: &[Bytes], variant: Variant, no_store: bool) -> CmdResult {
    let src = if variant == Variant::SearchStore {
        2
    } else {
        1
    };
    let z = read_index(ctx, &args[src])?;
    let mut req = parse(args, variant, no_store, z.as_ref())?;
    let (Some(z), Some(center), Some(kind)) = (z, req.center, req.kind) else {
        // No source: an empty reply, or an emptied destination.
        return match req.store {
            Some(dest) => {
                delete_destination(ctx, &dest);
                Ok(Reply::Integer(0))
            }
            None => Ok(Reply::Array(Vec::new())),
        };
    };
    // The nearest N need an order; ANY takes the first N found.
    if req.count > 0 && req.sort == Sort::None && !req.any {
        req.sort = Sort::Asc;
    }
    let shape = Shape {
        center,
        kind,
        conversion: req.conversion,
    };
    let limit = (req.any).then_some(req.count);
    let mut found = search(&z, &shape, limit);
    if found.is_empty() && req.store.is_none() {
        return Ok(Reply::Array(Vec::new()));
    }
    if req.sort != Sort::None {
        let keep = if req.count > 0 {
            req.count
        } else {
            found.len()
        };
        sort_by_distance(&mut found, req.sort == Sort::Desc, keep);
    }
    if req.count > 0 {
        found.truncate(req.count);
    }
    for f in &mut found {
        f.dist /= req.conversion;
    }
    match req.store.take() {
        None => Ok(reply(&req, found)),
        Some(dest) => Ok(store(ctx, &dest, &req, variant, found)),
    }
}

/// The found points, each alone or with its distance, hash and position.
fn reply(req: &Request, found: Vec<Found>) -> Reply {
    let extras = req.withdist || req.withhash || req.withcoord;
    Reply::Array(
        found
            .into_iter()
            .map(|f| {
                if !extras {
                    return Reply::Bulk(f.member);
                }
                let mut item = vec![Reply::Bulk(f.member)];
                if req.withdist {
                    item.push(distance_reply(f.dist));
                }
                if req.withhash {
                    item.push(Reply::Integer(hash::score_as_i64(f.score)));
                }
                if req.withcoord {
                    item.push(Reply::Array(vec![
                        coordinate(f.point[0]),
                        coordinate(f.point[1]),
                    ]));
                }
                Reply::Array(item)
            })
            .collect(),
    )
}

/// Stores the found points at `dest` (scores: their geohashes, or their
/// distances with STOREDIST), replacing whatever was there; an empty result
/// deletes `dest`. Replies with the number stored.
fn store(
    ctx: &mut Ctx<'_>,
    dest: &Bytes,
    req: &Request,
    variant: Variant,
    found: Vec<Found>,
) -> Reply {
    let stored = found.len();
    if stored == 0 {
        delete_destination(ctx, dest);
        return Reply::Integer(0);
    }
    let mut pairs: Vec<(f64, Bytes)> = found
        .into_iter()
        .map(|f| (if req.storedist { f.dist } else { f.score }, f.member))
        .collect();
    pairs.sort_by(|a, b| crate::keyspace::zset::order::cmp_entry(a.0, &a.1, b.0, &b.1));
    pairs.dedup_by(|a, b| a.1 == b.1);
    let mut result = ZSet::from_sorted_tree(pairs);
    let limits = ctx.state.encodings;
    result.shrink_if_small(&limits);
    ctx.db().insert(owned(dest), Value::ZSet(result), None);
    ctx.dirty(stored as u64);
    let event = if variant == Variant::SearchStore {
        "geosearchstore"
    } else {
        "georadiusstore"
    };
    ctx.notify(notify::ZSET, event, dest);
    ctx.signal_key(dest);
    Reply::Integer(stored as i64)
}

/// Deletes a STORE destination the search left empty.
fn delete_destination(ctx: &mut Ctx<'_>, dest: &Bytes) {
    if ctx.db().remove(dest).is_some() {
        ctx.dirty(1);
        ctx.notify(notify::GENERIC, "del", dest);
    }
}
