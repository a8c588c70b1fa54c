//! Replication commands: REPLICAOF/SLAVEOF, ROLE, WAIT, REPLCONF, PSYNC and
//! SYNC. They only drive [`crate::replication`], which owns the state, the
//! stream and both ends of a link.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::args;
use super::flags::*;
use super::{spec, BlockRequest, CommandSpec, Ctx, NO_KEYS};
use crate::clients::ClientState;
use crate::errors::{CmdResult, CommandError};
use crate::replication::{primary, MasterLink};
use crate::reply::Reply;
use crate::state::{Shared, State};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        since: "5.0.0",
        ..spec(
            "replicaof",
            3,
            ADMIN | NOSCRIPT | STALE,
            NO_KEYS,
            "server",
            "Configures a server as replica of another, or promotes it to a master.",
            replicaof,
        )
    },
    CommandSpec {
        since: "1.0.0",
        ..spec(
            "slaveof",
            3,
            ADMIN | NOSCRIPT | STALE,
            NO_KEYS,
            "server",
            "Sets a Redis server as a replica of another, or promotes it to being a master.",
            replicaof,
        )
    },
    CommandSpec {
        since: "2.8.12",
        ..spec(
            "role",
            1,
            NOSCRIPT | LOADING | STALE | FAST,
            NO_KEYS,
            "server",
            "Returns the replication role.",
            role,
        )
    },
    CommandSpec {
        since: "3.0.0",
        ..spec(
            "wait",
            3,
            NOSCRIPT,
            NO_KEYS,
            "generic",
            "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.",
            wait,
        )
    },
    CommandSpec {
        since: "3.0.0",
        ..spec(
            "replconf",
            -1,
            ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
            NO_KEYS,
            "server",
            "An internal command for configuring the replication stream.",
            replconf,
        )
    },
    CommandSpec {
        since: "2.8.0",
        ..spec(
            "psync",
            -3,
            ADMIN | NOSCRIPT | NO_MULTI,
            NO_KEYS,
            "server",
            "An internal command used in replication.",
            psync,
        )
    },
    CommandSpec {
        since: "1.0.0",
        ..spec(
            "sync",
            1,
            ADMIN | NOSCRIPT | NO_MULTI,
            NO_KEYS,
            "server",
            "An internal command used in replication.",
            sync,
        )
    },
];

/// Runs one command of the primary's stream on a replica, as the master
/// client: no reply, no blocking.
pub fn apply_from_master(
    shared: &Shared,
    state: &mut State,
    client: &mut ClientState,
    args: &[Bytes],
) {
    let mut ctx = Ctx {
        shared,
        state,
        client,
        now_ms: crate::keyspace::unix_ms(),
        blocked: None,
        may_block: false,
    };
    let _ = super::execute(&mut ctx, args);
}

/// Starts replicating from `host:port` (REPLICAOF, the `replicaof` directive).
pub fn start_replica(shared: &Arc<Shared>, state: &mut State, host: String, port: u16) {
    let link = Arc::new(MasterLink::new(host.clone(), port));
    let db = state.repl.stream_db.unwrap_or(0);
    state.repl.become_replica(link.clone());
    let unblocked = state.blocking.unblock_all(&Reply::Error(
        crate::errors::replication::UNBLOCKED_ROLE_CHANGE.into(),
    ));
    if unblocked > 0 {
        tracing::info!("{unblocked} blocked clients unblocked: this server becomes a replica");
    }
    shared
        .config_mut()
        .extra
        .insert("replicaof", format!("{host} {port}"));
    crate::replication::replica::start(shared.clone(), link, db, apply_from_master);
}

fn replicaof(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args::is(&args[1], "no") && args::is(&args[2], "one") {
        if ctx.state.repl.is_replica() {
            ctx.state.repl.become_primary();
            ctx.shared.config_mut().extra.remove("replicaof");
            tracing::info!(
                "MASTER MODE enabled (user request from 'id={} addr={}')",
                ctx.client.id,
                ctx.client.addr
            );
        }
        return Ok(Reply::ok());
    }
    if ctx.client.info.kind.load(Ordering::Relaxed) == crate::clients::KIND_REPLICA {
        return Err(CommandError::err(
            "Command is not valid when client is a replica.",
        ));
    }
    let port = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| crate::numbers::parse_i64_strict(s.as_bytes()))
        .filter(|p| (0..=65535).contains(p))
        .ok_or_else(|| CommandError::err("Invalid master port"))? as u16;
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    if let Some(m) = &ctx.state.repl.master {
        if m.host.eq_ignore_ascii_case(&host) && m.port == port {
            tracing::info!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
            return Ok(Reply::simple("OK Already connected to specified master"));
        }
    }
    let Some(shared) = ctx.shared.self_arc() else {
        return Err(CommandError::err("replication is not available"));
    };
    start_replica(&shared, ctx.state, host.clone(), port);
    tracing::info!(
        "REPLICAOF {host}:{port} enabled (user request from 'id={} addr={}')",
        ctx.client.id,
        ctx.client.addr
    );
    Ok(Reply::ok())
}

fn role(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let repl = &ctx.state.repl;
    if let Some(m) = &repl.master {
        let status = m.status();
        let offset = if status.up { repl.offset as i64 } else { -1 };
        return Ok(Reply::Array(vec![
            Reply::bulk_str("slave"),
            Reply::bulk_str(&m.host),
            Reply::Integer(m.port as i64),
            Reply::bulk_str(status.state),
            Reply::Integer(offset),
        ]));
    }
    let replicas = repl
        .replicas
        .iter()
        .map(|r| {
            Reply::Array(vec![
                Reply::bulk_str(&r.ip),
                Reply::bulk_str(&r.port.to_string()),
                Reply::bulk_str(&r.ack_offset.to_string()),
            ])
        })
        .collect();
    Ok(Reply::Array(vec![
        Reply::bulk_str("master"),
        Reply::Integer(repl.offset as i64),
        Reply::Array(replicas),
    ]))
}

fn wait(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.state.repl.is_replica() {
        return Err(CommandError::err("WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."));
    }
    let needed = crate::numbers::parse_i64_strict(&args[1]).ok_or(CommandError::NotInteger)?;
    let timeout = crate::numbers::parse_i64_strict(&args[2])
        .ok_or_else(|| CommandError::err("timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CommandError::TimeoutNegative);
    }
    let offset = ctx.client.repl.write_offset;
    let acked = ctx.state.repl.acked(offset);
    if acked as i64 >= needed || !ctx.may_block {
        return Ok(Reply::Integer(acked as i64));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let deadline = (timeout > 0)
        .then(|| std::time::Instant::now() + std::time::Duration::from_millis(timeout as u64));
    let id = ctx
        .state
        .repl
        .add_wait(offset, needed as usize, deadline, tx);
    ctx.state.repl.request_acks();
    ctx.blocked = Some(BlockRequest {
        // Outside the blocking registry's ids (they count up from 0).
        waiter_id: u64::MAX - id,
        rx,
        timeout: None,
        timeout_reply: Reply::Integer(0),
    });
    Ok(Reply::NullArray)
}

fn replconf(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    for pair in args[1..].chunks(2) {
        let (opt, value) = (&pair[0], &pair[1]);
        if args::is(opt, "listening-port") {
            let port = crate::numbers::parse_i64_strict(value).ok_or(CommandError::NotInteger)?;
            ctx.client.repl.listening_port = port as u16;
        } else if args::is(opt, "ip-address") {
            ctx.client.repl.announced_ip = Some(String::from_utf8_lossy(value).into_owned());
        } else if args::is(opt, "capa") {
            // eof and psync2 are what forkless always does.
        } else if args::is(opt, "ack") || args::is(opt, "getack") {
            // ACKs of a replica are read by its stream's task; a GETACK is
            // answered by a replica's link. Neither gets a reply here.
            ctx.client.skip_current = true;
            return Ok(Reply::ok());
        } else if args::is(opt, "rdb-only") || args::is(opt, "rdb-filter-only") {
        } else {
            return Err(CommandError::err(format!(
                "Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    Ok(Reply::ok())
}

fn psync(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let replid = String::from_utf8_lossy(&args[1]).into_owned();
    let offset = crate::numbers::parse_i64_strict(&args[2]).unwrap_or(-1);
    begin_sync(ctx, &replid, offset, true)
}

fn sync(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    begin_sync(ctx, "?", -1, false)
}

fn begin_sync(ctx: &mut Ctx<'_>, replid: &str, offset: i64, psync: bool) -> CmdResult {
    if ctx.client.repl.handoff.is_some()
        || ctx.client.info.kind.load(Ordering::Relaxed) == crate::clients::KIND_REPLICA
    {
        ctx.client.skip_current = true;
        return Ok(Reply::ok());
    }
    if let Some(m) = &ctx.state.repl.master {
        if !m.status().up {
            return Err(CommandError::Other(
                "NOMASTERLINK Can't SYNC while not connected with my master".into(),
            ));
        }
    }
    let ip = ctx.client.repl.announced_ip.clone().unwrap_or_else(|| {
        ctx.client
            .addr
            .rsplit_once(':')
            .map(|(ip, _)| ip.trim_matches(['[', ']']).to_string())
            .unwrap_or_default()
    });
    let port = ctx.client.repl.listening_port;
    let (line, handoff) = primary::psync(ctx.state, ctx.client.id, ip, port, replid, offset);
    ctx.client.repl.handoff = Some(handoff);
    ctx.client
        .info
        .kind
        .store(crate::clients::KIND_REPLICA, Ordering::Relaxed);
    if !psync {
        ctx.client.skip_current = true;
    }
    Ok(Reply::Simple(line))
}
