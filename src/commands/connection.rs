//! Connection commands: PING, ECHO, SELECT, QUIT, AUTH, HELLO (RESP2/RESP3 switch).

use bytes::Bytes;

use super::args;
use super::flags::*;
use super::{spec, CommandSpec, Ctx, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::reply::{Protocol, Reply};
use crate::security;

pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "ping",
        -1,
        FAST | SENTINEL,
        NO_KEYS,
        "connection",
        "Returns the server's liveliness response.",
        ping,
    ),
    spec(
        "echo",
        2,
        FAST,
        NO_KEYS,
        "connection",
        "Returns the given string.",
        echo,
    ),
    spec(
        "select",
        2,
        LOADING | STALE | FAST,
        NO_KEYS,
        "connection",
        "Changes the selected database.",
        select,
    ),
    spec(
        "quit",
        -1,
        ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        NO_KEYS,
        "connection",
        "Closes the connection.",
        quit,
    ),
    spec(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY,
        NO_KEYS,
        "connection",
        "Authenticates the connection.",
        auth,
    ),
    spec(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY,
        NO_KEYS,
        "connection",
        "Handshakes with the server.",
        hello,
    ),
];

pub use crate::config::REDIS_COMPAT_VERSION;

fn ping(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match args.len() {
        1 => Ok(Reply::simple("PONG")),
        2 => Ok(Reply::Bulk(args[1].clone())),
        _ => Err(CommandError::wrong_arity("ping")),
    }
}

fn echo(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Bulk(args[1].clone()))
}

fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let index = args::int(&args[1])?;
    if index < 0 || index as usize >= ctx.state.keyspace.db_count() {
        return Err(CommandError::DbIndexOutOfRange);
    }
    ctx.client.db = index as usize;
    Ok(Reply::ok())
}

fn quit(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.client.close_after_reply = true;
    Ok(Reply::ok())
}

/// `AUTH <password>` or `AUTH <username> <password>`; only `default` exists.
fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (user, password) = match args.len() {
        2 => {
            if ctx.shared.config().requirepass.is_empty() {
                return Err(CommandError::Other(security::AUTH_WITHOUT_PASSWORD.into()));
            }
            (&Bytes::from_static(b"default"), &args[1])
        }
        3 => (&args[1], &args[2]),
        _ => return Err(CommandError::Syntax),
    };
    authenticate(ctx, user, password)?;
    Ok(Reply::ok())
}

/// Checks credentials and marks the client authenticated, or fails with WRONGPASS.
fn authenticate(ctx: &mut Ctx<'_>, user: &Bytes, password: &Bytes) -> Result<(), CommandError> {
    if security::check_credentials(&ctx.shared.config(), user, password) {
        ctx.client.authenticated = true;
        Ok(())
    } else {
        tracing::debug!(client = ctx.client.id, "AUTH failed");
        Err(CommandError::Other(security::WRONGPASS.into()))
    }
}

fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut proto = ctx.client.proto;
    let mut i = 1;
    if args.len() > 1 {
        let v = args::parse_i64_strict(&args[1]).ok_or_else(|| {
            CommandError::err("Protocol version is not an integer or out of range")
        })?;
        proto = match v {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => {
                return Err(CommandError::Other(
                    "NOPROTO unsupported protocol version".into(),
                ))
            }
        };
        i = 2;
    }
    let mut name = None;
    let mut credentials = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if args::is(&args[i], "auth") && more >= 2 {
            credentials = Some((&args[i + 1], &args[i + 2]));
            i += 3;
        } else if args::is(&args[i], "setname") && more >= 1 {
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Err(CommandError::err(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    if let Some((user, password)) = credentials {
        authenticate(ctx, user, password)?;
    }
    if !ctx.client.authenticated && !ctx.shared.config().requirepass.is_empty() {
        return Err(CommandError::Other(security::HELLO_NOAUTH.into()));
    }
    if let Some(name) = name {
        if name.iter().any(|b| *b <= b' ' || *b > b'~') {
            return Err(CommandError::err(
                "Client names cannot contain spaces, newlines or special characters.",
            ));
        }
        ctx.client.name = (!name.is_empty()).then(|| crate::protocol::detach(&name));
    }
    ctx.client.proto = proto;
    let proto_num = if proto == Protocol::Resp3 { 3 } else { 2 };
    Ok(Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str("redis")),
        (
            Reply::bulk_str("version"),
            Reply::bulk_str(REDIS_COMPAT_VERSION),
        ),
        (Reply::bulk_str("proto"), Reply::Integer(proto_num)),
        (Reply::bulk_str("id"), Reply::Integer(ctx.client.id as i64)),
        (Reply::bulk_str("mode"), Reply::bulk_str("standalone")),
        (Reply::bulk_str("role"), Reply::bulk_str("master")),
        (Reply::bulk_str("modules"), Reply::Array(vec![])),
    ]))
}
