//! XINFO STREAM (with FULL and COUNT), GROUPS, CONSUMERS and HELP, with
//! Redis 7.0's fields; maps in RESP3, flat arrays in RESP2.

use bytes::Bytes;

use super::{entry_reply, id_reply, integer, read_stream, Ctx};
use crate::commands::server::{dispatch_sub, help_reply, Sub};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::stream::{Group, Stream, StreamId, INVALID_ENTRIES_READ};
use crate::reply::Reply;

pub(crate) const XINFO_SUBS: &[Sub] = &[
    Sub {
        name: "stream",
        arity: -3,
        handler: xinfo_stream,
    },
    Sub {
        name: "groups",
        arity: 3,
        handler: xinfo_groups,
    },
    Sub {
        name: "consumers",
        arity: 4,
        handler: xinfo_consumers,
    },
    Sub {
        name: "help",
        arity: 2,
        handler: xinfo_help,
    },
];

pub(super) fn xinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "xinfo", XINFO_SUBS)
}

fn field(name: &str, value: Reply) -> (Reply, Reply) {
    (Reply::bulk_str(name), value)
}

fn int(n: impl TryInto<i64>) -> Reply {
    Reply::Integer(n.try_into().unwrap_or(i64::MAX))
}

fn entries_read_reply(n: i64) -> Reply {
    if n == INVALID_ENTRIES_READ {
        Reply::Null
    } else {
        Reply::Integer(n)
    }
}

fn lag_reply(s: &Stream, g: &Group) -> Reply {
    s.lag(g).map_or(Reply::Null, Reply::Integer)
}

/// Redis's radix tree has about this many nodes for `keys` 16-byte keys
/// sharing prefixes; forkless keeps blocks in a B-tree, so the figure is
/// an estimate of the one Redis reports.
fn radix_nodes(keys: usize) -> usize {
    if keys == 0 {
        1
    } else {
        keys + 1
    }
}

fn head(s: &Stream) -> Vec<(Reply, Reply)> {
    vec![
        field("length", int(s.len())),
        field("radix-tree-keys", int(s.block_count())),
        field("radix-tree-nodes", int(radix_nodes(s.block_count()))),
        field("last-generated-id", id_reply(s.last_id())),
        field("max-deleted-entry-id", id_reply(s.max_deleted())),
        field("entries-added", int(s.entries_added())),
        field("recorded-first-entry-id", id_reply(s.first_id())),
    ]
}

fn xinfo_stream(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut full = false;
    let mut count: usize = 10;
    if args.len() > 3 {
        if !args[3].eq_ignore_ascii_case(b"full") {
            return Err(sub_syntax(args));
        }
        full = true;
        match args.len() {
            4 => {}
            6 if args[4].eq_ignore_ascii_case(b"count") => {
                let n = integer(&args[5])?;
                count = if n <= 0 { 0 } else { n as usize };
            }
            _ => return Err(sub_syntax(args)),
        }
    }
    let Some(s) = read_stream(ctx, &args[2])? else {
        return Err(CommandError::NoSuchKey);
    };
    let mut out = head(s);
    if !full {
        out.push(field("groups", int(s.groups().len())));
        let first = s.range(StreamId::MIN, StreamId::MAX, 1).pop();
        let last = s.rev_range(StreamId::MIN, StreamId::MAX, 1).pop();
        out.push(field("first-entry", first.map_or(Reply::Null, entry_reply)));
        out.push(field("last-entry", last.map_or(Reply::Null, entry_reply)));
        return Ok(Reply::Map(out));
    }
    let entries = s.range(StreamId::MIN, StreamId::MAX, count);
    out.push(field(
        "entries",
        Reply::Array(entries.into_iter().map(entry_reply).collect()),
    ));
    let limit = if count == 0 { usize::MAX } else { count };
    let groups = s
        .groups()
        .iter()
        .map(|(name, g)| {
            let pending = g
                .pel
                .iter()
                .take(limit)
                .map(|(id, n)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        Reply::Bulk(n.consumer.clone()),
                        Reply::Integer(n.delivery_time),
                        int(n.delivery_count),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .iter()
                .map(|(cname, c)| {
                    let pending = c
                        .pending
                        .iter()
                        .take(limit)
                        .filter_map(|id| {
                            let n = g.pel.get(id)?;
                            Some(Reply::Array(vec![
                                id_reply(*id),
                                Reply::Integer(n.delivery_time),
                                int(n.delivery_count),
                            ]))
                        })
                        .collect();
                    Reply::Map(vec![
                        field("name", Reply::Bulk(cname.clone())),
                        field("seen-time", Reply::Integer(c.seen_time)),
                        field("pel-count", int(c.pending.len())),
                        field("pending", Reply::Array(pending)),
                    ])
                })
                .collect();
            Reply::Map(vec![
                field("name", Reply::Bulk(name.clone())),
                field("last-delivered-id", id_reply(g.last_id)),
                field("entries-read", entries_read_reply(g.entries_read)),
                field("lag", lag_reply(s, g)),
                field("pel-count", int(g.pel.len())),
                field("pending", Reply::Array(pending)),
                field("consumers", Reply::Array(consumers)),
            ])
        })
        .collect();
    out.push(field("groups", Reply::Array(groups)));
    Ok(Reply::Map(out))
}

fn sub_syntax(args: &[Bytes]) -> CommandError {
    CommandError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try XINFO HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}

fn xinfo_groups(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let Some(s) = read_stream(ctx, &args[2])? else {
        return Err(CommandError::NoSuchKey);
    };
    Ok(Reply::Array(
        s.groups()
            .iter()
            .map(|(name, g)| {
                Reply::Map(vec![
                    field("name", Reply::Bulk(name.clone())),
                    field("consumers", int(g.consumers.len())),
                    field("pending", int(g.pel.len())),
                    field("last-delivered-id", id_reply(g.last_id)),
                    field("entries-read", entries_read_reply(g.entries_read)),
                    field("lag", lag_reply(s, g)),
                ])
            })
            .collect(),
    ))
}

fn xinfo_consumers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, name) = (&args[2], &args[3]);
    let now = ctx.now_ms;
    let Some(s) = read_stream(ctx, key)? else {
        return Err(CommandError::NoSuchKey);
    };
    let Some(g) = s.group(name) else {
        return Err(CommandError::Other(format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(key)
        )));
    };
    Ok(Reply::Array(
        g.consumers
            .iter()
            .map(|(cname, c)| {
                Reply::Map(vec![
                    field("name", Reply::Bulk(cname.clone())),
                    field("pending", int(c.pending.len())),
                    field("idle", Reply::Integer((now - c.seen_time).max(0))),
                ])
            })
            .collect(),
    ))
}

fn xinfo_help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    ))
}
