//! MEMORY and OBJECT: what a key costs and how Redis would store it, and
//! what the server's memory holds.
//!
//! # MEMORY STATS and MEMORY DOCTOR
//!
//! Both read [`MemoryOverview`], as INFO memory does: the allocator's own
//! figures ([`crate::alloc`]), the process RSS, and Redis's derivations of
//! overhead, dataset and fragmentation from them. Nothing walks the keys.
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
//! - a list is its chunk buffers (elements packed with their lengths), each
//!   with a small header, plus a pointer per chunk when it has several;
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
use crate::alloc;
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::access::Tracking;
use crate::keyspace::{Entry, Keyspace, Value};
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

/// The hash stored beside each trie slot, with alignment.
const HAMT_HASH: usize = 8;

/// Bytes glibc malloc uses for a request of `n` bytes: the model's rounding,
/// checked by `tests/memory_usage.rs`; the server's allocator (jemalloc by
/// default) rounds to its own size classes.
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
        // Exact: a list's elements live in its chunk buffers.
        Value::List(l) => l.heap_bytes(alloc_size),
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
        Value::ZSet(z) => match z.flat() {
            Some(f) => alloc_size(16 + 32) + alloc_size(f.byte_len()),
            None => {
                // Map slots and order items are a thin member pointer and a
                // score each; leaves run about three quarters full.
                let item = std::mem::size_of::<(usize, f64)>();
                champ_bytes(z.len(), item)
                    + z.len() * item * 4 / 3
                    + sampled(z.iter(), z.len(), samples, |(_, m)| {
                        alloc_size(16 + m.len())
                    })
            }
        },
        Value::Stream(s) => stream_usage(s),
    }
}

/// Heap bytes of a stream: its header, every block (an `Arc`'d header and
/// buffer, one B-tree slot) and its groups' PEL and consumer entries.
fn stream_usage(s: &crate::keyspace::stream::Stream) -> usize {
    use crate::keyspace::stream::{Block, Consumer, Group, Nack, StreamId};
    let slot = std::mem::size_of::<(StreamId, std::sync::Arc<Block>)>();
    let blocks: usize = s
        .blocks()
        .map(|b| alloc_size(16 + std::mem::size_of::<Block>()) + alloc_size(b.capacity()) + slot)
        .sum();
    let groups: usize = s
        .groups()
        .iter()
        .map(|(name, g)| {
            let pel = g.pel.len() * (std::mem::size_of::<(StreamId, Nack)>() + 16);
            let consumers: usize = g
                .consumers
                .iter()
                .map(|(n, _)| alloc_size(n.len()) + std::mem::size_of::<(Bytes, Consumer)>())
                .sum();
            alloc_size(name.len()) + std::mem::size_of::<(Bytes, Group)>() + pel + consumers
        })
        .sum();
    alloc_size(16 + 128) + blocks + groups
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
            Ok(Reply::bulk_str(&alloc::report().unwrap_or_else(|| {
                "Stats not supported for the current allocator".into()
            })))
        },
    },
    Sub {
        name: "purge",
        arity: 2,
        handler: |_, _| {
            alloc::purge();
            Ok(Reply::ok())
        },
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
    // As Redis, sizing a key is not an access to it.
    let key = &args[2];
    match with_key(ctx, key, |entry| entry_usage(key, entry, samples)) {
        Some(bytes) => Ok(Reply::Integer(bytes as i64)),
        None => Ok(Reply::Null),
    }
}

fn float(v: f64) -> Reply {
    Reply::Double(v)
}

/// A database's key trie (`keyspace::champ`), per key, records excluded:
/// 16-byte slots plus nodes, measured with jemalloc's `stats.allocated` at
/// 10,000 to 1,000,000 keys (33–37 bytes).
const DB_TRIE_BYTES_PER_KEY: usize = 36;

/// One database's share of [`MemoryOverview::overhead`].
#[derive(Debug, Clone, Copy)]
pub struct DbOverhead {
    pub index: usize,
    /// The key trie's slots and nodes.
    pub main: u64,
    /// The expiry index.
    pub expires: u64,
}

/// The memory figures INFO memory, MEMORY STATS and MEMORY DOCTOR report, read
/// once from the allocator ([`crate::alloc`]) and the process, derived as
/// Redis derives them (`getMemoryOverheadData`): `used_memory` is the bytes
/// allocated; the overhead is the startup footprint plus the databases'
/// structure; the dataset is the rest.
#[derive(Debug, Clone)]
pub struct MemoryOverview {
    pub allocator: alloc::Stats,
    /// `used_memory`, as maxmemory counts it ([`alloc::used_memory`]).
    pub used: u64,
    pub peak: u64,
    pub startup: u64,
    pub rss: u64,
    pub dbs: Vec<DbOverhead>,
    pub keys: u64,
}

impl MemoryOverview {
    /// Reads the allocator's figures and estimates the databases' structure
    /// from their sizes (no walk over the keys).
    pub fn read(keyspace: &Keyspace) -> Self {
        let allocator = alloc::stats();
        let used = alloc::used_memory();
        let mut dbs = Vec::new();
        let mut keys = 0u64;
        for index in 0..keyspace.db_count() {
            let db = keyspace.db(index);
            if db.is_empty() {
                continue;
            }
            keys += db.len() as u64;
            dbs.push(DbOverhead {
                index,
                main: (db.len() * DB_TRIE_BYTES_PER_KEY) as u64,
                expires: (db.volatile_len() * std::mem::size_of::<(i64, Bytes)>() * 2) as u64,
            });
        }
        MemoryOverview {
            allocator,
            used,
            peak: alloc::peak().max(used),
            startup: alloc::startup(),
            rss: alloc::process_rss(),
            dbs,
            keys,
        }
    }

    /// `used_memory`.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// `used_memory_overhead`.
    pub fn overhead(&self) -> u64 {
        self.startup + self.dbs.iter().map(|d| d.main + d.expires).sum::<u64>()
    }

    /// `used_memory_dataset`.
    pub fn dataset(&self) -> u64 {
        self.used().saturating_sub(self.overhead())
    }

    /// Used memory above the startup footprint (at least 1, as in Redis).
    fn net_usage(&self) -> u64 {
        self.used().saturating_sub(self.startup).max(1)
    }

    /// `used_memory_dataset_perc`.
    pub fn dataset_perc(&self) -> f64 {
        self.dataset() as f64 * 100.0 / self.net_usage() as f64
    }

    /// `used_memory_peak_perc`.
    pub fn peak_perc(&self) -> f64 {
        alloc::ratio(self.used(), self.peak) * 100.0
    }

    /// `keys.bytes-per-key`.
    pub fn bytes_per_key(&self) -> u64 {
        self.net_usage().checked_div(self.keys).unwrap_or(0)
    }

    /// `allocator_frag_ratio` / `_bytes`: active over allocated.
    pub fn allocator_frag(&self) -> (f64, i64) {
        let a = &self.allocator;
        (
            alloc::ratio(a.active, a.allocated),
            alloc::diff(a.active, a.allocated),
        )
    }

    /// `allocator_rss_ratio` / `_bytes`: resident over active.
    pub fn allocator_rss(&self) -> (f64, i64) {
        let a = &self.allocator;
        (
            alloc::ratio(a.resident, a.active),
            alloc::diff(a.resident, a.active),
        )
    }

    /// `rss_overhead_ratio` / `_bytes`: process RSS over the allocator's.
    pub fn rss_overhead(&self) -> (f64, i64) {
        let r = self.allocator.resident;
        (alloc::ratio(self.rss, r), alloc::diff(self.rss, r))
    }

    /// `mem_fragmentation_ratio` / `_bytes`: process RSS over used memory.
    pub fn fragmentation(&self) -> (f64, i64) {
        (
            alloc::ratio(self.rss, self.used()),
            alloc::diff(self.rss, self.used()),
        )
    }
}

fn memory_stats(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    let m = MemoryOverview::read(&ctx.state.keyspace);
    let int = |n: u64| Reply::Integer(n as i64);
    let mut pairs = vec![
        (Reply::bulk_str("peak.allocated"), int(m.peak)),
        (Reply::bulk_str("total.allocated"), int(m.used())),
        (Reply::bulk_str("startup.allocated"), int(m.startup)),
        (Reply::bulk_str("replication.backlog"), Reply::Integer(0)),
        (Reply::bulk_str("clients.slaves"), Reply::Integer(0)),
        (Reply::bulk_str("clients.normal"), Reply::Integer(0)),
        (Reply::bulk_str("cluster.links"), Reply::Integer(0)),
        (Reply::bulk_str("aof.buffer"), Reply::Integer(0)),
        (Reply::bulk_str("lua.caches"), Reply::Integer(0)),
        (Reply::bulk_str("functions.caches"), Reply::Integer(0)),
    ];
    pairs.extend(m.dbs.iter().map(|d| {
        (
            Reply::bulk_str(&format!("db.{}", d.index)),
            Reply::Map(vec![
                (Reply::bulk_str("overhead.hashtable.main"), int(d.main)),
                (
                    Reply::bulk_str("overhead.hashtable.expires"),
                    int(d.expires),
                ),
            ]),
        )
    }));
    let (frag, frag_bytes) = m.allocator_frag();
    let (arss, arss_bytes) = m.allocator_rss();
    let (rss_extra, rss_extra_bytes) = m.rss_overhead();
    let (total_frag, total_frag_bytes) = m.fragmentation();
    pairs.extend([
        (Reply::bulk_str("overhead.total"), int(m.overhead())),
        (Reply::bulk_str("keys.count"), int(m.keys)),
        (
            Reply::bulk_str("keys.bytes-per-key"),
            int(m.bytes_per_key()),
        ),
        (Reply::bulk_str("dataset.bytes"), int(m.dataset())),
        (
            Reply::bulk_str("dataset.percentage"),
            float(m.dataset_perc()),
        ),
        (Reply::bulk_str("peak.percentage"), float(m.peak_perc())),
        (
            Reply::bulk_str("allocator.allocated"),
            int(m.allocator.allocated),
        ),
        (Reply::bulk_str("allocator.active"), int(m.allocator.active)),
        (
            Reply::bulk_str("allocator.resident"),
            int(m.allocator.resident),
        ),
        (
            Reply::bulk_str("allocator-fragmentation.ratio"),
            float(frag),
        ),
        (
            Reply::bulk_str("allocator-fragmentation.bytes"),
            Reply::Integer(frag_bytes),
        ),
        (Reply::bulk_str("allocator-rss.ratio"), float(arss)),
        (
            Reply::bulk_str("allocator-rss.bytes"),
            Reply::Integer(arss_bytes),
        ),
        (Reply::bulk_str("rss-overhead.ratio"), float(rss_extra)),
        (
            Reply::bulk_str("rss-overhead.bytes"),
            Reply::Integer(rss_extra_bytes),
        ),
        (Reply::bulk_str("fragmentation"), float(total_frag)),
        (
            Reply::bulk_str("fragmentation.bytes"),
            Reply::Integer(total_frag_bytes),
        ),
    ]);
    Ok(Reply::Map(pairs))
}

/// MEMORY DOCTOR: Redis's memory checks on the figures of [`MemoryOverview`]
/// (client buffers and script caches are not counted, so those checks never
/// fire).
fn memory_doctor(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Verbatim(doctor_report(&MemoryOverview::read(
        &ctx.state.keyspace,
    ))))
}

fn doctor_report(m: &MemoryOverview) -> String {
    const MB10: i64 = 10 << 20;
    if m.used() < 5 << 20 {
        return "Hi Sam, this instance is empty or is using very little memory, my issues \
                detector can't be used in these conditions. Please, leave for your mission on \
                Earth and fill it with some data. The new Sam and I will be back to our \
                programming as soon as I finished rebooting.\n"
            .into();
    }
    let (frag, frag_bytes) = m.fragmentation();
    let (afrag, afrag_bytes) = m.allocator_frag();
    let (arss, arss_bytes) = m.allocator_rss();
    let (extra, extra_bytes) = m.rss_overhead();
    let mut issues = Vec::new();
    if alloc::ratio(m.peak, m.used()) > 1.5 {
        issues.push(
            " * Peak memory: In the past this instance used more than 150% the memory that is \
             currently using. The allocator is normally not able to release memory after a \
             peak, so you can expect to see a big fragmentation ratio, however this is actually \
             harmless and is only due to the memory peak, and if the Redis instance Resident Set \
             Size (RSS) is currently bigger than expected, the memory will be used as soon as \
             you fill the Redis instance with more data. If the memory peak was only occasional \
             and you want to try to reclaim memory, please try the MEMORY PURGE command, \
             otherwise the only other option is to shutdown and restart the instance.\n\n"
                .to_string(),
        );
    }
    if frag > 1.4 && frag_bytes > MB10 {
        issues.push(format!(
            " * High total RSS: This instance has a memory fragmentation and RSS overhead \
             greater than 1.4 (this means that the Resident Set Size of the Redis process is \
             much larger than the sum of the logical allocations Redis performed). This problem \
             is usually due either to a large peak memory (check if there is a peak memory entry \
             above in the report) or may result from a workload that causes the allocator to \
             fragment memory a lot. If the problem is a large peak memory, then there is no \
             issue. Otherwise, make sure you are using the Jemalloc allocator and not the \
             default libc malloc. Note: The currently used allocator is \"{}\".\n\n",
            alloc::name()
        ));
    }
    if afrag > 1.1 && afrag_bytes > MB10 {
        issues.push(
            " * High allocator fragmentation: This instance has an allocator external \
             fragmentation greater than 1.1. This problem is usually due either to a large peak \
             memory (check if there is a peak memory entry above in the report) or may result \
             from a workload that causes the allocator to fragment memory a lot. You can try \
             enabling 'activedefrag' config option.\n\n"
                .to_string(),
        );
    }
    if arss > 1.1 && arss_bytes > MB10 {
        issues.push(
            " * High allocator RSS overhead: This instance has an RSS memory overhead is greater \
             than 1.1 (this means that the Resident Set Size of the allocator is much larger \
             than the sum what the allocator actually holds). This problem is usually due to a \
             large peak memory (check if there is a peak memory entry above in the report), you \
             can try the MEMORY PURGE command to reclaim it.\n\n"
                .to_string(),
        );
    }
    if extra > 1.1 && extra_bytes > MB10 {
        issues.push(
            " * High process RSS overhead: This instance has non-allocator RSS memory overhead \
             is greater than 1.1 (this means that the Resident Set Size of the Redis process is \
             much larger than the RSS the allocator holds). This problem may be due to Lua \
             scripts or Modules.\n\n"
                .to_string(),
        );
    }
    if issues.is_empty() {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for \
                what occurs on this base.\n"
            .into();
    }
    let mut text =
        "Sam, I detected a few issues in this Redis instance memory implants:\n\n".to_string();
    for issue in issues {
        text.push_str(&issue);
    }
    text.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    text
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
        Value::ZSet(z) => z.encoding_name(),
        Value::Stream(_) => "stream",
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

/// Looks the key up without counting a hit, a miss or an access, as OBJECT
/// does.
fn with_key<T>(ctx: &mut Ctx<'_>, key: &[u8], f: impl FnOnce(&Entry) -> T) -> Option<T> {
    let now = ctx.now_ms;
    ctx.db()
        .record_untouched(key, now)
        .map(|r| f(&r.to_entry()))
}

/// The key's access word ([`Tracking`]), looked up as [`with_key`] does.
fn access_word(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<u32> {
    let now = ctx.now_ms;
    ctx.db()
        .record_untouched(key, now)
        .map(|r| r.access().get())
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

/// Seconds since the key's last access. Under an LFU policy the word holds
/// a frequency instead, and Redis refuses, as here.
fn object_idletime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let Some(word) = access_word(ctx, &args[2]) else {
        return Ok(Reply::Null);
    };
    if Tracking::current().lfu {
        return Err(CommandError::err(
            "An LFU maxmemory policy is selected, idle time not tracked. Please note that \
             when switching between policies at runtime LRU and LFU data will take some time \
             to adjust.",
        ));
    }
    Ok(Reply::Integer(
        (Tracking::idle_ms(word, ctx.now_ms) / 1000) as i64,
    ))
}

/// The key's logarithmic access counter, decayed to now (LFU policies only).
fn object_freq(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let Some(word) = access_word(ctx, &args[2]) else {
        return Ok(Reply::Null);
    };
    let tracking = Tracking::current();
    if tracking.lfu {
        return Ok(Reply::Integer(tracking.decayed(word, ctx.now_ms) as i64));
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
        let small: crate::keyspace::List = (0..10).map(|i| i.to_string()).collect();
        let big: crate::keyspace::List = (0..1000).map(|i| i.to_string()).collect();
        assert!(value_usage(&Value::List(big), 0) > value_usage(&Value::List(small), 0));
        let table: crate::keyspace::Hash = (0..1000)
            .map(|i| (b(&format!("field:{i}")), b(&i.to_string())))
            .collect();
        assert_eq!(encoding(&Value::Hash(table.clone())), "hashtable");
        let all = value_usage(&Value::Hash(table.clone()), 0) as f64;
        let five = value_usage(&Value::Hash(table), 5) as f64;
        assert!((all / five - 1.0).abs() < 0.5);
        assert_eq!(alloc_size(0), 0);
        assert_eq!(alloc_size(1), 32);
        assert_eq!(alloc_size(100), 112);
    }
}
