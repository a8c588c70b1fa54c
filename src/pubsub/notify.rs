//! Keyspace notifications (`notify-keyspace-events`): the event classes, their
//! text form, and publishing `__keyspace@<db>__:<key>` / `__keyevent@<db>__:<event>`.
//!
//! Commands report events through their context's `notify`, which costs
//! one flag test when notifications are off (the default).

use bytes::{Bytes, BytesMut};

use super::PubSub;

pub const KEYSPACE: u32 = 1 << 0; // K
pub const KEYEVENT: u32 = 1 << 1; // E
pub const GENERIC: u32 = 1 << 2; // g
pub const STRING: u32 = 1 << 3; // $
pub const LIST: u32 = 1 << 4; // l
pub const SET: u32 = 1 << 5; // s
pub const HASH: u32 = 1 << 6; // h
pub const ZSET: u32 = 1 << 7; // z
pub const EXPIRED: u32 = 1 << 8; // x
pub const EVICTED: u32 = 1 << 9; // e
pub const STREAM: u32 = 1 << 10; // t
pub const KEY_MISS: u32 = 1 << 11; // m
pub const MODULE: u32 = 1 << 13; // d
pub const NEW: u32 = 1 << 14; // n
/// `A`: every class but key-miss and new-key events, as in Redis.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Class letters in the order Redis prints them (after `A` or the classes).
const CLASSES: &[(u8, u32)] = &[
    (b'g', GENERIC),
    (b'$', STRING),
    (b'l', LIST),
    (b's', SET),
    (b'h', HASH),
    (b'z', ZSET),
    (b'x', EXPIRED),
    (b'e', EVICTED),
    (b't', STREAM),
    (b'd', MODULE),
];

/// Parses the parameter's text; `None` for an unknown character.
pub fn parse(text: &str) -> Option<u32> {
    let mut flags = 0;
    for c in text.bytes() {
        flags |= match c {
            b'A' => ALL,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b'm' => KEY_MISS,
            b'n' => NEW,
            _ => CLASSES.iter().find(|(l, _)| *l == c)?.1,
        };
    }
    Some(flags)
}

/// The parameter's text as CONFIG GET shows it (Redis 7.0 never prints `n`).
pub fn to_text(flags: u32) -> String {
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
    } else {
        for (letter, class) in CLASSES {
            if flags & class != 0 {
                out.push(*letter as char);
            }
        }
    }
    for (letter, class) in [('K', KEYSPACE), ('E', KEYEVENT), ('m', KEY_MISS)] {
        if flags & class != 0 {
            out.push(letter);
        }
    }
    out
}

/// The refusal CONFIG SET answers with for a bad value.
pub const PARSE_ERROR: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/// Publishes one event of `class` on `key` in `db`, if enabled and listened to.
pub fn emit(ps: &PubSub, class: u32, event: &str, key: &[u8], db: usize, now_ms: i64) {
    let flags = ps.notify_flags;
    if flags & class == 0 || !ps.has_subscribers() {
        return;
    }
    let event = Bytes::copy_from_slice(event.as_bytes());
    let key = Bytes::copy_from_slice(key);
    if flags & KEYSPACE != 0 {
        let channel = channel_name("__keyspace@", db, &key);
        ps.publish(&channel, &event, now_ms);
    }
    if flags & KEYEVENT != 0 {
        let channel = channel_name("__keyevent@", db, &event);
        ps.publish(&channel, &key, now_ms);
    }
}

/// Publishes `expired` for the keys database `db` logged as expired (or just
/// forgets them when nobody would hear), and touches their watchers.
pub fn flush_expired(state: &mut crate::state::State, db: usize, now_ms: i64) {
    let keys = state.keyspace.db_mut(db).take_expired();
    for key in keys {
        // Replicas delete the key when the primary says so.
        crate::replication::propagate::deleted(state, db, &key, false);
        if !state.watches.is_empty() {
            state.watches.touch(db, &key, state.keyspace.db(db));
        }
        // Blocked stream reads hear of their key's deletion.
        if state.blocking.wants_changes() {
            state.blocking.signal(db, &key);
        }
        emit(&state.pubsub, EXPIRED, "expired", &key, db, now_ms);
    }
}

/// [`flush_expired`] for every database (after an active expiry slice).
pub fn flush_expired_all(state: &mut crate::state::State, now_ms: i64) {
    for db in 0..state.keyspace.db_count() {
        if state.keyspace.db(db).has_expired_log() {
            flush_expired(state, db, now_ms);
        }
    }
}

fn channel_name(prefix: &str, db: usize, suffix: &[u8]) -> Bytes {
    let mut name = BytesMut::with_capacity(prefix.len() + 24 + suffix.len());
    name.extend_from_slice(prefix.as_bytes());
    name.extend_from_slice(db.to_string().as_bytes());
    name.extend_from_slice(b"__:");
    name.extend_from_slice(suffix);
    name.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_as_redis_prints_it() {
        assert_eq!(to_text(parse("nmEKA").unwrap()), "AKEm");
        assert_eq!(to_text(parse("dtexzhsl$gnmEK").unwrap()), "AKEm");
        assert_eq!(to_text(parse("x$E").unwrap()), "$xE");
        assert_eq!(to_text(parse("").unwrap()), "");
        assert!(parse("Q").is_none());
    }

    #[test]
    fn channel_names() {
        assert_eq!(
            &channel_name("__keyspace@", 3, b"k")[..],
            b"__keyspace@3__:k"
        );
    }
}
