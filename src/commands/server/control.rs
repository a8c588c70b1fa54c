//! Connection control: CLIENT PAUSE / UNPAUSE, CLIENT REPLY, RESET, MONITOR.
//!
//! - A pause is a deadline in the registry's [`crate::pause::PauseState`]; a connection
//!   about to run commands the pause covers waits in [`wait_unpaused`]
//!   before it takes the state lock, so paused clients hold nothing up.
//! - CLIENT REPLY only sets flags on the client; the connection drops the
//!   replies they cover ([`ClientState::reply_suppressed`]).
//! - MONITOR registers a channel in the registry; [`feed_monitors`] sends
//!   every executed command's line to it and the monitoring connection writes
//!   the lines while otherwise idle.
//! - RESET restores a connection's defaults; state other families keep per
//!   connection (transactions, subscriptions) is reset through
//!   [`reset_connection_hook`].

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::args;
use crate::clients::{ClientState, Monitor};
use crate::commands::{flags, lookup, Ctx};
use crate::errors::{CmdResult, CommandError};
use crate::pause::Pause;
use crate::reply::{Protocol, Reply};
use crate::state::Shared;

/// True when the pause covers this command line.
fn covered(pause: &Pause, args: &[Bytes]) -> bool {
    if pause.all {
        return true;
    }
    args.first()
        .and_then(|name| lookup(name))
        .is_some_and(|spec| spec.flags & (flags::WRITE | flags::MAY_REPLICATE) != 0)
}

/// Waits, without holding the state lock, while a pause covers any of the
/// commands about to run. Returns early if the connection is killed.
pub async fn wait_unpaused<'a>(
    shared: &Shared,
    client: &ClientState,
    pending: impl Iterator<Item = &'a Vec<Bytes>> + Clone,
) {
    loop {
        let Some(pause) = shared.clients.pause.current() else {
            return;
        };
        if !pending.clone().any(|args| covered(&pause, args)) {
            return;
        }
        let ended = shared.clients.pause.ended.notified();
        tokio::select! {
            _ = tokio::time::sleep_until(pause.until.into()) => {}
            _ = ended => {}
            _ = client.info.kill_signal.notified() => {
                // Keep the kill for the connection's own check.
                client.info.kill_signal.notify_one();
                return;
            }
        }
    }
}

pub fn pause(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let ms = args::parse_i64_strict(&args[2])
        .ok_or_else(|| CommandError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CommandError::err("timeout is negative"));
    }
    let all = match args.get(3) {
        None => true,
        Some(m) if args::is(m, "all") => true,
        Some(m) if args::is(m, "write") => false,
        Some(_) => return Err(CommandError::err("CLIENT PAUSE mode must be WRITE or ALL")),
    };
    if args.len() > 4 {
        return Err(CommandError::Syntax);
    }
    let until = Instant::now() + Duration::from_millis(ms as u64);
    ctx.shared.clients.pause.pause(until, all);
    Ok(Reply::ok())
}

pub fn unpause(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.shared.clients.pause.unpause();
    Ok(Reply::ok())
}

pub fn reply(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let client = &mut *ctx.client;
    if args::is(&args[2], "on") {
        client.reply_off = false;
        client.skip_next = false;
        Ok(Reply::ok())
    } else if args::is(&args[2], "off") {
        client.reply_off = true;
        Ok(Reply::ok())
    } else if args::is(&args[2], "skip") {
        if !client.reply_off {
            client.skip_next = true;
            // Its own reply is not sent either.
            client.skip_current = true;
        }
        Ok(Reply::ok())
    } else {
        Err(CommandError::Syntax)
    }
}

/// Per-connection state other families add (MULTI/WATCH, subscriptions)
/// is reset here when a client sends RESET.
pub fn reset_connection_hook(ctx: &mut Ctx<'_>) {
    crate::commands::transactions::reset_client(ctx);
}

pub fn reset(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    reset_connection_hook(ctx);
    let client = &mut *ctx.client;
    client.db = 0;
    client.proto = Protocol::Resp2;
    client.name = None;
    client.reply_off = false;
    client.skip_next = false;
    client.skip_current = false;
    // As in Redis, RESET logs the client out when a password is set.
    client.authenticated = crate::security::starts_authenticated(&ctx.shared.config());
    if client.monitor.take().is_some() {
        ctx.shared.clients.remove_monitor(client.id);
    }
    Ok(Reply::simple("RESET"))
}

pub fn monitor(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.client.monitor.is_none() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        ctx.client.monitor = Some(rx);
        ctx.shared.clients.add_monitor(Monitor {
            client_id: ctx.client.id,
            tx,
        });
    }
    Ok(Reply::ok())
}

/// Quotes an argument as Redis's sdscatrepr does.
fn repr(arg: &[u8], out: &mut String) {
    out.push('"');
    for &b in arg {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
}

/// The MONITOR line for one command.
pub fn monitor_line(now: std::time::SystemTime, db: usize, addr: &str, args: &[Bytes]) -> String {
    let t = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut line = format!("{}.{:06} [{db} {addr}]", t.as_secs(), t.subsec_micros());
    for arg in args {
        line.push(' ');
        repr(arg, &mut line);
    }
    line
}

/// Sends a command about to run to every monitor (admin commands are not
/// shown, as in Redis).
pub fn feed_monitors(shared: &Shared, client: &ClientState, args: &[Bytes]) {
    if shared.clients.monitor_count.load(Ordering::Relaxed) == 0 {
        return;
    }
    let admin = args
        .first()
        .and_then(|n| lookup(n))
        .is_none_or(|spec| spec.flags & flags::ADMIN != 0);
    if admin {
        return;
    }
    let line = monitor_line(std::time::SystemTime::now(), client.db, &client.addr, args);
    shared.clients.send_to_monitors(&line);
}

/// The next line for a monitoring connection; pending forever otherwise.
pub async fn next_monitor_line(
    rx: &mut Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
) -> Option<String> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pause::PauseState;

    #[test]
    fn monitor_lines_quote_like_redis() {
        let t = std::time::UNIX_EPOCH + Duration::from_micros(1_339_518_083_107_412);
        let args = vec![
            Bytes::from_static(b"set"),
            Bytes::from_static(b"k"),
            Bytes::from_static(b"a \"b\"\n\x01"),
        ];
        assert_eq!(
            monitor_line(t, 0, "127.0.0.1:60866", &args),
            "1339518083.107412 [0 127.0.0.1:60866] \"set\" \"k\" \"a \\\"b\\\"\\n\\x01\""
        );
    }

    #[test]
    fn pauses_extend_and_end() {
        let p = PauseState::default();
        assert!(p.current().is_none());
        let later = Instant::now() + Duration::from_secs(60);
        p.pause(later, false);
        p.pause(Instant::now() + Duration::from_secs(1), true);
        let cur = p.current().unwrap();
        assert!(cur.all);
        assert_eq!(cur.until, later);
        let write = vec![Bytes::from_static(b"SET")];
        let read = vec![Bytes::from_static(b"GET")];
        let only_writes = Pause {
            until: later,
            all: false,
        };
        assert!(covered(&only_writes, &write));
        assert!(!covered(&only_writes, &read));
        p.unpause();
        assert!(p.current().is_none());
    }
}
