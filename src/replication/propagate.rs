//! The command stream: each write's effect, in the forms Redis 7.0 sends.
//!
//! Dispatch calls [`command`] after a write that changed something (the
//! dirty counter moved, as Redis's `call()` decides). Most commands go out as
//! they came; those whose effect depends on the time, on chance or on a wait
//! are rewritten so a replica applying them reaches the same state: relative
//! expiries become absolute (`PEXPIREAT`, `SET ... PXAT`), SPOP becomes SREM
//! of what it popped, INCRBYFLOAT and HINCRBYFLOAT become SET/HSET of the
//! result, blocking pops their non-blocking forms, `XADD *` the id it made.
//! Keys that expire or are evicted go out as DEL ([`deleted`]). Scripts and
//! transactions are not sent themselves: the writes inside them are, and
//! [`super::Replication::end_command`] wraps several in MULTI/EXEC.

use bytes::Bytes;

use crate::reply::Reply;
use crate::state::State;

/// Appends `args` to `out` as a RESP array of bulk strings.
pub fn encode(args: &[Bytes], out: &mut Vec<u8>) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Commands never sent themselves: their inner writes are.
fn sends_effects_only(name: &str) -> bool {
    matches!(
        name,
        "exec" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

/// Propagates a write that ran in database `db` (the client's, after the
/// command) with `reply`. Keys it found expired go first, as DELs.
pub fn command(
    state: &mut State,
    db: usize,
    name: &str,
    args: &[Bytes],
    reply: &Reply,
    now_ms: i64,
) {
    if !state.repl.propagating() || sends_effects_only(name) || reply.is_error() {
        return;
    }
    if state.keyspace.db(db).has_expired_log() {
        crate::pubsub::notify::flush_expired(state, db, now_ms);
    }
    for op in rewrite(state, db, name, args, reply) {
        state.repl.push_op(db, op);
    }
}

/// A key of database `db` expired or was evicted: DEL (UNLINK when freed
/// lazily, as Redis's `lazyfree-lazy-expire`/`-eviction`).
pub fn deleted(state: &mut State, db: usize, key: &[u8], lazy: bool) {
    if !state.repl.propagating() {
        return;
    }
    let verb: &'static [u8] = if lazy { b"UNLINK" } else { b"DEL" };
    state.repl.push_op(
        db,
        vec![Bytes::from_static(verb), Bytes::copy_from_slice(key)],
    );
}

/// A blocked client was served by a later write: its command goes out in
/// the non-blocking form that has the same effect.
pub fn served(state: &mut State, db: usize, args: &[Bytes], reply: &Reply) {
    if !state.repl.propagating() || reply.is_error() {
        return;
    }
    let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
    if let Some(op) = unblocked_form(&name, args, reply) {
        state.repl.push_op(db, op);
    }
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn num(n: impl ToString) -> Bytes {
    Bytes::from(n.to_string())
}

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn expire_of(state: &State, db: usize, key: &[u8]) -> Option<Option<i64>> {
    state.keyspace.db(db).stored(key).map(|r| r.expire_at())
}

/// The ops that have `name args`'s effect on a replica.
fn rewrite(state: &State, db: usize, name: &str, args: &[Bytes], reply: &Reply) -> Vec<Vec<Bytes>> {
    let key = || args.get(1).cloned().unwrap_or_default();
    // A key's expiry after the command: `PEXPIREAT key t`, or DEL when the
    // command removed it (an expiry in the past).
    let absolute_expiry = || match expire_of(state, db, &args[1]) {
        Some(Some(t)) => vec![vec![b("PEXPIREAT"), key(), num(t)]],
        Some(None) => vec![vec![b("PERSIST"), key()]],
        None => vec![vec![b("DEL"), key()]],
    };
    match name {
        "expire" | "pexpire" | "expireat" => absolute_expiry(),
        "setex" | "psetex" => match expire_of(state, db, &args[1]) {
            Some(Some(t)) => vec![vec![b("SET"), key(), args[3].clone(), b("PXAT"), num(t)]],
            _ => vec![args.to_vec()],
        },
        "set" => {
            let relative = args[3..]
                .iter()
                .any(|a| is(a, "ex") || is(a, "px") || is(a, "exat"));
            match expire_of(state, db, &args[1]) {
                Some(Some(t)) if relative => {
                    vec![vec![b("SET"), key(), args[2].clone(), b("PXAT"), num(t)]]
                }
                _ => vec![args.to_vec()],
            }
        }
        "getex" => {
            if args.len() > 2 {
                absolute_expiry()
            } else {
                Vec::new()
            }
        }
        "getdel" => vec![vec![b("DEL"), key()]],
        "incrbyfloat" => match reply {
            Reply::Bulk(v) => vec![vec![b("SET"), key(), v.clone(), b("KEEPTTL")]],
            _ => vec![args.to_vec()],
        },
        "hincrbyfloat" => match reply {
            Reply::Bulk(v) => vec![vec![b("HSET"), key(), args[2].clone(), v.clone()]],
            _ => vec![args.to_vec()],
        },
        // A count that took the whole set: Redis sends DEL.
        "spop" if args.len() > 2 && expire_of(state, db, &args[1]).is_none() => {
            vec![vec![b("DEL"), key()]]
        }
        "spop" => {
            let members: Vec<Bytes> = match reply {
                Reply::Bulk(m) => vec![m.clone()],
                Reply::Array(items) | Reply::Set(items) => items
                    .iter()
                    .filter_map(|r| match r {
                        Reply::Bulk(m) => Some(m.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            members
                .chunks(1024)
                .map(|chunk| {
                    let mut op = vec![b("SREM"), key()];
                    op.extend_from_slice(chunk);
                    op
                })
                .collect()
        }
        "xadd" => match reply {
            Reply::Bulk(id) => {
                let mut op = args.to_vec();
                if let Some(star) = op.iter().position(|a| a.as_ref() == b"*") {
                    op[star] = id.clone();
                }
                vec![op]
            }
            _ => vec![args.to_vec()],
        },
        _ => match unblocked_form(name, args, reply) {
            Some(op) => vec![op],
            None => vec![args.to_vec()],
        },
    }
}

/// A blocking pop's non-blocking twin, from what it popped.
fn unblocked_form(name: &str, args: &[Bytes], reply: &Reply) -> Option<Vec<Bytes>> {
    let popped_key = || match reply {
        Reply::Array(items) => match items.first() {
            Some(Reply::Bulk(k)) => Some(k.clone()),
            _ => None,
        },
        _ => None,
    };
    let popped_count = || match reply {
        Reply::Array(items) => match items.get(1) {
            Some(Reply::Array(els)) => els.len(),
            _ => 1,
        },
        _ => 1,
    };
    match name {
        "blpop" => Some(vec![b("LPOP"), popped_key()?]),
        "brpop" => Some(vec![b("RPOP"), popped_key()?]),
        "bzpopmin" => Some(vec![b("ZPOPMIN"), popped_key()?]),
        "bzpopmax" => Some(vec![b("ZPOPMAX"), popped_key()?]),
        "brpoplpush" => Some(vec![b("RPOPLPUSH"), args[1].clone(), args[2].clone()]),
        "blmove" => Some(vec![
            b("LMOVE"),
            args[1].clone(),
            args[2].clone(),
            args[3].clone(),
            args[4].clone(),
        ]),
        "blmpop" | "bzmpop" => {
            let key = popped_key()?;
            let numkeys: usize = std::str::from_utf8(&args[2]).ok()?.parse().ok()?;
            let side = args.get(3 + numkeys)?;
            let verb = match (name, is(side, "left") || is(side, "min")) {
                ("blmpop", true) => "LPOP",
                ("blmpop", false) => "RPOP",
                (_, true) => "ZPOPMIN",
                (_, false) => "ZPOPMAX",
            };
            Some(vec![b(verb), key, num(popped_count())])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn encodes_a_multibulk() {
        let mut out = Vec::new();
        encode(&a(&["SET", "k", ""]), &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn blocking_pops_become_plain_pops() {
        let reply = Reply::Array(vec![Reply::bulk_str("q"), Reply::bulk_str("v")]);
        assert_eq!(
            unblocked_form("blpop", &a(&["blpop", "p", "q", "0"]), &reply),
            Some(a(&["LPOP", "q"]))
        );
        let reply = Reply::Array(vec![
            Reply::bulk_str("q"),
            Reply::Array(vec![Reply::bulk_str("x"), Reply::bulk_str("y")]),
        ]);
        assert_eq!(
            unblocked_form(
                "blmpop",
                &a(&["blmpop", "0", "2", "p", "q", "RIGHT", "COUNT", "5"]),
                &reply
            ),
            Some(a(&["RPOP", "q", "2"]))
        );
    }
}
