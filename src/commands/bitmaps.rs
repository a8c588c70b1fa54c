//! Bitmap commands: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
//! BITFIELD_RO over string values, with Redis 7.0's replies and errors.
//!
//! Writes change the string's bytes in place when nothing else (a snapshot,
//! a WATCH, a reader) shares them; otherwise they copy once.

use bytes::{Bytes, BytesMut};

use super::args;
use super::flags::*;
use super::strings::since;
use super::{spec, CommandSpec, Ctx, KEY1};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::bits::{self, BitOp, Overflow, Unit};
use crate::keyspace::{Key, Value};
use crate::pubsub::notify;
use crate::reply::Reply;

/// BITOP: the destination, then every source key.
const BITOP_KEYS: (i32, i32, i32) = (2, -1, 1);

pub const COMMANDS: &[CommandSpec] = &[
    since(
        spec(
            "setbit",
            4,
            WRITE | DENYOOM,
            KEY1,
            "bitmap",
            "Sets or clears the bit at offset in the string value stored at key",
            setbit,
        ),
        "2.2.0",
    ),
    since(
        spec(
            "getbit",
            3,
            READONLY | FAST,
            KEY1,
            "bitmap",
            "Returns the bit value at offset in the string value stored at key",
            getbit,
        ),
        "2.2.0",
    ),
    since(
        spec(
            "bitcount",
            -2,
            READONLY,
            KEY1,
            "bitmap",
            "Count set bits in a string",
            bitcount,
        ),
        "2.6.0",
    ),
    since(
        spec(
            "bitpos",
            -3,
            READONLY,
            KEY1,
            "bitmap",
            "Find first bit set or clear in a string",
            bitpos,
        ),
        "2.8.7",
    ),
    since(
        spec(
            "bitop",
            -4,
            WRITE | DENYOOM,
            BITOP_KEYS,
            "bitmap",
            "Perform bitwise operations between strings",
            bitop,
        ),
        "2.6.0",
    ),
    since(
        spec(
            "bitfield",
            -2,
            WRITE | DENYOOM,
            KEY1,
            "bitmap",
            "Perform arbitrary bitfield integer operations on strings",
            bitfield,
        ),
        "3.2.0",
    ),
    since(
        spec(
            "bitfield_ro",
            -2,
            READONLY | FAST,
            KEY1,
            "bitmap",
            "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD",
            bitfield_ro,
        ),
        "6.0.0",
    ),
];

// ---------------------------------------------------------------------------
// Shared helpers

/// Reads `key` as a string for a read command (keyspace hit or miss counted).
fn read_str(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, CommandError> {
    let now = ctx.now_ms;
    let found = ctx.db().get(key, now).map(|e| e.value.clone());
    if found.is_some() {
        ctx.state.stats.keyspace_hits += 1;
    } else {
        ctx.state.stats.keyspace_misses += 1;
    }
    match found {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(CommandError::WrongType),
    }
}

/// Whether `key` exists, refusing another type. Reads the record only, so a
/// refused write leaves it untouched.
fn check_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<bool, CommandError> {
    let now = ctx.now_ms;
    match ctx.db().record(key, now).map(|r| r.type_name()) {
        None => Ok(false),
        Some("string") => Ok(true),
        Some(_) => Err(CommandError::WrongType),
    }
}

/// Redis's `getBitOffsetFromArgument`: a bit offset, or with `hash_bits` a
/// `#n` field index (times the field width), below proto-max-bulk-len bytes.
fn bit_offset(ctx: &Ctx<'_>, arg: &[u8], hash_bits: Option<u32>) -> Result<u64, CommandError> {
    let (digits, scale) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) => (&arg[1..], bits as i64),
        _ => (arg, 1),
    };
    let offset = args::parse_i64_strict(digits)
        .map(|n| n.wrapping_mul(scale))
        .ok_or(CommandError::BitOffset)?;
    let max_bytes = ctx.shared.config().proto_max_bulk_len as i64;
    if offset < 0 || (offset >> 3) >= max_bytes {
        return Err(CommandError::BitOffset);
    }
    Ok(offset as u64)
}

/// Runs `f` on the bytes of the string under `key` (created when absent),
/// grown with zero bytes to at least `min_len`; `f` learns whether the
/// string was created or grown. The bytes are changed in place when this
/// value is their only owner. The caller checked the type.
fn write_bits<R>(
    ctx: &mut Ctx<'_>,
    key: &Key,
    min_len: usize,
    f: impl FnOnce(&mut [u8], bool) -> R,
) -> R {
    let now = ctx.now_ms;
    let mut created = false;
    let entry = ctx.db().get_or_insert_with(key, now, || {
        created = true;
        Value::Str(Bytes::new())
    });
    let Value::Str(value) = &mut entry.value else {
        unreachable!("the caller checked the type")
    };
    let mut buf = match std::mem::take(value).try_into_mut() {
        Ok(unique) => unique,
        Err(shared) => BytesMut::from(&shared[..]),
    };
    let grown = created || buf.len() < min_len;
    if buf.len() < min_len {
        buf.resize(min_len, 0);
    }
    let result = f(&mut buf, grown);
    *value = buf.freeze();
    result
}

fn parse_unit(arg: &[u8]) -> Result<Unit, CommandError> {
    if args::is(arg, "bit") {
        Ok(Unit::Bit)
    } else if args::is(arg, "byte") {
        Ok(Unit::Byte)
    } else {
        Err(CommandError::Syntax)
    }
}

// ---------------------------------------------------------------------------
// SETBIT, GETBIT

fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let offset = bit_offset(ctx, &args[2], None)?;
    let on = match args::parse_i64_strict(&args[3]) {
        Some(0) => false,
        Some(1) => true,
        _ => return Err(CommandError::BitValue),
    };
    let len = (offset >> 3) as usize + 1;
    // A bit that already holds the value in a string long enough is no write
    // at all (no event, no dirty, WATCH undisturbed), as in Redis.
    if check_string(ctx, key)? {
        let now = ctx.now_ms;
        let unchanged = ctx.db().get(key, now).is_some_and(|e| {
            matches!(&e.value, Value::Str(s) if s.len() >= len && bits::get_bit(s, offset) == on)
        });
        if unchanged {
            return Ok(Reply::Integer(on as i64));
        }
    }
    let old = write_bits(ctx, key, len, |buf, _| bits::set_bit(buf, offset, on));
    ctx.dirty(1);
    ctx.notify(notify::STRING, "setbit", key);
    Ok(Reply::Integer(old as i64))
}

fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2], None)?;
    let s = read_str(ctx, &args[1])?.unwrap_or_default();
    Ok(Reply::Integer(bits::get_bit(&s, offset) as i64))
}

// ---------------------------------------------------------------------------
// BITCOUNT, BITPOS

fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // The key is looked up before the range is parsed: a missing key counts
    // 0 whatever the arguments.
    let Some(s) = read_str(ctx, &args[1])? else {
        return Ok(Reply::Integer(0));
    };
    let range = match args.len() {
        2 => None,
        4 | 5 => {
            let start = args::int(&args[2])?;
            let end = args::int(&args[3])?;
            let unit = match args.get(4) {
                Some(u) => parse_unit(u)?,
                None => Unit::Byte,
            };
            Some((start, end, unit))
        }
        _ => return Err(CommandError::Syntax),
    };
    Ok(Reply::Integer(bits::bitcount(&s, range) as i64))
}

fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let bit = match args::int(&args[2])? {
        0 => false,
        1 => true,
        _ => return Err(CommandError::BitArgument),
    };
    // A missing key is an infinite run of zeros.
    let Some(s) = read_str(ctx, &args[1])? else {
        return Ok(Reply::Integer(if bit { -1 } else { 0 }));
    };
    if args.len() > 6 {
        return Err(CommandError::Syntax);
    }
    let start = args.get(3).map(|a| args::int(a)).transpose()?;
    let unit = match args.get(5) {
        Some(u) => parse_unit(u)?,
        None => Unit::Byte,
    };
    let end = args.get(4).map(|a| args::int(a)).transpose()?;
    Ok(Reply::Integer(bits::bitpos(&s, bit, start, end, unit)))
}

// ---------------------------------------------------------------------------
// BITOP

fn bitop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let op = [
        ("and", BitOp::And),
        ("or", BitOp::Or),
        ("xor", BitOp::Xor),
        ("not", BitOp::Not),
    ]
    .into_iter()
    .find(|(name, _)| args::is(&args[1], name))
    .map(|(_, op)| op)
    .ok_or(CommandError::Syntax)?;
    if op == BitOp::Not && args.len() != 4 {
        return Err(CommandError::BitopNotArity);
    }
    let dest = &args[2];
    let mut sources = Vec::with_capacity(args.len() - 3);
    let now = ctx.now_ms;
    for key in &args[3..] {
        sources.push(read_str(ctx, key)?.unwrap_or_default());
    }
    let slices: Vec<&[u8]> = sources.iter().map(|s| &s[..]).collect();
    let result = bits::bitop(op, &slices);
    let len = result.len() as i64;
    if result.is_empty() {
        if ctx.db().delete(dest) {
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "del", dest);
        }
    } else {
        ctx.db()
            .insert_live(dest.clone(), Value::Str(Bytes::from(result)), None, now);
        ctx.dirty(1);
        ctx.notify(notify::STRING, "set", dest);
    }
    Ok(Reply::Integer(len))
}

// ---------------------------------------------------------------------------
// BITFIELD

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

#[derive(Debug, Clone, Copy)]
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

/// `i1`..`i64` or `u1`..`u63`.
fn field_type(arg: &[u8]) -> Result<(bool, u32), CommandError> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(CommandError::BitfieldType),
    };
    let max = if signed { 64 } else { 63 };
    match args::parse_i64_strict(&arg[1..]) {
        Some(bits) if (1..=max).contains(&bits) => Ok((signed, bits as u32)),
        _ => Err(CommandError::BitfieldType),
    }
}

/// Parses every subcommand before anything runs, as Redis does: one bad
/// argument and nothing is read or written.
fn parse_fields(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<Vec<Field>, CommandError> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let sub = &args[j];
        let op = if args::is(sub, "get") && remaining >= 2 {
            FieldOp::Get
        } else if args::is(sub, "set") && remaining >= 3 {
            FieldOp::Set(0)
        } else if args::is(sub, "incrby") && remaining >= 3 {
            FieldOp::IncrBy(0)
        } else if args::is(sub, "overflow") && remaining >= 1 {
            let kind = &args[j + 1];
            overflow = if args::is(kind, "wrap") {
                Overflow::Wrap
            } else if args::is(kind, "sat") {
                Overflow::Sat
            } else if args::is(kind, "fail") {
                Overflow::Fail
            } else {
                return Err(CommandError::BitfieldOverflow);
            };
            j += 2;
            continue;
        } else {
            return Err(CommandError::Syntax);
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = bit_offset(ctx, &args[j + 2], Some(bits))?;
        let op = match op {
            FieldOp::Get => FieldOp::Get,
            FieldOp::Set(_) => FieldOp::Set(args::int(&args[j + 3])?),
            FieldOp::IncrBy(_) => FieldOp::IncrBy(args::int(&args[j + 3])?),
        };
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok(fields)
}

fn read_field(s: &[u8], f: &Field) -> i64 {
    if f.signed {
        bits::get_signed(s, f.offset, f.bits)
    } else {
        bits::get_unsigned(s, f.offset, f.bits) as i64
    }
}

/// One SET or INCRBY on `buf`: the reply (the old value for SET, the new one
/// for INCRBY; null when OVERFLOW FAIL refused it) and whether the field's
/// value changed.
fn write_field(buf: &mut [u8], f: &Field) -> (Reply, bool) {
    let (old, new) = if f.signed {
        let old = bits::get_signed(buf, f.offset, f.bits);
        let new = match f.op {
            FieldOp::Set(v) => bits::add_signed(v, 0, f.bits, f.overflow),
            FieldOp::IncrBy(by) => bits::add_signed(old, by, f.bits, f.overflow),
            FieldOp::Get => unreachable!("GET does not write"),
        };
        (old, new.map(|v| v as u64))
    } else {
        let old = bits::get_unsigned(buf, f.offset, f.bits);
        let new = match f.op {
            FieldOp::Set(v) => bits::add_unsigned(v as u64, 0, f.bits, f.overflow),
            FieldOp::IncrBy(by) => bits::add_unsigned(old, by, f.bits, f.overflow),
            FieldOp::Get => unreachable!("GET does not write"),
        };
        (old as i64, new)
    };
    let Some(new) = new else {
        return (Reply::Null, false);
    };
    bits::set_field(buf, f.offset, f.bits, new);
    // Unsigned fields are at most 63 bits wide: every value fits an i64.
    let changed = old != new as i64;
    match f.op {
        FieldOp::Set(_) => (Reply::Integer(old), changed),
        _ => (Reply::Integer(new as i64), changed),
    }
}

fn bitfield_generic(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> CmdResult {
    let key = &args[1];
    let fields = parse_fields(ctx, args)?;
    let writes = fields.iter().filter(|f| f.op != FieldOp::Get).count();
    if writes == 0 {
        let s = read_str(ctx, key)?.unwrap_or_default();
        let replies = fields
            .iter()
            .map(|f| Reply::Integer(read_field(&s, f)))
            .collect();
        return Ok(Reply::Array(replies));
    }
    if read_only {
        return Err(CommandError::BitfieldReadOnly);
    }
    check_string(ctx, key)?;
    let highest = fields
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.offset + f.bits as u64 - 1)
        .max()
        .unwrap_or(0);
    let len = (highest >> 3) as usize + 1;
    // As in Redis, a write counts as a change when it altered the field or
    // the string was created or grown; only changes notify and dirty.
    let (replies, changes) = write_bits(ctx, key, len, |buf, grown| {
        let mut changes = 0u64;
        let replies = fields
            .iter()
            .map(|f| match f.op {
                FieldOp::Get => Reply::Integer(read_field(buf, f)),
                _ => {
                    let (reply, changed) = write_field(buf, f);
                    let refused = reply == Reply::Null;
                    changes += (!refused && (changed || grown)) as u64;
                    reply
                }
            })
            .collect();
        (replies, changes)
    });
    if changes > 0 {
        ctx.dirty(changes);
        ctx.notify(notify::STRING, "setbit", key);
    }
    Ok(Reply::Array(replies))
}

fn bitfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::super::strings::harness::*;
    use crate::reply::Reply;

    #[test]
    fn writes_in_place_keep_a_snapshot_unchanged() {
        let mut h = Harness::new();
        h.run(&["setbit", "k", "3000", "1"]);
        let snap = h.shared.lock().keyspace.clone();
        assert_eq!(h.run(&["setbit", "k", "7", "1"]), Reply::Integer(0));
        assert_eq!(
            h.run(&["bitfield", "k", "incrby", "u8", "#10", "5"]),
            Reply::Array(vec![Reply::Integer(5)])
        );
        let old = snap.db(0).peek(b"k", h.now_ms).unwrap().value;
        let crate::keyspace::Value::Str(old) = old else {
            panic!("a string")
        };
        assert_eq!(
            crate::keyspace::bits::popcount(&old),
            1,
            "the snapshot kept its bytes"
        );
        assert_eq!(h.run(&["bitcount", "k"]), Reply::Integer(4));
    }

    fn value_ptr(h: &Harness, key: &[u8]) -> *const u8 {
        let db = h.shared.lock().keyspace.db(0).clone();
        match db.peek(key, h.now_ms).unwrap().value {
            crate::keyspace::Value::Str(s) => s.as_ptr(),
            _ => panic!("a string"),
        }
    }

    #[test]
    fn unshared_large_value_changes_in_place() {
        let mut h = Harness::new();
        h.run(&["setbit", "k", "80000", "1"]);
        let before = value_ptr(&h, b"k");
        h.run(&["setbit", "k", "5", "1"]);
        h.run(&["bitfield", "k", "set", "u8", "#3", "7"]);
        assert_eq!(value_ptr(&h, b"k"), before, "no copy of an unshared value");
        assert_eq!(h.run(&["bitcount", "k"]), Reply::Integer(5));
    }

    #[test]
    fn unchanged_bit_is_no_write() {
        let mut h = Harness::new();
        h.run(&["setbit", "k", "5", "1"]);
        let dirty = h.dirty();
        assert_eq!(h.run(&["setbit", "k", "5", "1"]), Reply::Integer(1));
        assert_eq!(h.run(&["setbit", "k", "6", "0"]), Reply::Integer(0));
        assert_eq!(h.dirty(), dirty);
        // Growing the string is a write even when the bit was already clear.
        assert_eq!(h.run(&["setbit", "k", "100", "0"]), Reply::Integer(0));
        assert_eq!(h.run(&["strlen", "k"]), Reply::Integer(13));
    }
}
