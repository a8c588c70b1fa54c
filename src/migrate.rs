//! MIGRATE's client side: one blocking connection to the target server that
//! sends AUTH, SELECT and the RESTORE commands in one write and reads one
//! reply line for each, within the command's timeout, as Redis's
//! `migrateCommand` does (it also blocks the server meanwhile, so the keys
//! leave the source atomically). The command layer builds the payloads and
//! deletes the moved keys; this module only talks to the target.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// What went wrong talking to the target (Redis's `-IOERR` replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoFailure {
    Connecting,
    Writing,
    Reading,
}

/// The target's reply lines: AUTH's (if sent), SELECT's, then one per RESTORE.
#[derive(Debug)]
pub struct Replies {
    pub auth: Option<String>,
    pub select: String,
    /// One per RESTORE, in order; fewer than sent if the connection failed.
    pub restores: Vec<String>,
    /// Set when the replies stopped early.
    pub failure: Option<IoFailure>,
}

/// Credentials for AUTH (password) or AUTH2 (user and password).
pub struct Auth<'a> {
    pub user: Option<&'a [u8]>,
    pub password: &'a [u8],
}

/// One key to send: name, relative TTL in ms (0 = none), DUMP payload.
pub struct Item<'a> {
    pub key: &'a [u8],
    pub ttl_ms: i64,
    pub payload: Vec<u8>,
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        bulk(out, a);
    }
}

/// Sends everything to `host:port` and reads the replies; `timeout` bounds
/// the connect and every read and write.
pub fn send(
    host: &str,
    port: u16,
    timeout: Duration,
    auth: Option<Auth<'_>>,
    db: i64,
    items: &[Item<'_>],
    replace: bool,
) -> Result<Replies, IoFailure> {
    let addr = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(IoFailure::Connecting)?;
    // Redis connects without blocking and learns of a refused connection
    // only when it writes: it reports that as a write error.
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => IoFailure::Writing,
        _ => IoFailure::Connecting,
    })?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|_| IoFailure::Connecting)?;
    let mut out = Vec::new();
    if let Some(a) = &auth {
        match a.user {
            Some(user) => command(&mut out, &[b"AUTH", user, a.password]),
            None => command(&mut out, &[b"AUTH", a.password]),
        }
    }
    let db_text = db.to_string();
    command(&mut out, &[b"SELECT", db_text.as_bytes()]);
    for item in items {
        let ttl = item.ttl_ms.to_string();
        let mut args: Vec<&[u8]> = vec![b"RESTORE", item.key, ttl.as_bytes(), &item.payload];
        if replace {
            args.push(b"REPLACE");
        }
        command(&mut out, &args);
    }
    (&stream).write_all(&out).map_err(|_| IoFailure::Writing)?;
    let mut reader = BufReader::new(&stream);
    let line = |reader: &mut BufReader<&TcpStream>| -> Option<String> {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(n) if n > 0 && buf.ends_with(b"\r\n") => {
                buf.truncate(buf.len() - 2);
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
            _ => None,
        }
    };
    let mut replies = Replies {
        auth: None,
        select: String::new(),
        restores: Vec::with_capacity(items.len()),
        failure: None,
    };
    if auth.is_some() {
        replies.auth = Some(line(&mut reader).ok_or(IoFailure::Reading)?);
    }
    replies.select = line(&mut reader).ok_or(IoFailure::Reading)?;
    for _ in items {
        match line(&mut reader) {
            Some(l) => replies.restores.push(l),
            None => {
                replies.failure = Some(IoFailure::Reading);
                break;
            }
        }
    }
    Ok(replies)
}
