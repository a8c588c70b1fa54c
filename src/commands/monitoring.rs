//! SLOWLOG and LATENCY: the slow-command log and the latency monitor.
//!
//! [`after_command`] is called by dispatch for every executed command: it adds
//! commands slower than `slowlog-log-slower-than` µs to the [`SlowLog`] and,
//! with `latency-monitor-threshold` set, records `command` / `fast-command`
//! latency events. Other events are recorded where they happen: `expire-cycle`
//! (active expiry), and forkless's own `snapshot-clone` (the O(1) keyspace
//! clone a save takes under the lock — the only moment a save holds up
//! clients) and `snapshot-save` (a whole save). Snapshot events are recorded
//! whenever the monitor is on, even below the threshold, so an operator sees
//! in LATENCY LATEST that a save caused no stall.

use bytes::Bytes;

use super::flags::*;
use super::server::{dispatch_sub, help_reply, Sub};
use super::{args, spec, CommandSpec, Ctx, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::latency::unix_secs;
use crate::reply::Reply;
use crate::slowlog::{slowlog_args, SlowEntry};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        since: "2.2.12",
        ..spec(
            "slowlog",
            -2,
            ADMIN | LOADING | STALE,
            NO_KEYS,
            "server",
            "A container for slow log commands.",
            slowlog,
        )
    },
    CommandSpec {
        since: "2.8.13",
        ..spec(
            "latency",
            -2,
            ADMIN | NOSCRIPT | LOADING | STALE,
            NO_KEYS,
            "server",
            "A container for latency diagnostics commands.",
            latency,
        )
    },
];

/// Slow log and latency bookkeeping for one executed command.
pub fn after_command(ctx: &mut Ctx<'_>, spec: &CommandSpec, args: &[Bytes], usec: u64) {
    let limits = ctx.state.monitor_limits;
    let (slower_than, max_len, threshold) = (
        limits.slowlog_slower_than,
        limits.slowlog_max_len,
        limits.latency_threshold,
    );
    if slower_than >= 0 && usec >= slower_than as u64 && spec.name != "exec" {
        let id = ctx.state.slowlog.next_id();
        let entry = SlowEntry {
            id,
            unix_secs: unix_secs(),
            usec,
            args: slowlog_args(args),
            addr: ctx.client.addr.clone(),
            name: ctx.client.name.clone().unwrap_or_default(),
        };
        ctx.state.slowlog.push(entry, max_len);
    }
    let event = if spec.flags & FAST != 0 {
        "fast-command"
    } else {
        "command"
    };
    ctx.state.latency.threshold = threshold;
    ctx.state.latency.record(event, usec / 1000, threshold);
}

pub(super) const SLOWLOG_SUBS: &[Sub] = &[
    Sub {
        name: "get",
        arity: -2,
        handler: slowlog_get,
    },
    Sub {
        name: "len",
        arity: 2,
        handler: slowlog_len,
    },
    Sub {
        name: "reset",
        arity: 2,
        handler: slowlog_reset,
    },
    Sub {
        name: "help",
        arity: 2,
        handler: slowlog_help,
    },
];

fn slowlog(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "slowlog", SLOWLOG_SUBS)
}

fn slowlog_get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = match args.len() {
        2 => 10,
        3 => {
            let n = args::parse_i64_strict(&args[2]).ok_or(CommandError::NotInteger)?;
            if n < -1 {
                return Err(CommandError::err(
                    "count should be greater than or equal to -1",
                ));
            }
            if n == -1 {
                usize::MAX
            } else {
                n as usize
            }
        }
        _ => return Err(CommandError::wrong_arity("slowlog|get")),
    };
    let entries = ctx
        .state
        .slowlog
        .entries
        .iter()
        .take(count)
        .map(|e| {
            Reply::Array(vec![
                Reply::Integer(e.id as i64),
                Reply::Integer(e.unix_secs),
                Reply::Integer(e.usec as i64),
                Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
                Reply::bulk_str(&e.addr),
                Reply::Bulk(e.name.clone()),
            ])
        })
        .collect();
    Ok(Reply::Array(entries))
}

fn slowlog_len(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.state.slowlog.len() as i64))
}

fn slowlog_reset(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.state.slowlog.entries.clear();
    Ok(Reply::ok())
}

fn slowlog_help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    ))
}

pub(super) const LATENCY_SUBS: &[Sub] = &[
    Sub {
        name: "latest",
        arity: 2,
        handler: latency_latest,
    },
    Sub {
        name: "history",
        arity: 3,
        handler: latency_history,
    },
    Sub {
        name: "reset",
        arity: -2,
        handler: latency_reset,
    },
    Sub {
        name: "doctor",
        arity: 2,
        handler: latency_doctor,
    },
    Sub {
        name: "help",
        arity: 2,
        handler: latency_help,
    },
];

fn latency(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "latency", LATENCY_SUBS)
}

fn latency_latest(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let rows = ctx
        .state
        .latency
        .events
        .iter()
        .filter_map(|(name, s)| {
            let (t, ms) = s.samples.back()?;
            Some(Reply::Array(vec![
                Reply::bulk_str(name),
                Reply::Integer(*t),
                Reply::Integer(*ms as i64),
                Reply::Integer(s.max as i64),
            ]))
        })
        .collect();
    Ok(Reply::Array(rows))
}

fn latency_history(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let name = String::from_utf8_lossy(&args[2]).to_ascii_lowercase();
    let rows = match ctx.state.latency.events.get(name.as_str()) {
        Some(s) => s
            .samples
            .iter()
            .map(|(t, ms)| Reply::Array(vec![Reply::Integer(*t), Reply::Integer(*ms as i64)]))
            .collect(),
        None => Vec::new(),
    };
    Ok(Reply::Array(rows))
}

fn latency_reset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.state.latency.reset(&args[2..]) as i64))
}

fn latency_doctor(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let threshold = ctx.shared.config().latency_monitor_threshold;
    let events = &ctx.state.latency.events;
    let text = if events.is_empty() && threshold == 0 {
        "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis \
         instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in \
         order to enable it. If we weren't in a deep space mission I'd suggest to take a look \
         at https://redis.io/topics/latency-monitor.\n"
            .to_string()
    } else if events.is_empty() {
        "Dave, no latency spike was observed during the lifetime of this Redis instance, not \
         in the slightest bit. I honestly think you ought to sleep tonight.\n"
            .to_string()
    } else {
        let mut text = String::from(
            "Dave, I have observed latency spikes in this Redis instance. You don't mind \
             talking about it, do you Dave?\n\n",
        );
        for (i, (name, s)) in events.iter().enumerate() {
            let avg =
                s.samples.iter().map(|(_, ms)| ms).sum::<u64>() / (s.samples.len().max(1) as u64);
            text.push_str(&format!(
                "{}. {name}: {} latency spikes (average {avg}ms, worst {}ms).\n",
                i + 1,
                s.samples.len(),
                s.max
            ));
            if name.starts_with("snapshot-") {
                text.push_str(
                    "   forkless snapshots clone the keyspace in O(1) under the lock and \
                     write it from a separate thread: a snapshot-clone near 0ms means \
                     the save did not stall clients.\n",
                );
            }
        }
        text.push_str("\nI have no advice for you beyond the figures above, Dave.\n");
        text
    };
    Ok(Reply::Verbatim(text))
}

fn latency_help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
        ],
    ))
}
