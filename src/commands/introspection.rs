//! MEMORY and OBJECT: what a key costs and how Redis would store it.
//!
//! # The MEMORY USAGE model
//!
//! [`entry_usage`] estimates the heap bytes a key holds, counting what the
//! allocator really hands out, not just payload lengths:
//!
//! - every byte string (key, string value, element, field, member) is a
//!   `Bytes` handle (counted in the slot that holds it) plus its payload
//!   allocation, rounded as glibc malloc rounds (8-byte header, 16-byte
//!   granularity, 32-byte minimum);
//! - the key's slot in its database's hash trie: `(Key, Entry)` plus the
//!   trie's hash and node overhead;
//! - a list (`imbl::Vector`) holds its elements in chunks of 64 handles, plus
//!   the tree nodes above them;
//! - a hash is its listpack buffer while small, a set its intset buffer; in
//!   their table form a [`Champ`](crate::keyspace::champ::Champ) of `(field,
//!   value)` / `member` slots whose nodes are exactly sized: one slot per item
//!   plus one per child node, the number of nodes being what uniformly spread
//!   hashes give (a subtree of a level-`L` prefix exists when at least two
//!   items share that prefix). The database's own trie is counted at two
//!   slots per key.
//!
//! With `SAMPLES n` (default 5, 0 = all) the average payload of the first n
//! elements stands for all, as Redis does. Structure shared with a snapshot
//! that is still being written is counted in full: the estimate is what the
//! key would hold alone. `tests/memory_usage.rs` checks the model against an
//! allocation-counting allocator.
//!
//! # OBJECT ENCODING
//!
//! Hashes and sets report their real representation, `listpack` or
//! `hashtable`, `intset` or `hashtable`, which convert under Redis's rules
//! (`keyspace/hash.rs`, `keyspace/set.rs`). For strings and lists OBJECT
//! ENCODING answers what Redis 7.0 would report for the same value: strings
//! `int` / `embstr` (≤ 44 bytes) / `raw`, lists `quicklist`. That is
//! descriptive only: a string Redis made `raw` by APPEND is reported by its
//! content here.

use bytes::Bytes;

use super::flags::READONLY;
use super::server::{dispatch_sub, help_reply, Sub};
use super::{args, spec, CommandSpec, Ctx};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::{Entry, Value};
use crate::reply::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        since: "4.0.0",
        ..spec(
            "memory",
            -2,
            READONLY,
            // MEMORY USAGE's key, as COMMAND GETKEYS reports it.
            (2, 2, 1),
            "server",
            "A container for memory diagnostics commands.",
            memory,
        )
    },
    CommandSpec {
        since: "2.2.3",
        ..spec(
            "object",
            -2,
            READONLY,
            (2, 2, 1),
            "keyspace",
            "A container for object introspection commands.",
            object,
        )
    },
];

/// Handles per list chunk (imbl's VECTOR_CHUNK_SIZE).
const LIST_CHUNK: usize = 64;
/// Slots per hash trie node.
const HAMT_NODE_SLOTS: usize = 32;
/// Below this many entries a trie allocates about four slots per entry,
/// above it about two.
const HAMT_SMALL: usize = 2048;
/// The hash stored beside each trie slot, with alignment.
const HAMT_HASH: usize = 8;
/// Reference count and bookkeeping of a shared node.
const NODE_HEADER: usize = 16;

/// Keys MEMORY STATS samples per database for `dataset.bytes`.
const STATS_SAMPLES: usize = 1000;

/// Bytes glibc malloc uses for a request of `n` bytes.
pub fn alloc_size(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 8 + 15) & !15).max(32)
    }
}

fn payload(b: &Bytes) -> usize {
    alloc_size(b.len())
}

/// Average payload of the first `samples` items (0 = all) times the count.
fn sampled<'a, I>(items: I, count: usize, samples: usize, cost: impl Fn(I::Item) -> usize) -> usize
where
    I: Iterator,
    I::Item: 'a,
{
    if count == 0 {
        return 0;
    }
    let limit = if samples == 0 {
        count
    } else {
        samples.min(count)
    };
    let mut total = 0;
    let mut seen = 0;
    for item in items.take(limit) {
        total += cost(item);
        seen += 1;
    }
    if seen == 0 {
        return 0;
    }
    total * count / seen
}

/// Heap bytes of a trie holding `count` slots of `slot` bytes each.
fn hamt_bytes(count: usize, slot: usize) -> usize {
    let slots_per_entry = if count <= HAMT_SMALL { 4 } else { 2 };
    let used = count * (slot + HAMT_HASH) * slots_per_entry;
    let nodes = count.div_ceil(HAMT_NODE_SLOTS).max(1);
    used + nodes * NODE_HEADER
}

/// Bytes of a champ node's header (reference count, bitmap, counts), which
/// shares one allocation with the node's slots.
const CHAMP_NODE: usize = 16;
/// Bits of the hash a champ level reads, and its levels.
const CHAMP_BITS: u32 = 5;
const CHAMP_LEVELS: u32 = 13;

/// Heap bytes of a champ holding `count` items of `slot` bytes each, their
/// payloads excluded.
fn champ_bytes(count: usize, slot: usize) -> usize {
    // Expected nodes: the root, plus one per hash prefix that at least two
    // of the `count` uniformly spread items share (Poisson per prefix).
    let n = count as f64;
    let mut nodes = 1.0;
    for level in 1..=CHAMP_LEVELS {
        let prefixes = 2f64.powi((CHAMP_BITS * level).min(64) as i32);
        let lambda = n / prefixes;
        let shared = 1.0 - (-lambda).exp() * (1.0 + lambda);
        nodes += prefixes * shared;
        if prefixes * shared < 0.5 {
            break;
        }
    }
    let nodes = nodes.round() as usize;
    // Each node's array holds its items and one slot per child node.
    let slots = count + nodes - 1;
    let per_node = slots.div_ceil(nodes);
    nodes * alloc_size(CHAMP_NODE + per_node * slot)
}

/// Heap bytes of an intset set: its `Arc`'d header and its buffer.
fn intset_bytes(buffer: usize) -> usize {
    alloc_size(16 + std::mem::size_of::<crate::keyspace::intset::IntSet>()) + alloc_size(buffer)
}

/// Heap bytes of a listpack hash: its `Arc`'d header and its buffer.
fn listpack_bytes(buffer: usize) -> usize {
    alloc_size(16 + std::mem::size_of::<crate::keyspace::listpack::Listpack>()) + alloc_size(buffer)
}

/// Heap bytes of a value, excluding its key and slot.
pub fn value_usage(value: &Value, samples: usize) -> usize {
    let handle = std::mem::size_of::<Bytes>();
    match value {
        Value::Str(s) => payload(s),
        Value::List(l) => {
            let chunks = l.len().div_ceil(LIST_CHUNK);
            let chunk_bytes = alloc_size(LIST_CHUNK * handle + NODE_HEADER);
            // One branch node per 64 chunks above them, once there are several.
            let branches = if chunks > 1 {
                chunks.div_ceil(LIST_CHUNK)
            } else {
                0
            };
            chunks * chunk_bytes
                + branches * alloc_size(LIST_CHUNK * 16 + NODE_HEADER)
                + sampled(l.iter(), l.len(), samples, payload)
        }
        Value::Hash(h) => match h.listpack() {
            Some(lp) => listpack_bytes(lp.capacity()),
            None => {
                champ_bytes(h.len(), 2 * handle)
                    + sampled(h.iter(), h.len(), samples, |(k, v)| {
                        alloc_size(k.len()) + alloc_size(v.len())
                    })
            }
        },
        Value::Set(s) => match s.intset_bytes() {
            Some(ints) => intset_bytes(ints.len()),
            None => {
                champ_bytes(s.len(), handle)
                    + sampled(s.iter(), s.len(), samples, |m| alloc_size(m.len()))
            }
        },
    }
}

/// MEMORY USAGE of one key: its slot in the database, its name, its value.
pub fn entry_usage(key: &[u8], entry: &Entry, samples: usize) -> usize {
    let slot = std::mem::size_of::<(Bytes, Entry)>();
    let db_slot = (slot + HAMT_HASH) * 2;
    let expiry = if entry.expire_at.is_some() {
        // Its (deadline, key) element in the ordered expiry index.
        std::mem::size_of::<(i64, Bytes)>() * 2
    } else {
        0
    };
    db_slot + alloc_size(key.len()) + expiry + value_usage(&entry.value, samples)
}

pub(super) const MEMORY_SUBS: &[Sub] = &[
    Sub {
        name: "usage",
        arity: -3,
        handler: memory_usage,
    },
    Sub {
        name: "stats",
        arity: 2,
        handler: memory_stats,
    },
    Sub {
        name: "doctor",
        arity: 2,
        handler: memory_doctor,
    },
    Sub {
        name: "malloc-stats",
        arity: 2,
        handler: |_, _| {
            Ok(Reply::bulk_str(
                "Stats not supported for the current allocator",
            ))
        },
    },
    Sub {
        name: "purge",
        arity: 2,
        handler: |_, _| Ok(Reply::ok()),
    },
    Sub {
        name: "help",
        arity: 2,
        handler: memory_help,
    },
];

fn memory(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "memory", MEMORY_SUBS)
}

fn memory_usage(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut samples = 5usize;
    let mut rest = &args[3..];
    while let Some(opt) = rest.first() {
        if args::is(opt, "samples") && rest.len() >= 2 {
            let n = args::parse_i64_strict(&rest[1]).ok_or(CommandError::NotInteger)?;
            if n < 0 {
                return Err(CommandError::Syntax);
            }
            samples = n as usize;
            rest = &rest[2..];
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let now = ctx.now_ms;
    let key = &args[2];
    match ctx.db().get(key, now) {
        Some(entry) => Ok(Reply::Integer(entry_usage(key, entry, samples) as i64)),
        None => Ok(Reply::Null),
    }
}

fn float(v: f64) -> Reply {
    Reply::Double(v)
}

fn memory_stats(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let rss = super::server::info::rss_bytes();
    let mut dataset = 0usize;
    let mut keys = 0usize;
    let mut dbs = Vec::new();
    let now = ctx.now_ms;
    let count = ctx.state.keyspace.db_count();
    for index in 0..count {
        let db = ctx.state.keyspace.db(index);
        if db.is_empty() {
            continue;
        }
        let entry_slot = std::mem::size_of::<(Bytes, Entry)>();
        let main = hamt_bytes(db.len(), entry_slot);
        let expires = db.volatile_len() * std::mem::size_of::<(i64, Bytes)>() * 2;
        keys += db.len();
        // A sample of keys stands for all, so MEMORY STATS stays cheap.
        let n = db.len();
        dataset += sampled(
            db.iter()
                .filter(|(_, e)| e.expire_at.is_none_or(|t| t > now)),
            n,
            STATS_SAMPLES,
            |(k, e)| entry_usage(k, &e, 5),
        );
        dbs.push((
            Reply::bulk_str(&format!("db.{index}")),
            Reply::Map(vec![
                (
                    Reply::bulk_str("overhead.hashtable.main"),
                    Reply::Integer(main as i64),
                ),
                (
                    Reply::bulk_str("overhead.hashtable.expires"),
                    Reply::Integer(expires as i64),
                ),
            ]),
        ));
    }
    let total = rss.max(dataset as u64) as i64;
    let overhead = (total - dataset as i64).max(0);
    let mut pairs = vec![
        (Reply::bulk_str("peak.allocated"), Reply::Integer(total)),
        (Reply::bulk_str("total.allocated"), Reply::Integer(total)),
        (Reply::bulk_str("startup.allocated"), Reply::Integer(0)),
        (Reply::bulk_str("replication.backlog"), Reply::Integer(0)),
        (Reply::bulk_str("clients.slaves"), Reply::Integer(0)),
        (Reply::bulk_str("clients.normal"), Reply::Integer(0)),
        (Reply::bulk_str("cluster.links"), Reply::Integer(0)),
        (Reply::bulk_str("aof.buffer"), Reply::Integer(0)),
        (Reply::bulk_str("lua.caches"), Reply::Integer(0)),
        (Reply::bulk_str("functions.caches"), Reply::Integer(0)),
    ];
    pairs.extend(dbs);
    let pct = |part: i64| {
        if total > 0 {
            part as f64 * 100.0 / total as f64
        } else {
            0.0
        }
    };
    pairs.extend([
        (Reply::bulk_str("overhead.total"), Reply::Integer(overhead)),
        (Reply::bulk_str("keys.count"), Reply::Integer(keys as i64)),
        (
            Reply::bulk_str("keys.bytes-per-key"),
            Reply::Integer(if keys > 0 { total / keys as i64 } else { 0 }),
        ),
        (
            Reply::bulk_str("dataset.bytes"),
            Reply::Integer(dataset as i64),
        ),
        (
            Reply::bulk_str("dataset.percentage"),
            float(pct(dataset as i64)),
        ),
        (Reply::bulk_str("peak.percentage"), float(100.0)),
        (
            Reply::bulk_str("allocator.allocated"),
            Reply::Integer(total),
        ),
        (Reply::bulk_str("allocator.active"), Reply::Integer(total)),
        (
            Reply::bulk_str("allocator.resident"),
            Reply::Integer(rss as i64),
        ),
        (Reply::bulk_str("allocator-fragmentation.ratio"), float(1.0)),
        (
            Reply::bulk_str("allocator-fragmentation.bytes"),
            Reply::Integer(0),
        ),
        (Reply::bulk_str("allocator-rss.ratio"), float(1.0)),
        (Reply::bulk_str("allocator-rss.bytes"), Reply::Integer(0)),
        (Reply::bulk_str("rss-overhead.ratio"), float(1.0)),
        (Reply::bulk_str("rss-overhead.bytes"), Reply::Integer(0)),
        (Reply::bulk_str("fragmentation"), float(1.0)),
        (Reply::bulk_str("fragmentation.bytes"), Reply::Integer(0)),
    ]);
    Ok(Reply::Map(pairs))
}

fn memory_doctor(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let text = if ctx.state.keyspace.key_count() == 0 {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector \
         can't be used in these conditions. Please, leave for your mission on Earth and fill \
         it with some data. The new Sam and I will be back to our programming as soon as I \
         finished rebooting."
    } else {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what \
         occurs on this base."
    };
    Ok(Reply::Verbatim(text.to_string()))
}

fn memory_help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    ))
}

/// Redis's string2ll: a canonical 64-bit integer (no `+`, no leading zeros).
fn is_redis_integer(b: &[u8]) -> bool {
    args::parse_i64_strict(b).is_some_and(|n| n.to_string().as_bytes() == b)
}

/// The encoding Redis 7.0 would report for `value` (a hash's and a set's are
/// their own, converted under the configured limits as they changed).
pub fn encoding(value: &Value) -> &'static str {
    match value {
        Value::Str(s) if s.len() <= 20 && is_redis_integer(s) => "int",
        Value::Str(s) if s.len() <= 44 => "embstr",
        Value::Str(_) => "raw",
        // Redis 7.0 stores every list as a quicklist (7.2 added small listpacks).
        Value::List(_) => "quicklist",
        Value::Hash(h) => h.encoding_name(),
        Value::Set(s) => s.encoding_name(),
    }
}

pub(super) const OBJECT_SUBS: &[Sub] = &[
    Sub {
        name: "encoding",
        arity: 3,
        handler: object_encoding,
    },
    Sub {
        name: "refcount",
        arity: 3,
        handler: object_refcount,
    },
    Sub {
        name: "idletime",
        arity: 3,
        handler: object_idletime,
    },
    Sub {
        name: "freq",
        arity: 3,
        handler: object_freq,
    },
    Sub {
        name: "help",
        arity: 2,
        handler: object_help,
    },
];

fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "object", OBJECT_SUBS)
}

/// Looks the key up without counting a hit or miss, as OBJECT does.
fn with_key<T>(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(&Entry) -> T) -> Option<T> {
    let now = ctx.now_ms;
    ctx.db().get(key, now).map(f)
}

fn object_encoding(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(with_key(ctx, &args[2], |e| encoding(&e.value))
        .map(Reply::bulk_str)
        .unwrap_or(Reply::Null))
}

fn object_refcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // Redis shares the integers 0..9999 (refcount INT_MAX); other values have one owner.
    let count = |e: &Entry| match &e.value {
        Value::Str(s)
            if is_redis_integer(s)
                && args::parse_i64_strict(s).is_some_and(|n| (0..10000).contains(&n)) =>
        {
            i32::MAX as i64
        }
        _ => 1,
    };
    Ok(with_key(ctx, &args[2], count)
        .map(Reply::Integer)
        .unwrap_or(Reply::Null))
}

/// forkless keeps no per-key access time (it would turn every read into a
/// write of the persistent map), so every key reports 0 seconds idle.
fn object_idletime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(with_key(ctx, &args[2], |_| 0)
        .map(Reply::Integer)
        .unwrap_or(Reply::Null))
}

fn object_freq(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if with_key(ctx, &args[2], |_| ()).is_none() {
        return Ok(Reply::Null);
    }
    Err(CommandError::err(
        "An LFU maxmemory policy is not selected, access frequency not tracked. Please note \
         that when switching between policies at runtime LRU and LFU data will take some time \
         to adjust.",
    ))
}

fn object_help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn string_encodings() {
        assert_eq!(encoding(&Value::Str(b("123"))), "int");
        assert_eq!(encoding(&Value::Str(b("0123"))), "embstr");
        assert_eq!(encoding(&Value::Str(b(&"x".repeat(44)))), "embstr");
        assert_eq!(encoding(&Value::Str(b(&"x".repeat(45)))), "raw");
    }

    #[test]
    fn collection_encodings_follow_the_thresholds() {
        let mut set: crate::keyspace::set::Set = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(encoding(&Value::Set(set.clone())), "intset");
        set.insert(b"x", &Default::default());
        assert_eq!(encoding(&Value::Set(set)), "hashtable");
        let hash: crate::keyspace::Hash = [(b("f"), b("v"))].into_iter().collect();
        assert_eq!(encoding(&Value::Hash(hash.clone())), "listpack");
        let long: crate::keyspace::Hash = [(b("f"), b(&"v".repeat(65)))].into_iter().collect();
        assert_eq!(encoding(&Value::Hash(long)), "hashtable");
    }

    #[test]
    fn usage_grows_with_content_and_sampling_extrapolates() {
        let small: imbl::Vector<Bytes> = (0..10).map(|i| b(&i.to_string())).collect();
        let big: imbl::Vector<Bytes> = (0..1000).map(|i| b(&i.to_string())).collect();
        assert!(value_usage(&Value::List(big.clone()), 0) > value_usage(&Value::List(small), 0));
        let all = value_usage(&Value::List(big.clone()), 0) as f64;
        let five = value_usage(&Value::List(big), 5) as f64;
        assert!((all / five - 1.0).abs() < 0.5);
        assert_eq!(alloc_size(0), 0);
        assert_eq!(alloc_size(1), 32);
        assert_eq!(alloc_size(100), 112);
    }
}
