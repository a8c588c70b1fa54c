//! CLIENT: ID, GETNAME, SETNAME, SETINFO, INFO, LIST, KILL, NO-EVICT, HELP;
//! PAUSE, UNPAUSE and REPLY live in [`super::control`].
//!
//! Other connections are seen through the client registry's published
//! [`ClientSnapshot`]s; the calling client is described from its own live state,
//! so `CLIENT INFO` shows `cmd=client|info` as Redis does.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;

use super::{args, dispatch_sub, display_name, help_reply, Sub};
use crate::clients::{ClientInfo, ClientSnapshot};
use crate::commands::Ctx;
use crate::errors::{CmdResult, CommandError};
use crate::reply::{Protocol, Reply};

pub(super) const SUBS: &[Sub] = &[
    Sub {
        name: "id",
        arity: 2,
        handler: id,
    },
    Sub {
        name: "getname",
        arity: 2,
        handler: getname,
    },
    Sub {
        name: "setname",
        arity: 3,
        handler: setname,
    },
    Sub {
        name: "setinfo",
        arity: 4,
        handler: setinfo,
    },
    Sub {
        name: "info",
        arity: 2,
        handler: info,
    },
    Sub {
        name: "list",
        arity: -2,
        handler: list,
    },
    Sub {
        name: "kill",
        arity: -3,
        handler: kill,
    },
    Sub {
        name: "unblock",
        arity: -3,
        handler: unblock,
    },
    Sub {
        name: "no-evict",
        arity: 3,
        handler: no_evict,
    },
    Sub {
        name: "pause",
        arity: -3,
        handler: super::control::pause,
    },
    Sub {
        name: "unpause",
        arity: 2,
        handler: super::control::unpause,
    },
    Sub {
        name: "reply",
        arity: 3,
        handler: super::control::reply,
    },
    Sub {
        name: "help",
        arity: 2,
        handler: help,
    },
];

pub fn client(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "client", SUBS)
}

fn id(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.client.id as i64))
}

fn getname(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::bulk_opt(ctx.client.name.clone()))
}

/// Redis refuses names and library attributes with spaces or non-printable bytes.
fn validate_attr(value: &[u8], what: &str) -> Result<(), CommandError> {
    if value.iter().any(|b| *b < b'!' || *b > b'~') {
        return Err(CommandError::err(format!(
            "{what} cannot contain spaces, newlines or special characters."
        )));
    }
    Ok(())
}

fn non_empty(value: &Bytes) -> Option<Bytes> {
    (!value.is_empty()).then(|| crate::protocol::detach(value))
}

fn setname(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    validate_attr(&args[2], "Client names")?;
    ctx.client.name = non_empty(&args[2]);
    Ok(Reply::ok())
}

fn setinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let attr = String::from_utf8_lossy(&args[2]).into_owned();
    let is_name = args::is(&args[2], "lib-name");
    if !is_name && !args::is(&args[2], "lib-ver") {
        return Err(CommandError::err(format!("Unrecognized option '{attr}'")));
    }
    validate_attr(&args[3], &attr)?;
    let value = non_empty(&args[3]);
    if is_name {
        ctx.client.lib_name = value;
    } else {
        ctx.client.lib_ver = value;
    }
    Ok(Reply::ok())
}

/// The calling client's own line, built from its live state.
fn own_snapshot(ctx: &Ctx<'_>, args: &[Bytes]) -> ClientSnapshot {
    let c = &ctx.client;
    let blocked = c.info.snapshot().blocked;
    ClientSnapshot {
        db: c.db,
        name: c.name.clone(),
        lib_name: c.lib_name.clone(),
        lib_ver: c.lib_ver.clone(),
        resp: if c.proto == Protocol::Resp3 { 3 } else { 2 },
        last_cmd: display_name(args),
        last_interaction: Instant::now(),
        blocked,
        sub: c.subs.channels.len(),
        psub: c.subs.patterns.len(),
        ssub: c.subs.shards.len(),
        multi: c.tx.active.then_some(c.tx.queue.len()),
    }
}

fn text(b: &Option<Bytes>) -> String {
    b.as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// One CLIENT LIST line in Redis 7.0's field order (plus 7.2's `lib-name` and
/// `lib-ver` at the end). Buffer sizes forkless does not track are 0.
pub fn client_line(info: &ClientInfo, s: &ClientSnapshot, now: Instant) -> String {
    let age = now.saturating_duration_since(info.created).as_secs();
    let idle = now.saturating_duration_since(s.last_interaction).as_secs();
    let mut flags = String::new();
    match info.kind.load(Ordering::Relaxed) {
        crate::clients::KIND_REPLICA => flags.push('S'),
        crate::clients::KIND_MASTER => flags.push('M'),
        _ => {}
    }
    if s.sub + s.psub + s.ssub > 0 {
        flags.push('P');
    }
    if s.multi.is_some() {
        flags.push('x');
    }
    if s.blocked {
        flags.push('b');
    }
    if info.is_killed() {
        flags.push('A');
    }
    if info.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    format!(
        "id={} addr={} laddr={} fd={} name={} age={age} idle={idle} flags={flags} db={} \
         sub={} psub={} ssub={} multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 \
         obl=0 oll=0 omem=0 tot-mem={} events=r cmd={} user=default redir=-1 resp={} \
         lib-name={} lib-ver={}\n",
        info.id,
        info.addr,
        info.laddr,
        info.fd.load(Ordering::Relaxed),
        text(&s.name),
        s.db,
        s.sub,
        s.psub,
        s.ssub,
        s.multi.map_or(-1, |n| n as i64),
        info.memory.load(Ordering::Relaxed),
        s.last_cmd,
        s.resp,
        text(&s.lib_name),
        text(&s.lib_ver),
    )
}

fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let own = own_snapshot(ctx, args);
    Ok(Reply::Verbatim(client_line(
        &ctx.client.info,
        &own,
        Instant::now(),
    )))
}

/// Which connections a CLIENT LIST or CLIENT KILL TYPE names: a
/// `crate::clients::KIND_*`.
fn parse_type(arg: &[u8]) -> Result<u8, CommandError> {
    use crate::clients::{KIND_MASTER, KIND_NORMAL, KIND_PUBSUB, KIND_REPLICA};
    for (name, kind) in [
        ("normal", KIND_NORMAL),
        ("master", KIND_MASTER),
        ("replica", KIND_REPLICA),
        ("slave", KIND_REPLICA),
        ("pubsub", KIND_PUBSUB),
    ] {
        if args::is(arg, name) {
            return Ok(kind);
        }
    }
    Err(CommandError::err(format!(
        "Unknown client type '{}'",
        String::from_utf8_lossy(arg)
    )))
}

fn list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut kind = None;
    match args.len() {
        2 => {}
        4 if args::is(&args[2], "type") => kind = Some(parse_type(&args[3])?),
        n if n > 3 && args::is(&args[2], "id") => {
            let mut wanted = Vec::new();
            for arg in &args[3..] {
                // Ids below 1 are accepted and match nobody, as in Redis.
                match args::parse_i64_strict(arg) {
                    Some(v) => wanted.push(u64::try_from(v).unwrap_or(0)),
                    None => return Err(CommandError::err("Invalid client ID")),
                }
            }
            ids = Some(wanted);
        }
        _ => return Err(CommandError::Syntax),
    }
    let now = Instant::now();
    let own = own_snapshot(ctx, args);
    let mut out = String::new();
    {
        for info in ctx.shared.clients.all() {
            if ids.as_ref().is_some_and(|ids| !ids.contains(&info.id)) {
                continue;
            }
            if kind.is_some_and(|k| k != info.kind()) {
                continue;
            }
            let snap = if info.id == ctx.client.id {
                own.clone()
            } else {
                info.snapshot()
            };
            out.push_str(&client_line(&info, &snap, now));
        }
    }
    Ok(Reply::Verbatim(out))
}

/// The filters of `CLIENT KILL <option> <value> ...`.
#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    /// A `crate::clients::KIND_*`.
    kind: Option<u8>,
    user: Option<String>,
    skip_me: bool,
}

fn parse_kill_filter(args: &[Bytes]) -> Result<KillFilter, CommandError> {
    let mut f = KillFilter {
        skip_me: true,
        ..KillFilter::default()
    };
    let mut i = 2;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return Err(CommandError::Syntax);
        };
        let opt = &args[i];
        let value_str = String::from_utf8_lossy(value).into_owned();
        if args::is(opt, "id") {
            match args::parse_i64_strict(value) {
                Some(v) if v >= 1 => f.id = Some(v as u64),
                _ => return Err(CommandError::err("client-id should be greater than 0")),
            }
        } else if args::is(opt, "type") {
            f.kind = Some(parse_type(value)?);
        } else if args::is(opt, "addr") {
            f.addr = Some(value_str);
        } else if args::is(opt, "laddr") {
            f.laddr = Some(value_str);
        } else if args::is(opt, "user") {
            if value_str != "default" {
                return Err(CommandError::err(format!("No such user '{value_str}'")));
            }
            f.user = Some(value_str);
        } else if args::is(opt, "skipme") {
            if args::is(value, "yes") {
                f.skip_me = true;
            } else if args::is(value, "no") {
                f.skip_me = false;
            } else {
                return Err(CommandError::Syntax);
            }
        } else {
            return Err(CommandError::Syntax);
        }
        i += 2;
    }
    Ok(f)
}

impl KillFilter {
    fn matches(&self, info: &ClientInfo, me: u64) -> bool {
        (!self.skip_me || info.id != me)
            && self.id.is_none_or(|id| id == info.id)
            && self.addr.as_ref().is_none_or(|a| *a == info.addr)
            && self.laddr.as_ref().is_none_or(|a| *a == info.laddr)
            && self.kind.is_none_or(|k| k == info.kind())
            && self.user.as_ref().is_none_or(|u| u == "default")
    }
}

/// Kills matching clients. Each connection closes at its next chance: at once
/// when idle or blocked, after its current batch when busy; the caller itself
/// closes after this reply.
fn kill(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let me = ctx.client.id;
    if args.len() == 3 {
        // The old form: CLIENT KILL addr:port, which may name the caller itself.
        let addr = String::from_utf8_lossy(&args[2]);
        let found = ctx
            .shared
            .clients
            .all()
            .into_iter()
            .find(|c| c.addr == addr);
        return match found {
            Some(c) => {
                c.kill();
                Ok(Reply::ok())
            }
            None => Err(CommandError::err("No such client")),
        };
    }
    let filter = parse_kill_filter(args)?;
    let mut killed = 0;
    for c in ctx.shared.clients.all() {
        if filter.matches(&c, me) {
            c.kill();
            killed += 1;
        }
    }
    Ok(Reply::Integer(killed))
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends another client's blocking command as
/// if it timed out, or with the UNBLOCKED error.
fn unblock(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Err(CommandError::err(
            "unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP.",
        ));
    }
    let id = args::int(&args[2])?;
    let reply = match args.get(3) {
        None => None,
        Some(m) if args::is(m, "timeout") => None,
        Some(m) if args::is(m, "error") => Some(Reply::Error(
            "UNBLOCKED client unblocked via CLIENT UNBLOCK".into(),
        )),
        Some(_) => {
            return Err(CommandError::err(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let Ok(id) = u64::try_from(id) else {
        return Ok(Reply::Integer(0));
    };
    Ok(Reply::Integer(
        ctx.state.blocking.unblock_client(id, reply) as i64
    ))
}

/// Exempts this client from `maxmemory-clients` eviction, or ends that.
fn no_evict(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let on = if args::is(&args[2], "on") {
        true
    } else if args::is(&args[2], "off") {
        false
    } else {
        return Err(CommandError::Syntax);
    };
    ctx.client
        .info
        .no_evict
        .store(on, std::sync::atomic::Ordering::Relaxed);
    Ok(Reply::ok())
}

fn help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_validated_like_redis() {
        assert!(validate_attr(b"my-app_1", "Client names").is_ok());
        assert_eq!(
            validate_attr(b"a b", "Client names")
                .unwrap_err()
                .to_string(),
            "ERR Client names cannot contain spaces, newlines or special characters."
        );
        assert!(validate_attr("é".as_bytes(), "lib-name").is_err());
    }

    #[test]
    fn kill_filter_parsing() {
        let a = |v: &[&str]| -> Vec<Bytes> {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        };
        let f = parse_kill_filter(&a(&["client", "kill", "id", "7", "skipme", "no"])).unwrap();
        assert_eq!(f.id, Some(7));
        assert!(!f.skip_me);
        assert_eq!(
            parse_kill_filter(&a(&["client", "kill", "id", "0"]))
                .err()
                .unwrap()
                .to_string(),
            "ERR client-id should be greater than 0"
        );
        assert_eq!(
            parse_kill_filter(&a(&["client", "kill", "id", "1", "x"])).err(),
            Some(CommandError::Syntax)
        );
        assert_eq!(
            parse_kill_filter(&a(&["client", "kill", "type", "foo"]))
                .err()
                .unwrap()
                .to_string(),
            "ERR Unknown client type 'foo'"
        );
    }
}
