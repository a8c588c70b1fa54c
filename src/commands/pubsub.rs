//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH,
//! their shard channel forms SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, and PUBSUB
//! CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB (delivery itself
//! is in [`crate::pubsub`]).
//!
//! A (un)subscribe command answers with one frame per channel. All but the last
//! go through the client's own message queue, which the connection empties
//! before it writes a reply, so the frames reach the client in order and ahead
//! of anything the command is followed by.

use bytes::Bytes;

use super::flags::*;
use super::server::{dispatch_sub, help_reply, Sub};
use super::{spec, CommandSpec, Ctx, NO_KEYS};
use crate::errors::CmdResult;
use crate::pubsub::Kind;
use crate::reply::Reply;

const SUBSCRIBE_FLAGS: u32 = PUBSUB | NOSCRIPT | LOADING | STALE;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        since: "2.0.0",
        ..spec(
            "subscribe",
            -2,
            SUBSCRIBE_FLAGS,
            NO_KEYS,
            "pubsub",
            "Listens for messages published to channels.",
            subscribe,
        )
    },
    CommandSpec {
        since: "2.0.0",
        ..spec(
            "unsubscribe",
            -1,
            SUBSCRIBE_FLAGS,
            NO_KEYS,
            "pubsub",
            "Stops listening to messages posted to channels.",
            unsubscribe,
        )
    },
    CommandSpec {
        since: "2.0.0",
        ..spec(
            "psubscribe",
            -2,
            SUBSCRIBE_FLAGS,
            NO_KEYS,
            "pubsub",
            "Listens for messages published to channels that match one or more patterns.",
            psubscribe,
        )
    },
    CommandSpec {
        since: "2.0.0",
        ..spec(
            "punsubscribe",
            -1,
            SUBSCRIBE_FLAGS,
            NO_KEYS,
            "pubsub",
            "Stops listening to messages published to channels that match one or more patterns.",
            punsubscribe,
        )
    },
    CommandSpec {
        since: "2.0.0",
        ..spec(
            "publish",
            3,
            PUBSUB | LOADING | STALE | FAST,
            NO_KEYS,
            "pubsub",
            "Posts a message to a channel.",
            publish,
        )
    },
    CommandSpec {
        since: "7.0.0",
        ..spec(
            "ssubscribe",
            -2,
            SUBSCRIBE_FLAGS,
            NO_KEYS,
            "pubsub",
            "Listen for messages published to the given shard channels",
            ssubscribe,
        )
    },
    CommandSpec {
        since: "7.0.0",
        ..spec(
            "sunsubscribe",
            -1,
            SUBSCRIBE_FLAGS,
            NO_KEYS,
            "pubsub",
            "Stop listening for messages posted to the given shard channels",
            sunsubscribe,
        )
    },
    CommandSpec {
        since: "7.0.0",
        ..spec(
            "spublish",
            3,
            PUBSUB | LOADING | STALE | FAST,
            NO_KEYS,
            "pubsub",
            "Post a message to a shard channel",
            spublish,
        )
    },
    CommandSpec {
        since: "2.8.0",
        ..spec(
            "pubsub",
            -2,
            0,
            NO_KEYS,
            "pubsub",
            "A container for Pub/Sub commands.",
            pubsub,
        )
    },
];

fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    subscribe_to(ctx, &args[1..], Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    subscribe_to(ctx, &args[1..], Kind::Pattern)
}

fn unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    unsubscribe_from(ctx, &args[1..], Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    unsubscribe_from(ctx, &args[1..], Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    subscribe_to(ctx, &args[1..], Kind::Shard)
}

fn sunsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    unsubscribe_from(ctx, &args[1..], Kind::Shard)
}

fn verb(kind: Kind, subscribe: bool) -> &'static str {
    match (kind, subscribe) {
        (Kind::Channel, true) => "subscribe",
        (Kind::Channel, false) => "unsubscribe",
        (Kind::Pattern, true) => "psubscribe",
        (Kind::Pattern, false) => "punsubscribe",
        (Kind::Shard, true) => "ssubscribe",
        (Kind::Shard, false) => "sunsubscribe",
    }
}

/// The count a (un)subscribe frame carries: shard channels are counted on
/// their own, channels and patterns together, as in Redis.
fn count_of(subs: &crate::pubsub::ClientSubs, kind: Kind) -> usize {
    match kind {
        Kind::Shard => subs.shards.len(),
        Kind::Channel | Kind::Pattern => subs.count(),
    }
}

fn set_of(
    subs: &mut crate::pubsub::ClientSubs,
    kind: Kind,
) -> &mut std::collections::HashSet<Bytes> {
    match kind {
        Kind::Channel => &mut subs.channels,
        Kind::Pattern => &mut subs.patterns,
        Kind::Shard => &mut subs.shards,
    }
}

fn frame(verb: &str, name: Reply, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk_str(verb),
        name,
        Reply::Integer(count as i64),
    ])
}

fn subscribe_to(ctx: &mut Ctx<'_>, names: &[Bytes], kind: Kind) -> CmdResult {
    let info = ctx.client.info.clone();
    let handle = ctx.client.subs.handle(&info, ctx.client.proto);
    let mut frames = Vec::with_capacity(names.len());
    for name in names {
        // Kept while subscribed: a copy, not a slice of the read buffer.
        let name = &crate::protocol::detach(name);
        if set_of(&mut ctx.client.subs, kind).insert(name.clone()) {
            ctx.state.pubsub.add(kind, name, &handle);
        }
        let count = count_of(&ctx.client.subs, kind);
        frames.push(frame(verb(kind, true), Reply::Bulk(name.clone()), count));
    }
    Ok(send_frames(ctx, frames))
}

fn unsubscribe_from(ctx: &mut Ctx<'_>, names: &[Bytes], kind: Kind) -> CmdResult {
    let names: Vec<Bytes> = if names.is_empty() {
        let mut all: Vec<Bytes> = set_of(&mut ctx.client.subs, kind).iter().cloned().collect();
        // Redis goes in its dict's order; sorted is as good and repeatable.
        all.sort();
        all
    } else {
        names.to_vec()
    };
    if names.is_empty() {
        let count = count_of(&ctx.client.subs, kind);
        return Ok(frame(verb(kind, false), Reply::Null, count));
    }
    let id = ctx.client.id;
    let mut frames = Vec::with_capacity(names.len());
    for name in names {
        if set_of(&mut ctx.client.subs, kind).remove(&name) {
            ctx.state.pubsub.remove(kind, &name, id);
        }
        let count = count_of(&ctx.client.subs, kind);
        frames.push(frame(verb(kind, false), Reply::Bulk(name), count));
    }
    Ok(send_frames(ctx, frames))
}

/// Queues all frames but the last on the client's own queue; returns the last.
fn send_frames(ctx: &mut Ctx<'_>, mut frames: Vec<Reply>) -> Reply {
    let last = frames.pop().unwrap_or(Reply::NullArray);
    let info = ctx.client.info.clone();
    let proto = ctx.client.proto;
    for f in &frames {
        ctx.client.subs.queue_own(&info, proto, f);
    }
    last
}

fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = ctx.state.pubsub.publish(&args[1], &args[2], ctx.now_ms);
    Ok(Reply::Integer(n as i64))
}

fn spublish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let n = ctx.state.pubsub.spublish(&args[1], &args[2], ctx.now_ms);
    Ok(Reply::Integer(n as i64))
}

pub(crate) const PUBSUB_SUBS: &[Sub] = &[
    Sub {
        name: "channels",
        arity: -2,
        handler: channels,
    },
    Sub {
        name: "numsub",
        arity: -2,
        handler: numsub,
    },
    Sub {
        name: "numpat",
        arity: 2,
        handler: numpat,
    },
    Sub {
        name: "shardchannels",
        arity: -2,
        handler: shardchannels,
    },
    Sub {
        name: "shardnumsub",
        arity: -2,
        handler: shardnumsub,
    },
    Sub {
        name: "help",
        arity: 2,
        handler: help,
    },
];

fn pubsub(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "pubsub", PUBSUB_SUBS)
}

fn channels(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(crate::errors::CommandError::wrong_arity("pubsub|channels"));
    }
    let pattern = args.get(2).map(|p| &p[..]);
    Ok(Reply::bulks(ctx.state.pubsub.names(Kind::Channel, pattern)))
}

fn numsub(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity((args.len() - 2) * 2);
    for channel in &args[2..] {
        out.push(Reply::Bulk(channel.clone()));
        out.push(Reply::Integer(
            ctx.state.pubsub.subscribers(Kind::Channel, channel) as i64,
        ));
    }
    Ok(Reply::Array(out))
}

fn numpat(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.state.pubsub.active(Kind::Pattern) as i64))
}

fn shardchannels(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(crate::errors::CommandError::wrong_arity(
            "pubsub|shardchannels",
        ));
    }
    let pattern = args.get(2).map(|p| &p[..]);
    Ok(Reply::bulks(ctx.state.pubsub.names(Kind::Shard, pattern)))
}

fn shardnumsub(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity((args.len() - 2) * 2);
    for channel in &args[2..] {
        out.push(Reply::Bulk(channel.clone()));
        out.push(Reply::Integer(
            ctx.state.pubsub.subscribers(Kind::Shard, channel) as i64,
        ));
    }
    Ok(Reply::Array(out))
}

fn help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    ))
}
