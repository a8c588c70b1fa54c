//! The keyspace: every database, every value and the expiry bookkeeping, held in
//! persistent (structurally shared) data structures.
//!
//! # The snapshot invariant
//!
//! **A clone of [`Keyspace`] is an O(1), immutable, point-in-time copy of the whole
//! data set. The live keyspace is uniquely owned by the server state, so a write
//! changes a node in place while only the live keyspace holds it (reference
//! count 1), and copies a node that a snapshot still shares (path copying: only
//! the nodes from the root to the change).**
//!
//! # Representation
//!
//! - Each database is a [`champ::Champ`] of [`Record`]s: a hash trie of exactly
//!   sized nodes (one allocation each, bitmap and slots together) over a seeded
//!   64-bit hash, with per-slot item counts for O(depth) random picks and a
//!   hash-order cursor for SCAN.
//! - A [`Record`] is one key. Small ones are *packed*: kind, key, expiry and
//!   value bytes in a single allocation (strings up to
//!   [`record::PACKED_STR_MAX`] bytes, listpack hashes, intsets). Larger values
//!   are *boxed* behind their own pointer. A write to a packed record unpacks it
//!   and [`Db::settle`], run after every command, packs it again.
//! - Values are persistent too: lists a [`list::List`] (packed chunks in a
//!   persistent sequence), hashes a
//!   [`hash::Hash`] (a listpack, then a trie), sets a [`set::Set`] (an intset,
//!   then a trie), sorted sets a [`zset::ZSet`] (a flat buffer, then a trie
//!   beside a counted B+tree), streams a [`stream::Stream`] (entry blocks
//!   in a persistent B-tree, groups in persistent maps), strings immutable
//!   `Bytes`. So a clone shares the values.
//!
//! Cloning bumps one reference count per database map (16 by default),
//! whatever the number of keys. The clone is taken while the state lock is held,
//! between two whole commands, so it always shows a state that a sequence of
//! whole commands produced. Nothing in a clone can change afterwards; a
//! background thread may stream it to disk while writers go on.

pub mod access;
pub mod bits;
pub mod champ;
pub mod encodings;
pub mod expiry;
pub mod hash;
pub mod hll;
pub mod intset;
pub mod lazyfree;
pub mod list;
pub mod listpack;
pub mod pinned;
pub mod record;
pub mod scan;
pub mod set;
pub mod stream;
pub mod zset;

use bytes::Bytes;
use imbl::OrdSet;

use champ::Champ;
pub use hash::Hash;
pub use list::List;
pub use record::Record;
use set::Set;
use stream::Stream;
use zset::ZSet;

use crate::errors::CommandError;

/// Keys, strings, list elements, hash fields and set members are binary-safe byte strings.
pub type Key = Bytes;

/// A stored value. Each variant is cheap to clone (reference counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(Bytes),
    List(List),
    Hash(Hash),
    Set(Set),
    ZSet(ZSet),
    Stream(Stream),
}

impl Value {
    /// The name `TYPE` replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// Collections are deleted when they become empty, as in Redis.
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
            // An empty stream stays: it keeps its last id and its groups.
            Value::Stream(_) => false,
        }
    }

    /// Whether both are the very same value object (not merely equal):
    /// persistent values copy their root on any real change.
    pub fn same_identity(&self, other: &Value) -> bool {
        fn same_bytes(x: &Bytes, y: &Bytes) -> bool {
            x.as_ptr() == y.as_ptr() && x.len() == y.len()
        }
        match (self, other) {
            (Value::Str(x), Value::Str(y)) => same_bytes(x, y),
            (Value::List(x), Value::List(y)) => x.ptr_eq(y),
            (Value::Hash(x), Value::Hash(y)) => x.ptr_eq(y),
            (Value::Set(x), Value::Set(y)) => x.ptr_eq(y),
            (Value::ZSet(x), Value::ZSet(y)) => x.ptr_eq(y),
            (Value::Stream(x), Value::Stream(y)) => x.ptr_eq(y),
            _ => false,
        }
    }

    pub fn as_str(&self) -> Result<&Bytes, CommandError> {
        match self {
            Value::Str(s) => Ok(s),
            _ => Err(CommandError::WrongType),
        }
    }

    pub fn as_list(&self) -> Result<&List, CommandError> {
        match self {
            Value::List(l) => Ok(l),
            _ => Err(CommandError::WrongType),
        }
    }

    pub fn as_list_mut(&mut self) -> Result<&mut List, CommandError> {
        match self {
            Value::List(l) => Ok(l),
            _ => Err(CommandError::WrongType),
        }
    }

    pub fn as_hash(&self) -> Result<&Hash, CommandError> {
        match self {
            Value::Hash(h) => Ok(h),
            _ => Err(CommandError::WrongType),
        }
    }

    pub fn as_hash_mut(&mut self) -> Result<&mut Hash, CommandError> {
        match self {
            Value::Hash(h) => Ok(h),
            _ => Err(CommandError::WrongType),
        }
    }

    pub fn as_set(&self) -> Result<&Set, CommandError> {
        match self {
            Value::Set(s) => Ok(s),
            _ => Err(CommandError::WrongType),
        }
    }

    pub fn as_set_mut(&mut self) -> Result<&mut Set, CommandError> {
        match self {
            Value::Set(s) => Ok(s),
            _ => Err(CommandError::WrongType),
        }
    }

    pub fn as_zset(&self) -> Result<&ZSet, CommandError> {
        match self {
            Value::ZSet(z) => Ok(z),
            _ => Err(CommandError::WrongType),
        }
    }

    pub fn as_zset_mut(&mut self) -> Result<&mut ZSet, CommandError> {
        match self {
            Value::ZSet(z) => Ok(z),
            _ => Err(CommandError::WrongType),
        }
    }

    pub fn as_stream(&self) -> Result<&Stream, CommandError> {
        match self {
            Value::Stream(s) => Ok(s),
            _ => Err(CommandError::WrongType),
        }
    }

    pub fn as_stream_mut(&mut self) -> Result<&mut Stream, CommandError> {
        match self {
            Value::Stream(s) => Ok(s),
            _ => Err(CommandError::WrongType),
        }
    }
}

/// A value and its absolute expiry time (Unix milliseconds), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Value,
    pub expire_at: Option<i64>,
}

/// One numbered database.
///
/// `expiry` is an ordered index of `(expire_at, key)` for exactly the keys whose
/// record has an expiry; the active expiry cycle pops from its front, so
/// expired keys are reclaimed in deadline order without random sampling.
#[derive(Debug, Clone, Default)]
pub struct Db {
    entries: Champ<Record>,
    expiry: OrdSet<(i64, Key)>,
    /// Keys removed because their time ran out (lazily or actively).
    expired_count: u64,
    /// Keys expired since the last [`Db::take_expired`], for keyspace
    /// notifications; emptied after every command and every expiry slice.
    expired_log: Vec<Key>,
    /// The last packed record [`Db::get`] decoded, so it can hand out a reference.
    view: Option<Entry>,
    /// The time of the latest lookup, for stamping records that inserts
    /// without a clock of their own create.
    clock_ms: i64,
    /// Draws for the LFU counter's probabilistic increment (xorshift).
    rng: u64,
    /// Keys whose record a write unpacked, or left boxed in a form that
    /// packs when small (an intset just made or shrunk); [`Db::settle`]
    /// packs them (again) if they fit.
    unpacked: Vec<Key>,
    /// What a lookup does with a key whose time ran out (replicas).
    expiry_mode: ExpiryMode,
}

/// The record of the string `value` under `key`: packed with the key when
/// short, else boxed around a copy (never the caller's buffer).
fn str_record(key: &[u8], value: &[u8], expire_at: Option<i64>) -> Record {
    if value.len() <= record::PACKED_STR_MAX {
        Record::packed_str(key, value, expire_at)
    } else {
        Record::new(key, Value::Str(Bytes::copy_from_slice(value)), expire_at)
    }
}

/// What lookups do with keys whose time ran out. A replica never deletes
/// them itself (its primary sends the DEL), as Redis 7: its clients do not
/// see them, its primary's link does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExpiryMode {
    /// Delete them (lazy expiry).
    #[default]
    Delete,
    /// Report them absent, keep them.
    Hide,
    /// Treat them as live.
    Keep,
}

impl Db {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of keys with a TTL (`expires=` in INFO keyspace).
    pub fn volatile_len(&self) -> usize {
        self.expiry.len()
    }

    pub fn expired_count(&self) -> u64 {
        self.expired_count
    }

    /// Reads a key, first deleting it if its time ran out (lazy expiry).
    pub fn get(&mut self, key: &[u8], now_ms: i64) -> Option<&Entry> {
        let hash = self.unexpired_hash(key, now_ms)?;
        let record = self.entries.get_hashed(hash, key)?;
        touch(&mut self.rng, record, now_ms);
        match record.boxed_entry() {
            Some(entry) => Some(entry),
            None => Some(self.view.insert(record.to_entry())),
        }
    }

    /// The stored record of a live key, without decoding it.
    pub fn record(&mut self, key: &[u8], now_ms: i64) -> Option<&Record> {
        let hash = self.unexpired_hash(key, now_ms)?;
        let record = self.entries.get_hashed(hash, key)?;
        touch(&mut self.rng, record, now_ms);
        Some(record)
    }

    /// The hash to look `key` up with, after deleting the key if its time
    /// ran out (`None` then, or when [`Db::live_hash`] found it absent). While
    /// no key of this database has a TTL nothing can have run out, and the
    /// caller's own lookup is the only walk down the map.
    #[inline]
    fn unexpired_hash(&mut self, key: &[u8], now_ms: i64) -> Option<u64> {
        if self.expiry.is_empty() {
            self.clock_ms = now_ms;
            return Some(<Record as champ::MapItem>::hash_of(key));
        }
        self.live_hash(key, now_ms)
    }

    /// The record of a live key, as [`Db::record`] but without counting an
    /// access: the lookups Redis makes with `LOOKUP_NOTOUCH` (TYPE, EXISTS,
    /// TTL and friends, OBJECT).
    pub fn record_untouched(&mut self, key: &[u8], now_ms: i64) -> Option<&Record> {
        let hash = self.unexpired_hash(key, now_ms)?;
        self.entries.get_hashed(hash, key)
    }

    /// Reads a key mutably, first deleting it if its time ran out. A packed
    /// record is unpacked for the write and packed again by [`Db::settle`].
    pub fn get_mut(&mut self, key: &[u8], now_ms: i64) -> Option<&mut Entry> {
        self.entry_for_write(key, now_ms, true)
    }

    fn entry_for_write(&mut self, key: &[u8], now_ms: i64, touched: bool) -> Option<&mut Entry> {
        let hash = self.unexpired_hash(key, now_ms)?;
        let record = self.entries.get_mut_hashed(hash, key)?;
        Some(Self::open_for_write(
            record,
            key,
            now_ms,
            touched,
            &mut self.rng,
            &mut self.unpacked,
        ))
    }

    /// The entry of `record` for writing; a packed record is unpacked and
    /// queued for [`Db::settle`].
    #[inline]
    fn open_for_write<'r>(
        record: &'r mut Record,
        key: &[u8],
        now_ms: i64,
        touched: bool,
        rng: &mut u64,
        unpacked: &mut Vec<Key>,
    ) -> &'r mut Entry {
        if touched {
            touch(rng, record, now_ms);
        }
        let (entry, repack) = record.entry_mut();
        if repack {
            unpacked.push(Bytes::copy_from_slice(key));
        }
        entry
    }

    /// Looks a key up without expiring it: for readers of a snapshot clone, which
    /// must not change. Expired entries are reported as absent.
    pub fn peek(&self, key: &[u8], now_ms: i64) -> Option<Entry> {
        self.peek_record(key, now_ms).map(Record::to_entry)
    }

    /// The live record under `key`, without expiring anything.
    pub fn peek_record(&self, key: &[u8], now_ms: i64) -> Option<&Record> {
        let keep = self.expiry_mode == ExpiryMode::Keep;
        self.entries
            .get(key)
            .filter(|r| keep || !r.is_expired(now_ms))
    }

    /// Warms the cache for the lookups of `keys` that are about to run (a
    /// pipelined batch); see [`Champ::prefetch`].
    pub fn prefetch<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) {
        // A batch of 16 MSETs of 10 keys each: 160 paths, a few dozen KB
        // of cache lines.
        let mut hashes = [0u64; 256];
        let mut n = 0;
        let mut previous: Option<&[u8]> = None;
        for key in keys.take(hashes.len()) {
            // A pipeline on one key (HSET, SADD, SPOP ... on one collection)
            // warms one path: its repeats cost a comparison, not a hash.
            if previous == Some(key) {
                continue;
            }
            previous = Some(key);
            hashes[n] = <Record as champ::MapItem>::hash_of(key);
            n += 1;
        }
        if n > 1 {
            self.entries.prefetch(&hashes[..n]);
        }
    }

    /// Warms the cache for the member lookups of a pipelined batch: `pairs`
    /// are the (key, second argument) of its commands. When the first key
    /// holds a hash or set in its table form, the paths to the second
    /// arguments of the commands on that key are loaded in parallel, as
    /// [`Db::prefetch`] does for keys: SADD, HSET, SISMEMBER, HGET ... on one
    /// large collection then wait for their cache misses together instead of
    /// one after another. A second argument that is no member (a command of
    /// another kind on that key) costs one useless prefetch.
    pub fn prefetch_members<'k>(&self, mut pairs: impl Iterator<Item = (&'k [u8], &'k [u8])>) {
        let Some((key, first)) = pairs.next() else {
            return;
        };
        let Some(entry) = self.entries.get(key).and_then(Record::boxed_entry) else {
            return;
        };
        let members = std::iter::once(first)
            .chain(pairs.filter(|(k, _)| *k == key).map(|(_, member)| member));
        match &entry.value {
            Value::Set(s) => s.prefetch(members),
            Value::Hash(h) => h.prefetch(members),
            Value::ZSet(z) => z.prefetch(members),
            _ => {}
        }
    }

    /// Warms the cache for a pipelined batch's pops of the sorted set under
    /// `key`: `low` members from its low end, `high` from its high end
    /// (see [`ZSet::prefetch_ends`]).
    pub fn prefetch_pops(&self, key: &[u8], low: usize, high: usize) {
        if let Some(Value::ZSet(z)) = self
            .entries
            .get(key)
            .and_then(Record::boxed_entry)
            .map(|e| &e.value)
        {
            z.prefetch_ends(low, high);
        }
    }

    /// The record under `key` whether or not its time ran out.
    pub fn stored(&self, key: &[u8]) -> Option<&Record> {
        self.entries.get(key)
    }

    pub fn contains(&mut self, key: &[u8], now_ms: i64) -> bool {
        self.record(key, now_ms).is_some()
    }

    /// Returns the entry for `key`, creating it with `make()` (and no TTL) when absent.
    ///
    /// Two walks down the map: one that finds (or expires) the key, one that
    /// opens it for writing or inserts it.
    pub fn get_or_insert_with(
        &mut self,
        key: &[u8],
        now_ms: i64,
        make: impl FnOnce() -> Value,
    ) -> &mut Entry {
        let live = self.unexpired_hash(key, now_ms);
        let present = live.is_some_and(|hash| self.entries.get_hashed(hash, key).is_some());
        if !present {
            // A new key's first access is its creation, not this lookup.
            let record = Record::new(key, make(), None);
            record
                .access()
                .set(access::Tracking::current().initial(now_ms));
            self.entries.insert(record);
        }
        let hash = live.unwrap_or_else(|| <Record as champ::MapItem>::hash_of(key));
        let record = self
            .entries
            .get_mut_hashed(hash, key)
            .expect("live or inserted above");
        Self::open_for_write(
            record,
            key,
            now_ms,
            present,
            &mut self.rng,
            &mut self.unpacked,
        )
    }

    /// INCRBY: adds `by` to the integer string under `key` (0 when absent,
    /// then created without a TTL) and returns the sum, keeping the TTL. One
    /// walk down the map for a key without a TTL in a database where no key
    /// has one, and the record is rewritten in place ([`Record::add_to_int`]).
    pub fn incr_by(&mut self, key: &[u8], by: i64, now_ms: i64) -> Result<i64, CommandError> {
        if let Some(hash) = self.unexpired_hash(key, now_ms) {
            if let Some(record) = self.entries.get_mut_hashed(hash, key) {
                touch(&mut self.rng, record, now_ms);
                return record.add_to_int(by);
            }
        }
        let mut record = Record::packed_str(key, b"0", None);
        record
            .access()
            .set(access::Tracking::current().initial(now_ms));
        let sum = record.add_to_int(by)?;
        self.entries.insert(record);
        Ok(sum)
    }

    /// Stores `value` under `key` with the given expiry, replacing any old
    /// entry and TTL. Returns whether a key (live or expired) was replaced.
    pub fn insert(&mut self, key: Key, value: Value, expire_at: Option<i64>) -> bool {
        self.replace(key, value, expire_at).is_some()
    }

    /// Stores `value` under `key` in one walk down the map, as a write that
    /// first looked the key up would: an old entry whose time ran out counts
    /// as expired (statistics and the `expired` notification) before the new
    /// one replaces it. Returns whether a live key was replaced.
    pub fn insert_live(
        &mut self,
        key: Key,
        value: Value,
        expire_at: Option<i64>,
        now_ms: i64,
    ) -> bool {
        let Some(old) = self.replace(key.clone(), value, expire_at) else {
            return false;
        };
        if old.is_expired(now_ms) {
            self.expired_log.push(key);
            self.expired_count += 1;
            return false;
        }
        true
    }

    /// SET's store: [`Db::insert_live`] with the record built straight from
    /// the key's and value's bytes (a short value packed with its key, a
    /// long one copied into a block of its own), so no argument is cloned
    /// or kept alive by the keyspace.
    pub fn insert_str_live(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at: Option<i64>,
        now_ms: i64,
    ) -> bool {
        let Some(old) = self.put_str(key, value, expire_at, now_ms) else {
            return false;
        };
        if old.is_expired(now_ms) {
            self.expired_log.push(Bytes::copy_from_slice(key));
            self.expired_count += 1;
            return false;
        }
        true
    }

    /// Puts a new record in place, keeping the expiry index in step; returns the old one.
    fn replace(&mut self, key: Key, value: Value, expire_at: Option<i64>) -> Option<Record> {
        let record = Record::new(&key, value, expire_at);
        self.replace_record(&key, record, expire_at)
    }

    /// Stores the string `value` under `key` with the given expiry, replacing
    /// any old entry and TTL, as [`Db::insert`] (MSET): the record is built
    /// straight from the argument's bytes. `now_ms` stamps its access time.
    pub fn insert_str(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at: Option<i64>,
        now_ms: i64,
    ) -> bool {
        self.put_str(key, value, expire_at, now_ms).is_some()
    }

    /// Puts the string record of `key` and `value` in place; returns the old record.
    fn put_str(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at: Option<i64>,
        now_ms: i64,
    ) -> Option<Record> {
        self.clock_ms = now_ms;
        let record = str_record(key, value, expire_at);
        self.replace_record(key, record, expire_at)
    }

    /// Puts `record` (of `key`, expiring at `expire_at`) in place, keeping the
    /// expiry index in step; returns the old one.
    fn replace_record(
        &mut self,
        key: &[u8],
        record: Record,
        expire_at: Option<i64>,
    ) -> Option<Record> {
        let tracking = access::Tracking::current();
        record.access().set(tracking.initial(self.clock()));
        let old = self.entries.insert(record);
        if let Some(old) = &old {
            old.release_shared();
        }
        if tracking.lfu {
            if let Some(old) = &old {
                self.keep_frequency(key, old, tracking);
            }
        }
        let old_t = old.as_ref().and_then(Record::expire_at);
        if old_t != expire_at {
            let key = Bytes::copy_from_slice(key);
            if let Some(t) = old_t {
                self.expiry.remove(&(t, key.clone()));
            }
            if let Some(t) = expire_at {
                self.expiry.insert((t, key));
            }
        }
        old
    }

    /// Under LFU an overwritten key keeps its access counter, counting the
    /// write as an access (as Redis's lookup for writing then `dbOverwrite`).
    fn keep_frequency(&mut self, key: &[u8], old: &Record, tracking: access::Tracking) {
        let now = self.clock();
        let rng = &mut self.rng;
        tracking.touch(old.access(), now, || next_random(rng));
        if let Some(r) = self.entries.get(key) {
            r.access().set(old.access().get());
        }
    }

    /// The latest lookup's time, or the wall clock before any lookup.
    fn clock(&self) -> i64 {
        if self.clock_ms > 0 {
            self.clock_ms
        } else {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        }
    }

    /// Stores `value` under `key`, keeping the TTL of a live old entry (SET KEEPTTL).
    pub fn insert_keep_ttl(&mut self, key: Key, value: Value, now_ms: i64) {
        let ttl = self.record(&key, now_ms).and_then(Record::expire_at);
        self.insert(key, value, ttl);
    }

    /// Deletes a key, returning its entry (expired or not).
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.remove_record(key).map(Record::into_entry)
    }

    /// Sets a key's access word (RESTORE's IDLETIME and FREQ).
    pub fn set_access(&mut self, key: &[u8], word: u32) {
        if let Some(r) = self.entries.get(key) {
            r.access().set(word);
        }
    }

    /// Deletes a key (expired or not) and hands back its record undecoded,
    /// for eviction to size and free.
    pub fn take(&mut self, key: &[u8]) -> Option<Record> {
        self.remove_record(key)
    }

    /// Deletes a key (expired or not); returns whether it existed.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        self.remove_record(key).is_some()
    }

    /// One step of a sampling descent spread over calls
    /// ([`Champ::sample_step`]); `true` when it ended and emitted.
    pub fn sample_step<'a>(
        &'a self,
        descent: &mut champ::Descent,
        count: usize,
        emit: impl FnMut(&'a Record, champ::Path),
    ) -> bool {
        self.entries.sample_step(descent, count, 0, emit)
    }

    /// Where `key` sits in the map, as [`Db::sample`] reports it.
    pub fn path_of(&self, key: &[u8]) -> Option<champ::Path> {
        self.entries.path_of(key)
    }

    /// Deletes the record a sample found at `path` (see [`Db::sample`]) if
    /// it is still there and `accept` takes it, for eviction: the key is
    /// neither hashed nor compared.
    pub fn take_sampled(
        &mut self,
        path: champ::Path,
        accept: impl FnOnce(&Record) -> bool,
    ) -> Option<Record> {
        let old = self.entries.remove_at_path(path, accept)?;
        self.forget(&old);
        Some(old)
    }

    fn remove_record(&mut self, key: &[u8]) -> Option<Record> {
        let old = self.entries.remove(key)?;
        self.forget(&old);
        Some(old)
    }

    /// What a record leaving the map leaves behind: its deadline in the
    /// expiry index, and what a snapshot still holds of it.
    fn forget(&mut self, old: &Record) {
        old.release_shared();
        if let Some(t) = old.expire_at() {
            self.expiry.remove(&(t, Bytes::copy_from_slice(old.key())));
        }
    }

    /// Deletes `key` if it holds an empty collection; called after every removal
    /// from a list, hash or set. Returns whether it was deleted.
    pub fn remove_if_empty(&mut self, key: &[u8]) -> bool {
        let empty = self
            .entries
            .get(key)
            .and_then(Record::boxed_entry)
            .is_some_and(|e| e.value.is_empty_collection());
        if empty {
            self.remove_record(key);
        }
        empty
    }

    /// A database holding exactly `records`, built in one pass without copying
    /// any node (the snapshot loader): the map is made bottom-up from the
    /// records sorted by hash (a linear pass when they come in the map's own
    /// order), the expiry index from their deadlines. Returns a record whose
    /// key appears twice instead.
    pub fn from_records(records: Vec<Record>) -> Result<Db, Record> {
        let mut db = Db::default();
        let tracking = access::Tracking::current();
        let initial = tracking.initial(db.clock());
        let mut deadlines = Vec::new();
        for r in &records {
            r.access().set(initial);
            if let Some(t) = r.expire_at() {
                deadlines.push((t, Bytes::copy_from_slice(r.key())));
            }
        }
        db.entries = Champ::build(records)?;
        db.expiry = deadlines.into_iter().collect();
        Ok(db)
    }

    /// Sets or clears the expiry of an existing key. Returns false if the key is absent.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<i64>) -> bool {
        let Some(record) = self.entries.get_mut(key) else {
            return false;
        };
        let old = record.expire_at();
        if old == expire_at {
            return true;
        }
        record.set_expire(expire_at);
        let k = Bytes::copy_from_slice(key);
        if let Some(t) = old {
            self.expiry.remove(&(t, k.clone()));
        }
        if let Some(t) = expire_at {
            self.expiry.insert((t, k));
        }
        true
    }

    /// Packs again the records that writes unpacked; run after every command,
    /// so the keyspace between commands holds every small value packed.
    #[inline]
    pub fn settle(&mut self) {
        self.view = None;
        if self.unpacked.is_empty() {
            return;
        }
        for key in std::mem::take(&mut self.unpacked) {
            if let Some(record) = self.entries.get_mut(&key) {
                record.repack();
            }
        }
    }

    pub fn clear(&mut self) {
        self.entries = Champ::new();
        self.expiry = OrdSet::new();
        self.view = None;
        self.unpacked.clear();
    }

    /// Every entry, expired or not, in the map's (hash) order, decoded.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Entry)> {
        self.entries.iter().map(|r| (r.key(), r.to_entry()))
    }

    /// Every record, expired or not, in hash order.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.entries.iter()
    }

    /// What changed in this database since `base` (an earlier version of it,
    /// usually the one the last save wrote): keys set or rewritten, and keys
    /// gone. Subtrees the two versions share are skipped unread, so the cost
    /// follows the writes in between, not the size of the database.
    pub fn diff<'a>(&'a self, base: &'a Db, emit: impl FnMut(champ::Change<'a, Record>)) {
        self.entries.diff(&base.entries, Record::same, emit);
    }

    /// Stores a record as it is (one shared with another version of the
    /// keyspace, or one a load built), keeping the expiry index in step.
    pub fn insert_record(&mut self, record: Record) {
        if let Some(t) = record.expire_at() {
            self.expiry
                .insert((t, Bytes::copy_from_slice(record.key())));
        }
        if let Some(old) = self.entries.insert(record) {
            old.release_shared();
            if let Some(t) = old.expire_at() {
                let key = Bytes::copy_from_slice(old.key());
                // The new record may carry the same deadline: keep its entry.
                if self.entries.get(&key).and_then(Record::expire_at) != Some(t) {
                    self.expiry.remove(&(t, key));
                }
            }
        }
    }

    /// The key with the nearest deadline, and the deadline.
    pub fn nearest_deadline(&self) -> Option<(i64, Key)> {
        self.expiry.get_min().cloned()
    }

    /// A key with a TTL, drawn from `r`: the first deadline at or after a
    /// point drawn between the nearest and the farthest deadline, in
    /// O(log n). Keys after a long gap between deadlines are likelier picks;
    /// eviction only needs a spread of them.
    pub fn random_volatile_key(&self, r: u64) -> Option<Key> {
        let (lo, _) = self.expiry.get_min()?;
        let (hi, _) = self.expiry.get_max()?;
        let span = (*hi as i128 - *lo as i128 + 1) as u128;
        let t = (*lo as i128 + (r as u128 % span) as i128) as i64;
        self.expiry
            .range((t, Key::new())..)
            .next()
            .or_else(|| self.expiry.get_min())
            .map(|(_, k)| k.clone())
    }

    /// The key of the `index`-th record in hash order, in O(depth): random picks.
    pub fn nth_key(&self, index: usize) -> Option<&[u8]> {
        self.entries.nth(index).map(Record::key)
    }

    /// Up to `count` neighbouring records picked by `r`, each with where it
    /// sits, for eviction's sampling ([`Champ::sample`]).
    pub fn sample<'a>(&'a self, r: u64, count: usize, emit: impl FnMut(&'a Record, champ::Path)) {
        self.entries.sample(r, count, emit)
    }

    /// SCAN over the map: up to about `count` records from hash `cursor` on.
    pub fn scan(&self, cursor: u64, count: usize, emit: impl FnMut(&Record)) -> u64 {
        self.entries.scan(cursor, count, emit)
    }

    /// Deletes `key` if its time ran out (lazy expiry); returns its hash when
    /// it is present and live, so the caller's own lookup hashes no more.
    #[inline]
    fn live_hash(&mut self, key: &[u8], now_ms: i64) -> Option<u64> {
        self.clock_ms = now_ms;
        let hash = <Record as champ::MapItem>::hash_of(key);
        if self.entries.get_hashed(hash, key)?.is_expired(now_ms) {
            match self.expiry_mode {
                ExpiryMode::Delete => {}
                ExpiryMode::Hide => return None,
                ExpiryMode::Keep => return Some(hash),
            }
            self.expired_log.push(Bytes::copy_from_slice(key));
            self.remove_record(key);
            self.expired_count += 1;
            return None;
        }
        Some(hash)
    }

    /// Deletes up to `limit` keys whose time ran out, earliest deadline first.
    /// Returns how many were deleted and whether more are due.
    pub fn expire_due(&mut self, now_ms: i64, limit: usize) -> (usize, bool) {
        let mut removed = 0;
        while removed < limit {
            let Some((t, key)) = self.expiry.get_min().cloned() else {
                return (removed, false);
            };
            if t > now_ms {
                return (removed, false);
            }
            self.remove_record(&key);
            self.expired_log.push(key);
            self.expired_count += 1;
            removed += 1;
        }
        let more = self.expiry.get_min().is_some_and(|(t, _)| *t <= now_ms);
        (removed, more)
    }

    /// Checks the map's structure and the expiry index against the records;
    /// for tests and debugging.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.entries.check()?;
        let with_ttl = self
            .entries
            .iter()
            .filter(|r| r.expire_at().is_some())
            .count();
        if with_ttl != self.expiry.len() {
            return Err(format!(
                "{} keys with TTL but {} in the index",
                with_ttl,
                self.expiry.len()
            ));
        }
        for (t, k) in self.expiry.iter() {
            match self.entries.get(k) {
                Some(r) if r.expire_at() == Some(*t) => {}
                _ => return Err(format!("index entry ({t}, {k:?}) has no matching key")),
            }
        }
        Ok(())
    }
}

/// Counts an access to `record` under the current tracking.
#[inline]
fn touch(rng: &mut u64, record: &Record, now_ms: i64) {
    access::Tracking::current().touch(record.access(), now_ms, || next_random(rng));
}

/// A uniform draw in [0, 1) from a xorshift64 state.
fn next_random(state: &mut u64) -> f64 {
    let mut x = if *state == 0 {
        0x9e37_79b9_7f4a_7c15
    } else {
        *state
    };
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// All databases. See the module docs for the snapshot invariant.
#[derive(Debug, Clone)]
pub struct Keyspace {
    dbs: Vec<Db>,
    /// The function libraries' code (Redis 7 functions are part of the data
    /// set): kept here so a snapshot's clone carries them.
    functions: std::sync::Arc<[bytes::Bytes]>,
}

impl Keyspace {
    pub fn new(databases: usize) -> Keyspace {
        Keyspace {
            dbs: vec![Db::default(); databases.max(1)],
            functions: std::sync::Arc::new([]),
        }
    }

    /// The function libraries' code, in library-name order.
    pub fn functions(&self) -> &[bytes::Bytes] {
        &self.functions
    }

    pub fn set_functions(&mut self, codes: Vec<bytes::Bytes>) {
        self.functions = codes.into();
    }

    /// Sets what lookups in every database do with expired keys.
    #[inline]
    pub fn set_expiry_mode(&mut self, mode: ExpiryMode) {
        if self.dbs[0].expiry_mode != mode {
            for db in &mut self.dbs {
                db.expiry_mode = mode;
            }
        }
    }

    pub fn db_count(&self) -> usize {
        self.dbs.len()
    }

    pub fn db(&self, index: usize) -> &Db {
        &self.dbs[index]
    }

    pub fn db_mut(&mut self, index: usize) -> &mut Db {
        &mut self.dbs[index]
    }

    pub fn dbs(&self) -> &[Db] {
        &self.dbs
    }

    /// Total keys over all databases (expired-but-not-yet-reclaimed included).
    pub fn key_count(&self) -> usize {
        self.dbs.iter().map(Db::len).sum()
    }

    pub fn expired_count(&self) -> u64 {
        self.dbs.iter().map(Db::expired_count).sum()
    }

    /// Packs again every record a command unpacked (see [`Db::settle`]).
    #[inline]
    pub fn settle(&mut self) {
        for db in &mut self.dbs {
            db.settle();
        }
    }

    pub fn swap(&mut self, a: usize, b: usize) {
        self.dbs.swap(a, b);
    }

    pub fn flush_all(&mut self) {
        for db in &mut self.dbs {
            db.clear();
        }
    }

    /// Moves a key between databases, keeping its TTL. Errors if the source is
    /// missing or the destination holds the key already (returns false then).
    pub fn move_key(&mut self, key: &[u8], from: usize, to: usize, now_ms: i64) -> bool {
        if from == to || self.dbs[to].contains(key, now_ms) {
            return false;
        }
        if !self.dbs[from].contains(key, now_ms) {
            return false;
        }
        let Some(entry) = self.dbs[from].remove(key) else {
            return false;
        };
        self.dbs[to].insert(Bytes::copy_from_slice(key), entry.value, entry.expire_at);
        true
    }
}

/// Wall-clock Unix time in milliseconds; TTLs are kept as absolute times in this clock.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// Server family: CONFIG RESETSTAT zeroes INFO's expired_keys.
impl Keyspace {
    /// Resets every database's count of keys removed by expiry.
    pub fn reset_expired_count(&mut self) {
        for db in &mut self.dbs {
            db.expired_count = 0;
        }
    }
}

#[cfg(test)]
mod server_family_tests {
    use super::*;

    #[test]
    fn reset_expired_count_zeroes_every_db() {
        let mut ks = Keyspace::new(2);
        ks.db_mut(1)
            .insert(Bytes::from("k"), Value::Str(Bytes::from("v")), Some(1));
        assert!(ks.db_mut(1).get(b"k", 10).is_none());
        assert_eq!(ks.expired_count(), 1);
        ks.reset_expired_count();
        assert_eq!(ks.expired_count(), 0);
    }
}

// Keyspace notifications (pub/sub family).
impl Db {
    /// Whether keys expired since the last [`Db::take_expired`].
    #[inline]
    pub fn has_expired_log(&self) -> bool {
        !self.expired_log.is_empty()
    }

    /// The keys expired since the last call, oldest first.
    pub fn take_expired(&mut self) -> Vec<Key> {
        std::mem::take(&mut self.expired_log)
    }
}

#[cfg(test)]
mod bulk_build_tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// A database built in bulk answers as std's map of the same records,
        /// has a sound structure and expiry index, and stays sound through
        /// writes interleaved with clones (the path copying a built map gets).
        #[test]
        fn bulk_build_matches_std_map(
            keys in proptest::collection::vec((0u16..2000, any::<u8>(), proptest::option::of(1i64..100)), 0..400),
            writes in proptest::collection::vec((0u16..2000, any::<u8>()), 0..100),
        ) {
            let mut model: HashMap<Vec<u8>, (Vec<u8>, Option<i64>)> = HashMap::new();
            let mut records = Vec::new();
            for (k, v, t) in keys {
                let key = format!("k{k}").into_bytes();
                if model.contains_key(&key) {
                    continue;
                }
                model.insert(key.clone(), (vec![v], t));
                records.push(Record::new(&key, Value::Str(Bytes::from(vec![v])), t));
            }
            let mut db = Db::from_records(records).expect("distinct keys");
            db.check_invariants().map_err(TestCaseError::fail)?;
            prop_assert_eq!(db.len(), model.len());
            for (k, (v, t)) in &model {
                let e = db.peek(k, 0).expect("present");
                prop_assert_eq!(e.value, Value::Str(Bytes::from(v.clone())));
                prop_assert_eq!(e.expire_at, *t);
            }
            let mut snapshots = Vec::new();
            for (i, (k, v)) in writes.into_iter().enumerate() {
                if i % 7 == 0 {
                    snapshots.push((db.clone(), model.clone()));
                }
                let key = format!("k{k}").into_bytes();
                if v % 3 == 0 {
                    prop_assert_eq!(db.delete(&key), model.remove(&key).is_some());
                } else {
                    db.insert(Bytes::from(key.clone()), Value::Str(Bytes::from(vec![v])), None);
                    model.insert(key, (vec![v], None));
                }
            }
            db.check_invariants().map_err(TestCaseError::fail)?;
            prop_assert_eq!(db.len(), model.len());
            for (snap, m) in &snapshots {
                prop_assert_eq!(snap.len(), m.len());
                for (k, (v, _)) in m {
                    prop_assert_eq!(snap.peek(k, 0).map(|e| e.value), Some(Value::Str(Bytes::from(v.clone()))));
                }
            }
        }
    }

    #[test]
    fn bulk_build_refuses_a_repeated_key() {
        let r = |k: &str| Record::new(k.as_bytes(), Value::Str(Bytes::from("v")), None);
        let err = Db::from_records(vec![r("a"), r("b"), r("a")]).unwrap_err();
        assert_eq!(err.key(), b"a");
    }
}

#[cfg(test)]
mod expired_log_tests {
    use super::*;

    #[test]
    fn lazy_and_active_expiry_log_their_keys() {
        let mut db = Db::default();
        db.insert(Bytes::from("a"), Value::Str(Bytes::from("1")), Some(10));
        db.insert(Bytes::from("b"), Value::Str(Bytes::from("1")), Some(20));
        assert!(db.get(b"a", 15).is_none());
        assert_eq!(db.expire_due(25, 10), (1, false));
        assert!(db.has_expired_log());
        assert_eq!(db.take_expired(), vec![Bytes::from("a"), Bytes::from("b")]);
        assert!(!db.has_expired_log());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn k(s: &str) -> Key {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn lazy_expiry_deletes_on_read() {
        let mut db = Db::default();
        db.insert(k("a"), Value::Str(k("1")), Some(100));
        assert!(db.get(b"a", 99).is_some());
        assert!(db.get(b"a", 100).is_none());
        assert_eq!(db.len(), 0);
        assert_eq!(db.expired_count(), 1);
        db.check_invariants().unwrap();
    }

    #[test]
    fn insert_live_counts_a_replaced_expired_key() {
        let mut db = Db::default();
        db.insert(k("a"), Value::Str(k("1")), Some(100));
        assert!(db.insert_live(k("a"), Value::Str(k("2")), None, 50));
        assert_eq!(db.expired_count(), 0);
        db.insert(k("b"), Value::Str(k("1")), Some(100));
        assert!(!db.insert_live(k("b"), Value::Str(k("2")), Some(500), 100));
        assert_eq!(db.expired_count(), 1);
        assert_eq!(db.take_expired(), vec![k("b")]);
        assert!(!db.insert_live(k("c"), Value::Str(k("3")), None, 100));
        assert_eq!(db.len(), 3);
        db.check_invariants().unwrap();
    }

    #[test]
    fn incr_by_keeps_the_ttl_and_restarts_an_expired_key() {
        let mut db = Db::default();
        assert_eq!(db.incr_by(b"a", 5, 0), Ok(5));
        assert_eq!(db.get(b"a", 0).unwrap().expire_at, None);
        db.insert(k("t"), Value::Str(k("9")), Some(100));
        assert_eq!(db.incr_by(b"t", 1, 50), Ok(10));
        assert_eq!(db.get(b"t", 50).unwrap().expire_at, Some(100));
        db.check_invariants().unwrap();
        assert_eq!(db.incr_by(b"t", 1, 100), Ok(1));
        assert_eq!(db.get(b"t", 100).unwrap().expire_at, None);
        assert_eq!(db.expired_count(), 1);
        assert_eq!(db.take_expired(), vec![k("t")]);
        db.check_invariants().unwrap();
        db.insert(k("s"), Value::Str(k("x")), None);
        assert_eq!(db.incr_by(b"s", 1, 0), Err(CommandError::NotInteger));
        // A snapshot keeps the value it saw.
        let snap = db.clone();
        assert_eq!(db.incr_by(b"a", 1, 0), Ok(6));
        assert_eq!(snap.peek(b"a", 0).unwrap().value, Value::Str(k("5")));
    }

    #[test]
    fn prefetching_members_of_any_value_changes_nothing() {
        let enc = encodings::Encodings::default();
        let mut db = Db::default();
        let mut set = Set::new();
        let mut hash = Hash::new();
        for i in 0..1000 {
            set.insert(format!("m{i}").as_bytes(), &enc);
            hash.insert(format!("f{i}").as_bytes(), b"v", &enc);
        }
        db.insert(k("set"), Value::Set(set.clone()), None);
        db.insert(k("hash"), Value::Hash(hash.clone()), None);
        db.insert(k("str"), Value::Str(k("v")), None);
        db.insert(
            k("ints"),
            Value::Set(["1", "2"].into_iter().collect()),
            None,
        );
        let names = ["set", "hash", "str", "ints", "absent"];
        for first in names {
            let pairs: Vec<(&[u8], &[u8])> = std::iter::once(first)
                .chain(names)
                .flat_map(|key| [(key.as_bytes(), &b"m7"[..]), (key.as_bytes(), &b"f9"[..])])
                .collect();
            db.prefetch_members(pairs.into_iter());
        }
        db.prefetch_members(std::iter::empty());
        assert_eq!(db.peek(b"set", 0).unwrap().value, Value::Set(set));
        assert_eq!(db.peek(b"hash", 0).unwrap().value, Value::Hash(hash));
        db.check_invariants().unwrap();
    }

    #[test]
    fn prefetching_pops_of_any_value_changes_nothing() {
        let enc = encodings::Encodings::default();
        let mut db = Db::default();
        let (mut big, mut small) = (ZSet::new(), ZSet::new());
        for i in 0..1000 {
            big.insert(format!("m{i}").as_bytes(), f64::from(i), &enc);
        }
        small.insert(b"m", 1.0, &enc);
        assert!(!big.is_packed() && small.is_packed());
        db.insert(k("big"), Value::ZSet(big.clone()), None);
        db.insert(k("small"), Value::ZSet(small.clone()), None);
        db.insert(k("str"), Value::Str(k("v")), None);
        for key in ["big", "small", "str", "absent"] {
            for (low, high) in [
                (0, 0),
                (1, 0),
                (0, 1),
                (16, 16),
                (40, 5),
                (usize::MAX, usize::MAX),
            ] {
                db.prefetch_pops(key.as_bytes(), low, high);
            }
        }
        assert_eq!(db.peek(b"big", 0).unwrap().value, Value::ZSet(big));
        assert_eq!(db.peek(b"small", 0).unwrap().value, Value::ZSet(small));
        db.check_invariants().unwrap();
    }

    #[test]
    fn insert_str_replaces_value_and_ttl() {
        let mut db = Db::default();
        db.insert(k("a"), Value::Str(k("old")), Some(100));
        assert!(db.insert_str(b"a", &k("new"), None, 1));
        assert_eq!(db.get(b"a", 0).unwrap().value, Value::Str(k("new")));
        assert_eq!(db.volatile_len(), 0);
        let long = Bytes::from(vec![b'x'; record::PACKED_STR_MAX + 1]);
        assert!(!db.insert_str(b"b", &long, Some(5), 1));
        assert_eq!(db.get(b"b", 0).unwrap().value, Value::Str(long));
        db.check_invariants().unwrap();
    }

    #[test]
    fn expiry_index_follows_ttl_changes() {
        let mut db = Db::default();
        db.insert(k("a"), Value::Str(k("1")), Some(100));
        db.set_expire(b"a", Some(200));
        db.insert(k("b"), Value::Str(k("1")), Some(50));
        db.insert(k("b"), Value::Str(k("2")), None);
        db.check_invariants().unwrap();
        assert_eq!(db.volatile_len(), 1);
        assert_eq!(db.expire_due(150, 10), (0, false));
        assert_eq!(db.expire_due(250, 10), (1, false));
        assert_eq!(db.len(), 1);
        db.check_invariants().unwrap();
    }

    #[test]
    fn expire_due_is_bounded() {
        let mut db = Db::default();
        for i in 0..100 {
            db.insert(k(&format!("k{i}")), Value::Str(k("v")), Some(i));
        }
        assert_eq!(db.expire_due(1000, 30), (30, true));
        assert_eq!(db.len(), 70);
        db.check_invariants().unwrap();
    }

    #[test]
    fn empty_collections_are_removed() {
        let mut db = Db::default();
        let e = db.get_or_insert_with(&k("l"), 0, || Value::List(List::new()));
        e.value
            .as_list_mut()
            .unwrap()
            .push_back(b"x", list::Fill::DEFAULT);
        assert!(!db.remove_if_empty(b"l"));
        db.get_mut(b"l", 0)
            .unwrap()
            .value
            .as_list_mut()
            .unwrap()
            .pop_back();
        assert!(db.remove_if_empty(b"l"));
        assert!(db.is_empty());
    }

    fn filled(n: usize) -> Keyspace {
        let mut ks = Keyspace::new(16);
        let db = ks.db_mut(0);
        for i in 0..n {
            db.insert(
                Bytes::from(format!("key:{i}")),
                Value::Str(Bytes::from_static(b"value")),
                if i % 10 == 0 {
                    Some(i as i64 + 1_000_000)
                } else {
                    None
                },
            );
        }
        ks
    }

    /// The snapshot invariant: a clone costs the same whatever the size, and
    /// writes to the original never show in the clone.
    #[test]
    fn clone_is_constant_time_and_isolated() {
        let small = filled(1_000);
        let mut big = filled(1_000_000);

        let time_clones = |ks: &Keyspace| {
            let start = Instant::now();
            for _ in 0..1_000 {
                std::hint::black_box(ks.clone());
            }
            start.elapsed()
        };
        let t_small = time_clones(&small);
        let t_big = time_clones(&big);
        // 1000x the keys; a copying clone would be ~1000x slower. Allow wide noise.
        assert!(
            t_big < t_small * 20 + std::time::Duration::from_millis(5),
            "clone of 1M keys took {t_big:?} per 1000 vs {t_small:?} for 1k keys"
        );

        let snapshot = big.clone();
        big.db_mut(0)
            .insert(k("key:1"), Value::Str(k("changed")), None);
        big.db_mut(0).remove(b"key:2");
        big.db_mut(0).insert(k("new"), Value::Str(k("x")), None);
        big.db_mut(1).insert(k("other"), Value::Str(k("x")), None);

        let snap0 = snapshot.db(0);
        assert_eq!(
            snap0.peek(b"key:1", 0).unwrap().value,
            Value::Str(k("value"))
        );
        assert!(snap0.peek(b"key:2", 0).is_some());
        assert!(snap0.peek(b"new", 0).is_none());
        assert_eq!(snapshot.db(1).len(), 0);
        assert_eq!(snapshot.key_count(), 1_000_000);
        assert_eq!(big.key_count(), 1_000_001);
        snapshot.db(0).check_invariants().unwrap();
    }
}
