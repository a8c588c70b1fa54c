//! Geo commands with Redis 7.0's replies and errors: GEOADD, GEODIST,
//! GEOHASH and GEOPOS here, the searches (GEOSEARCH, GEOSEARCHSTORE,
//! GEORADIUS, GEORADIUSBYMEMBER and their `_RO` forms) in [`search`].
//!
//! A geo index is a plain sorted set whose scores are 52-bit geohashes
//! ([`crate::geo`]): GEOADD is ZADD with computed scores (its `zadd`
//! event included), and every sorted set command works on the same key.
//! Coordinates are replied as Redis's human long doubles (bulk strings in
//! RESP2, doubles in RESP3), distances as 4-decimal bulk strings.

mod search;

use bytes::Bytes;

use super::args;
use super::flags::*;
use super::hashes::lookup_read;
use super::{spec, CommandSpec, Ctx, KEY1};
use crate::errors::{geo as msg, CmdResult, CommandError};
use crate::geo::{self, format};
use crate::keyspace::zset::ZSet;
use crate::keyspace::Value;
use crate::reply::Reply;

const fn g(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    since: &'static str,
    summary: &'static str,
    handler: super::Handler,
) -> CommandSpec {
    CommandSpec {
        since,
        ..spec(name, arity, flags, keys, "geo", summary, handler)
    }
}

pub const COMMANDS: &[CommandSpec] = &[
    g("geoadd", -5, WRITE | DENYOOM, KEY1, "3.2.0", "Add one or more geospatial items in the geospatial index represented using a sorted set", geoadd),
    g("geodist", -4, READONLY, KEY1, "3.2.0", "Returns the distance between two members of a geospatial index", geodist),
    g("geohash", -2, READONLY, KEY1, "3.2.0", "Returns members of a geospatial index as standard geohash strings", geohash),
    g("geopos", -2, READONLY, KEY1, "3.2.0", "Returns longitude and latitude of members of a geospatial index", geopos),
    g("georadius", -6, WRITE | DENYOOM, KEY1, "3.2.0", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point", search::georadius),
    g("georadius_ro", -6, READONLY, KEY1, "3.2.10", "A read-only variant for GEORADIUS", search::georadius_ro),
    g("georadiusbymember", -5, WRITE | DENYOOM, KEY1, "3.2.0", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member", search::georadiusbymember),
    g("georadiusbymember_ro", -5, READONLY, KEY1, "3.2.10", "A read-only variant for GEORADIUSBYMEMBER", search::georadiusbymember_ro),
    g("geosearch", -7, READONLY, KEY1, "6.2.0", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.", search::geosearch),
    g("geosearchstore", -8, WRITE | DENYOOM, (1, 2, 1), "6.2.0", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.", search::geosearchstore),
];

/// The sorted set at `key` for a read (keyspace hits and misses counted),
/// as an O(1) clone so the command may go on using the context.
fn read_index(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<ZSet>, CommandError> {
    Ok(lookup_read(ctx, key)
        .map(Value::as_zset)
        .transpose()?
        .cloned())
}

/// A `lon lat` argument pair: two floats within the storable bounds.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<[f64; 2], CommandError> {
    let lon = args::float(lon)?;
    let lat = args::float(lat)?;
    if !geo::valid_point(lon, lat) {
        return Err(CommandError::err(msg::invalid_pair(
            &format::fixed6(lon),
            &format::fixed6(lat),
        )));
    }
    Ok([lon, lat])
}

/// A unit's size in meters.
fn unit(arg: &[u8]) -> Result<f64, CommandError> {
    geo::unit_in_meters(arg).ok_or_else(|| CommandError::err(msg::UNIT))
}

/// A coordinate reply: a bulk string in RESP2, a double in RESP3.
fn coordinate(d: f64) -> Reply {
    Reply::Line3(b',', format::coordinate(d))
}

/// `[lon, lat]` as GEOPOS and WITHCOORD reply with it.
fn position(point: [f64; 2]) -> Reply {
    Reply::Array(vec![coordinate(point[0]), coordinate(point[1])])
}

fn distance_reply(meters_in_unit: f64) -> Reply {
    Reply::Bulk(Bytes::from(format::distance(meters_in_unit)))
}

/// `GEOADD key [NX|XX] [CH] lon lat member ...`: ZADD with each point's
/// geohash as its score.
fn geoadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut first = 2;
    while first < args.len() {
        let a = &args[first];
        if args::is(a, "nx") {
            nx = true;
        } else if args::is(a, "xx") {
            xx = true;
        } else if args::is(a, "ch") {
            ch = true;
        } else {
            break;
        }
        first += 1;
    }
    if !(args.len() - first).is_multiple_of(3) || (nx && xx) {
        return Err(CommandError::Syntax);
    }
    let pairs: Vec<(f64, &Bytes)> = args[first..]
        .chunks_exact(3)
        .map(|t| {
            let [lon, lat] = lon_lat(&t[0], &t[1])?;
            let score = geo::score_of_point(lon, lat).unwrap_or(0);
            Ok((score as f64, &t[2]))
        })
        .collect::<Result<_, CommandError>>()?;
    super::zsets::zadd_checked(ctx, &args[1], &pairs, nx, xx, ch)
}

/// `GEODIST key member1 member2 [unit]`.
fn geodist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let to_meters = match args.len() {
        4 => 1.0,
        5 => unit(&args[4])?,
        _ => return Err(CommandError::Syntax),
    };
    let Some(z) = read_index(ctx, &args[1])? else {
        return Ok(Reply::Null);
    };
    let (Some(a), Some(b)) = (z.score(&args[2]), z.score(&args[3])) else {
        return Ok(Reply::Null);
    };
    let [lon1, lat1] = geo::point_of_score(a);
    let [lon2, lat2] = geo::point_of_score(b);
    let d = geo::distance::distance(lon1, lat1, lon2, lat2);
    Ok(distance_reply(d / to_meters))
}

/// `GEOHASH key member...`: standard 11-character geohash strings.
fn geohash(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let z = read_index(ctx, &args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| match z.as_ref().and_then(|z| z.score(m)) {
                Some(score) => {
                    Reply::Bulk(Bytes::copy_from_slice(&geo::hash::geohash_string(score)))
                }
                None => Reply::Null,
            })
            .collect(),
    ))
}

/// `GEOPOS key member...`: each member's `[lon, lat]`, or a null array.
fn geopos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let z = read_index(ctx, &args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|m| match z.as_ref().and_then(|z| z.score(m)) {
                Some(score) => position(geo::point_of_score(score)),
                None => Reply::NullArray,
            })
            .collect(),
    ))
}
