//! CONFIG GET, SET, RESETSTAT, REWRITE, HELP over the live [`Config`].
//!
//! The parameters themselves (names, types, defaults, validation) are the table
//! in [`crate::params`], shared with the redis.conf reader. CONFIG SET applies
//! every pair to a copy and installs the copy only if all of them parsed, so a
//! failed SET changes nothing, as in Redis.
//!
//! Lock order: CONFIG SET takes the config write lock while it holds the state
//! lock, so no code may wait for the state lock while holding a config guard.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{dispatch_sub, help_reply, Sub};
use crate::commands::Ctx;
use crate::errors::{CmdResult, CommandError};
use crate::glob;
use crate::params::{self, Param, PARAMS};
use crate::reply::Reply;
use crate::state::Stats;

pub(super) const SUBS: &[Sub] = &[
    Sub {
        name: "get",
        arity: -3,
        handler: get,
    },
    Sub {
        name: "set",
        arity: -4,
        handler: set,
    },
    Sub {
        name: "resetstat",
        arity: 2,
        handler: resetstat,
    },
    Sub {
        name: "rewrite",
        arity: 2,
        handler: rewrite,
    },
    Sub {
        name: "help",
        arity: 2,
        handler: help,
    },
];

pub fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "config", SUBS)
}

fn find(name: &[u8]) -> Option<&'static Param> {
    params::find(name)
}

fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let config = ctx.shared.config().clone();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut pairs = Vec::new();
    for pattern in &args[2..] {
        let is_glob = pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        for p in PARAMS {
            for name in p.names() {
                let hit = if is_glob {
                    glob::matches_nocase(pattern, name.as_bytes())
                } else {
                    name.as_bytes().eq_ignore_ascii_case(pattern)
                };
                if hit && !seen.contains(&name) {
                    seen.push(name);
                    // An exact name is echoed as the client wrote it, as Redis does.
                    let shown = if is_glob {
                        Reply::bulk_str(name)
                    } else {
                        Reply::Bulk(pattern.clone())
                    };
                    pairs.push((shown, Reply::bulk_str(&p.get(&config))));
                }
            }
        }
    }
    Ok(Reply::Map(pairs))
}

fn set_failed(name: &str, reason: &str) -> CommandError {
    CommandError::err(format!(
        "CONFIG SET failed (possibly related to argument '{name}') - {reason}"
    ))
}

fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    let pairs: Vec<(&Bytes, &Bytes)> = args[2..].chunks(2).map(|c| (&c[0], &c[1])).collect();
    // Every name must be known before anything is parsed, as in Redis.
    let mut params = Vec::new();
    for (name, _) in &pairs {
        let Some(p) = find(name) else {
            return Err(CommandError::err(format!(
                "Unknown option or number of arguments for CONFIG SET - '{}'",
                String::from_utf8_lossy(name)
            )));
        };
        if params.iter().any(|q: &&Param| q.name == p.name) {
            return Err(set_failed(p.name, "duplicate parameter"));
        }
        params.push(p);
    }
    let mut next = ctx.shared.config().clone();
    for (p, (_, value)) in params.iter().zip(&pairs) {
        let value = String::from_utf8_lossy(value);
        if !p.mutable {
            return Err(set_failed(p.name, "can't set immutable config"));
        }
        p.set(&mut next, &value)
            .map_err(|r| set_failed(p.name, &r))?;
    }
    // Commands read the notification flags from the state, not the config lock.
    ctx.state.pubsub.notify_flags = next.notify_keyspace_events;
    ctx.state.pubsub.limit = next.pubsub_output_limit;
    ctx.state.encodings = crate::state::encodings_of(&next);
    ctx.state.monitor_limits = crate::state::MonitorLimits::of(&next);
    ctx.state.repl.settings = crate::replication::Settings::of(&next);
    ctx.state.eviction.settings = crate::eviction::Settings::of(&next);
    crate::eviction::Settings::tracking(&next).install();
    ctx.shared
        .clients
        .set_memory_limit(crate::eviction::client_limit(&next));
    ctx.shared
        .scripts
        .set_threshold_ms(crate::state::busy_threshold(&next));
    crate::busypoll::set_window_us(next.busy_poll_us);
    if next.jemalloc_bg_thread != ctx.shared.config().jemalloc_bg_thread {
        crate::alloc::set_background_thread(next.jemalloc_bg_thread);
    }
    *ctx.shared.config_mut() = next;
    Ok(Reply::ok())
}

fn rewrite(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let config = ctx.shared.config().clone();
    match crate::conffile::rewrite(&config) {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            Ok(Reply::ok())
        }
        Err(e) => Err(CommandError::err(e)),
    }
}

fn resetstat(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.state.stats = Stats::default();
    ctx.state.keyspace.reset_expired_count();
    let net = &ctx.shared.net;
    for counter in [
        &net.total_connections_received,
        &net.rejected_connections,
        &net.net_input_bytes,
        &net.net_output_bytes,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    Ok(Reply::ok())
}

fn help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    ))
}
