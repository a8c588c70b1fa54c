//! Server commands: the database-wide ones (DBSIZE, FLUSHDB, FLUSHALL, SWAPDB,
//! TIME) here, and the container commands in their own modules: CLIENT
//! ([`client`]), COMMAND ([`command`]), CONFIG ([`config`]) and INFO ([`info`]).
//!
//! Container commands dispatch on their subcommand through a small table of
//! [`Sub`] entries, so each subcommand's arity is checked the way Redis checks
//! `client|kill` and friends.

pub mod client;
pub mod command;
pub mod config;
pub mod control;
pub mod info;
pub mod keyspecs;

use bytes::Bytes;

use super::args;
use super::flags::*;
use super::{spec, CommandSpec, Ctx, Handler, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::reply::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        since: "1.0.0",
        ..spec(
            "dbsize",
            1,
            READONLY | FAST,
            NO_KEYS,
            "server",
            "Returns the number of keys in the database.",
            dbsize,
        )
    },
    CommandSpec {
        since: "1.0.0",
        ..spec(
            "flushdb",
            -1,
            WRITE,
            NO_KEYS,
            "server",
            "Removes all keys from the current database.",
            flushdb,
        )
    },
    CommandSpec {
        since: "1.0.0",
        ..spec(
            "flushall",
            -1,
            WRITE,
            NO_KEYS,
            "server",
            "Removes all keys from all databases.",
            flushall,
        )
    },
    CommandSpec {
        since: "4.0.0",
        ..spec(
            "swapdb",
            3,
            WRITE | FAST,
            NO_KEYS,
            "server",
            "Swaps two Redis databases.",
            swapdb,
        )
    },
    CommandSpec {
        since: "2.6.0",
        ..spec(
            "time",
            1,
            LOADING | STALE | FAST,
            NO_KEYS,
            "server",
            "Returns the server time.",
            time,
        )
    },
    CommandSpec {
        since: "2.4.0",
        ..spec(
            "client",
            -2,
            NOSCRIPT | LOADING | STALE,
            NO_KEYS,
            "connection",
            "A container for client connection commands.",
            client::client,
        )
    },
    CommandSpec {
        since: "2.8.13",
        ..spec(
            "command",
            -1,
            LOADING | STALE,
            NO_KEYS,
            "server",
            "Returns detailed information about all commands.",
            command::command,
        )
    },
    CommandSpec {
        since: "2.0.0",
        ..spec(
            "config",
            -2,
            ADMIN | NOSCRIPT | LOADING | STALE,
            NO_KEYS,
            "server",
            "A container for server configuration commands.",
            config::config,
        )
    },
    CommandSpec {
        since: "1.0.0",
        ..spec(
            "info",
            -1,
            LOADING | STALE | SENTINEL,
            NO_KEYS,
            "server",
            "Returns information and statistics about the server.",
            info::info,
        )
    },
    CommandSpec {
        since: "6.2.0",
        ..spec(
            "reset",
            1,
            NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
            NO_KEYS,
            "connection",
            "Resets the connection.",
            control::reset,
        )
    },
    CommandSpec {
        since: "1.0.0",
        ..spec(
            "monitor",
            1,
            ADMIN | NOSCRIPT | LOADING | STALE,
            NO_KEYS,
            "server",
            "Listens for all requests received by the server in real-time.",
            control::monitor,
        )
    },
];

/// Commands whose first argument names a subcommand; clients see them as
/// `client|list` in CLIENT LIST's `cmd=` and in arity errors.
const CONTAINERS: &[&str] = &[
    "client", "command", "config", "memory", "object", "slowlog", "latency", "pubsub", "xgroup",
    "xinfo", "cluster", "module",
];

/// The subcommand table of a container command.
pub fn subcommands(name: &str) -> Option<&'static [Sub]> {
    match name {
        "client" => Some(client::SUBS),
        "command" => Some(command::SUBS),
        "config" => Some(config::SUBS),
        "memory" => Some(super::introspection::MEMORY_SUBS),
        "object" => Some(super::introspection::OBJECT_SUBS),
        "slowlog" => Some(super::monitoring::SLOWLOG_SUBS),
        "latency" => Some(super::monitoring::LATENCY_SUBS),
        "pubsub" => Some(super::pubsub::PUBSUB_SUBS),
        "xgroup" => Some(super::streams::XGROUP_SUBS),
        "xinfo" => Some(super::streams::XINFO_SUBS),
        "cluster" => Some(super::cluster::CLUSTER_SUBS),
        "module" => Some(super::cluster::MODULE_SUBS),
        _ => None,
    }
}

/// The name Redis shows for a command line: `get`, or `client|list` for a
/// container command.
/// Whether `name` (lower case) is a container command, shown with its
/// subcommand.
pub fn is_container(name: &str) -> bool {
    CONTAINERS.contains(&name)
}

pub fn display_name(args: &[Bytes]) -> String {
    let Some(first) = args.first() else {
        return String::new();
    };
    let name = String::from_utf8_lossy(first).to_ascii_lowercase();
    match args.get(1) {
        Some(sub) if CONTAINERS.contains(&name.as_str()) => {
            format!(
                "{name}|{}",
                String::from_utf8_lossy(sub).to_ascii_lowercase()
            )
        }
        _ => name,
    }
}

/// One subcommand of a container command.
pub struct Sub {
    /// Lower-case name.
    pub name: &'static str,
    /// Arity counted from the container's name, as Redis counts it.
    pub arity: i32,
    pub handler: Handler,
}

/// Runs the subcommand `args[1]` of `container` from `subs`.
pub fn dispatch_sub(ctx: &mut Ctx<'_>, args: &[Bytes], container: &str, subs: &[Sub]) -> CmdResult {
    let Some(sub) = subs.iter().find(|s| args::is(&args[1], s.name)) else {
        return Err(CommandError::unknown_subcommand(container, &args[1]));
    };
    let ok = if sub.arity >= 0 {
        args.len() == sub.arity as usize
    } else {
        args.len() >= (-sub.arity) as usize
    };
    if !ok {
        return Err(CommandError::wrong_arity(&format!(
            "{container}|{}",
            sub.name
        )));
    }
    (sub.handler)(ctx, args)
}

/// A protected command's `enable-*-command` setting: `yes` allows it, `local`
/// allows loopback clients only, `no` refuses (Redis's text).
pub fn local_only(
    ctx: &Ctx<'_>,
    setting: &str,
    command: &str,
    option: &str,
) -> Result<(), CommandError> {
    let local = ctx.client.addr.starts_with("127.")
        || ctx.client.addr.starts_with("[::1]")
        || ctx.client.addr.starts_with("::1");
    match setting {
        "yes" => Ok(()),
        "local" if local => Ok(()),
        _ => Err(CommandError::err(format!(
            "{command} command not allowed. If the {option} option is set to \"local\", \
             you can run it from a local connection, otherwise you need to set this option in \
             the configuration file, and then restart the server."
        ))),
    }
}

/// A HELP reply: one status line per text line, as Redis's addReplyHelp.
pub fn help_reply(container: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Simple(format!(
        "{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    out.extend(lines.iter().map(|l| Reply::simple(l)));
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Prints this help."));
    Reply::Array(out)
}

fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.db().len() as i64))
}

/// The optional ASYNC|SYNC flag of FLUSHDB/FLUSHALL. Both free at once: dropping
/// the map only releases nodes no snapshot shares, which is cheap either way.
fn check_flush_flag(args: &[Bytes]) -> Result<(), CommandError> {
    match args.len() {
        1 => Ok(()),
        2 if args::is(&args[1], "async") || args::is(&args[1], "sync") => Ok(()),
        _ => Err(CommandError::Syntax),
    }
}

fn flushdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    check_flush_flag(args)?;
    let removed = ctx.db().len() as u64;
    let db = ctx.client.db;
    if !ctx.state.watches.is_empty() {
        let state = &mut *ctx.state;
        state
            .watches
            .touch_emptied(db, state.keyspace.db(db), ctx.now_ms);
    }
    ctx.db().clear();
    ctx.dirty(removed);
    // Blocked stream reads hear of their keys' deletion.
    if ctx.state.blocking.wants_changes() {
        ctx.state.blocking.signal_db(db);
    }
    Ok(Reply::ok())
}

fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    check_flush_flag(args)?;
    let removed = ctx.state.keyspace.key_count() as u64;
    if !ctx.state.watches.is_empty() {
        let state = &mut *ctx.state;
        for db in 0..state.keyspace.db_count() {
            state
                .watches
                .touch_emptied(db, state.keyspace.db(db), ctx.now_ms);
        }
    }
    ctx.state.keyspace.flush_all();
    if ctx.state.blocking.wants_changes() {
        for db in 0..ctx.state.keyspace.db_count() {
            ctx.state.blocking.signal_db(db);
        }
    }
    // Redis counts the removed keys plus one for the FLUSHALL itself.
    ctx.dirty(removed + 1);
    Ok(Reply::ok())
}

fn swapdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let a = args::parse_i64_strict(&args[1])
        .ok_or_else(|| CommandError::err("invalid first DB index"))?;
    let b = args::parse_i64_strict(&args[2])
        .ok_or_else(|| CommandError::err("invalid second DB index"))?;
    let count = ctx.state.keyspace.db_count() as i64;
    if !(0..count).contains(&a) || !(0..count).contains(&b) {
        return Err(CommandError::DbIndexOutOfRange);
    }
    let (a, b) = (a as usize, b as usize);
    if !ctx.state.watches.is_empty() && a != b {
        let state = &mut *ctx.state;
        let (da, db) = (state.keyspace.db(a), state.keyspace.db(b));
        state.watches.touch_replaced(a, da, Some(db), ctx.now_ms);
        state.watches.touch_replaced(b, db, Some(da), ctx.now_ms);
    }
    ctx.state.keyspace.swap(a, b);
    // Clients waiting on keys there may now be served.
    ctx.state.blocking.signal_db(a);
    ctx.state.blocking.signal_db(b);
    ctx.dirty(1);
    Ok(Reply::ok())
}

fn time(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Reply::Array(vec![
        Reply::bulk_str(&now.as_secs().to_string()),
        Reply::bulk_str(&now.subsec_micros().to_string()),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_of_containers() {
        let args = |v: &[&str]| -> Vec<Bytes> {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        };
        assert_eq!(display_name(&args(&["GET", "k"])), "get");
        assert_eq!(display_name(&args(&["CLIENT", "LIST"])), "client|list");
        assert_eq!(display_name(&args(&["config"])), "config");
        assert_eq!(display_name(&[]), "");
    }

    #[test]
    fn flush_flags() {
        let a = |v: &[&str]| -> Vec<Bytes> {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        };
        assert!(check_flush_flag(&a(&["flushdb"])).is_ok());
        assert!(check_flush_flag(&a(&["flushdb", "ASYNC"])).is_ok());
        assert!(check_flush_flag(&a(&["flushdb", "sync"])).is_ok());
        assert_eq!(
            check_flush_flag(&a(&["flushdb", "x"])),
            Err(CommandError::Syntax)
        );
        assert_eq!(
            check_flush_flag(&a(&["flushdb", "sync", "x"])),
            Err(CommandError::Syntax)
        );
    }
}
