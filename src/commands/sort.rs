//! SORT and SORT_RO over lists and sets, with Redis 7.0's options (BY with
//! `*` patterns, hash fields `->` and `nosort`, GET `#`/patterns, LIMIT,
//! ASC/DESC, ALPHA, STORE), replies, errors and keyspace events.
//!
//! The elements to sort come from one match over the source value's type
//! ([`load`]); every later step works on that element vector, so a further
//! source type is one more arm there.

use std::cmp::Ordering;

use bytes::Bytes;

use super::args;
use super::flags::*;
use super::strings::since;
use super::{spec, CommandSpec, Ctx, KEY1};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::{List, Value};
use crate::pubsub::notify;
use crate::reply::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "sort",
        -2,
        WRITE | DENYOOM,
        KEY1,
        "sort",
        "Sort the elements in a list, set or sorted set",
        sort,
    ),
    since(
        spec(
            "sort_ro",
            -2,
            READONLY,
            KEY1,
            "sort",
            "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
            sort_ro,
        ),
        "7.0.0",
    ),
];

/// ACL categories of both commands (they read lists, sets and sorted sets).
pub const ACL_CATEGORIES: &[&str] = &["@set", "@sortedset", "@list", "@slow", "@dangerous"];

/// SORT's key arguments as Redis's `sortGetKeys` finds them: the source, and
/// the last STORE destination (options with arguments are skipped over).
pub fn keys(line: &[Bytes]) -> Vec<usize> {
    let mut keys = vec![1];
    let mut store = None;
    let mut i = 2;
    while i < line.len() {
        let arg = &line[i];
        if args::is(arg, "limit") {
            i += 2;
        } else if args::is(arg, "get") || args::is(arg, "by") {
            i += 1;
        } else if args::is(arg, "store") && i + 1 < line.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    keys.extend(store);
    keys
}

#[derive(Debug, Default)]
struct Options {
    desc: bool,
    alpha: bool,
    /// LIMIT offset and count (count < 0: to the end).
    limit: (i64, i64),
    by: Option<Bytes>,
    /// BY a pattern without `*` (`nosort`): keep the source's own order.
    dont_sort: bool,
    get: Vec<Bytes>,
    store: Option<Bytes>,
}

fn parse(args: &[Bytes], read_only: bool) -> Result<Options, CommandError> {
    let mut o = Options {
        limit: (0, -1),
        ..Options::default()
    };
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let arg = &args[j];
        if args::is(arg, "asc") {
            o.desc = false;
        } else if args::is(arg, "desc") {
            o.desc = true;
        } else if args::is(arg, "alpha") {
            o.alpha = true;
        } else if args::is(arg, "limit") && left >= 2 {
            o.limit = (args::int(&args[j + 1])?, args::int(&args[j + 2])?);
            j += 2;
        } else if !read_only && args::is(arg, "store") && left >= 1 {
            o.store = Some(args[j + 1].clone());
            j += 1;
        } else if args::is(arg, "by") && left >= 1 {
            let pattern = args[j + 1].clone();
            // Once a BY without `*` was seen, later BYs do not sort either.
            o.dont_sort |= !pattern.contains(&b'*');
            o.by = Some(pattern);
            j += 1;
        } else if args::is(arg, "get") && left >= 1 {
            o.get.push(args[j + 1].clone());
            j += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// The elements of the source value in its own order, and whether that
/// order means something (lists, and later sorted sets) or not (sets).
/// Absent keys sort as an empty list.
fn load(value: Option<&Value>) -> Result<(Vec<Bytes>, bool), CommandError> {
    match value {
        None => Ok((Vec::new(), true)),
        Some(Value::List(l)) => Ok((l.iter().map(Bytes::copy_from_slice).collect(), true)),
        Some(Value::Set(s)) => Ok((s.iter().map(|m| m.to_bytes()).collect(), false)),
        // A sorted set's own order (by score) is what `BY nosort` keeps.
        Some(Value::ZSet(z)) => Ok((
            z.iter().map(|(_, m)| Bytes::copy_from_slice(m)).collect(),
            true,
        )),
        Some(_) => Err(CommandError::WrongType),
    }
}

/// Reads a key for a BY/GET pattern or the source (a keyspace hit or miss).
fn lookup(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<Value> {
    let now = ctx.now_ms;
    let found = ctx.db().get(key, now).map(|e| e.value.clone());
    if found.is_some() {
        ctx.state.stats.keyspace_hits += 1;
    } else {
        ctx.state.stats.keyspace_misses += 1;
    }
    found
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the
/// first `*` is replaced by the element, and a `->field` after it reads that
/// hash field instead of a string. None when the key, the field or the `*`
/// is missing, or the key holds another type.
fn by_pattern(ctx: &mut Ctx<'_>, pattern: &[u8], element: &Bytes) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(element.clone());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let after = &pattern[star + 1..];
    let (postfix, field) = match after.windows(2).position(|w| w == b"->") {
        Some(f) if f + 2 < after.len() => (&after[..f], Some(&after[f + 2..])),
        _ => (after, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(postfix);
    match (lookup(ctx, &key)?, field) {
        (Value::Hash(h), Some(field)) => h.get_bytes(field),
        (Value::Str(s), None) => Some(s),
        _ => None,
    }
}

/// C's `strtod` as SORT applies it: leading white space, then the longest
/// number prefix (decimal, hexadecimal, `inf`/`infinity`, `nan`). Valid
/// when nothing but the end of the C string (or a NUL byte) follows, the
/// value is not NaN, and it neither overflowed nor underflowed (ERANGE).
/// An empty string is 0, as in Redis.
fn sort_score(s: &[u8]) -> Option<f64> {
    let mut i = s
        .iter()
        .take_while(|b| b" \t\n\x0b\x0c\r".contains(b))
        .count();
    let start = i;
    if matches!(s.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let rest = &s[i..];
    let lower: Vec<u8> = rest.iter().take(8).map(u8::to_ascii_lowercase).collect();
    let digits = |from: usize, hex: bool| {
        s[from..]
            .iter()
            .take_while(|b| {
                if hex {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            })
            .count()
    };
    let (value, end) = if lower.starts_with(b"inf") {
        let len = if lower.starts_with(b"infinity") { 8 } else { 3 };
        (f64::INFINITY, i + len)
    } else if lower.starts_with(b"nan") {
        return None;
    } else {
        let hex = lower.starts_with(b"0x")
            && (s.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
                || (s.get(i + 2) == Some(&b'.')
                    && s.get(i + 3).is_some_and(u8::is_ascii_hexdigit)));
        let body = if hex { i + 2 } else { i };
        let int_len = digits(body, hex);
        let mut end = body + int_len;
        let mut frac_len = 0;
        if s.get(end) == Some(&b'.') {
            frac_len = digits(end + 1, hex);
            if int_len + frac_len > 0 {
                end += 1 + frac_len;
            }
        }
        if int_len + frac_len == 0 {
            // No conversion: strtod points back at the very start.
            return (s.first().is_none_or(|&b| b == 0)).then_some(0.0);
        }
        let mantissa_end = end;
        let exp_mark = if hex { b'p' } else { b'e' };
        if s.get(end)
            .is_some_and(|b| b.to_ascii_lowercase() == exp_mark)
        {
            let sign = matches!(s.get(end + 1), Some(b'+' | b'-')) as usize;
            let exp_digits = digits(end + 1 + sign, false);
            if exp_digits > 0 {
                end += 1 + sign + exp_digits;
            }
        }
        let text = std::str::from_utf8(&s[i..end]).ok()?;
        let magnitude = if hex {
            parse_hex(&text[2..])?
        } else {
            text.parse::<f64>().ok()?
        };
        let nonzero = s[body..mantissa_end]
            .iter()
            .any(|b| b.is_ascii_hexdigit() && *b != b'0');
        // ERANGE: overflow to infinity, or underflow below the normal range.
        if magnitude.is_infinite() || (nonzero && magnitude.abs() < f64::MIN_POSITIVE) {
            return None;
        }
        (magnitude, end)
    };
    let negative = s.get(start) == Some(&b'-');
    let value = if negative { -value } else { value };
    (end == s.len() || s[end] == 0).then_some(value)
}

/// The digits of a hexadecimal float after `0x`: `h.hp±d`.
fn parse_hex(text: &str) -> Option<f64> {
    let (mantissa, exp) = match text.split_once(['p', 'P']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut value = 0f64;
    for c in int_part.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        value += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(value * 2f64.powi(exp))
}

/// One element and what it sorts by.
struct Item {
    element: Bytes,
    score: f64,
    /// The BY value for ALPHA with a pattern (None: missing, sorts first).
    key: Option<Bytes>,
}

/// Redis's `sortCompare`: numeric by score, ties by the element's bytes;
/// ALPHA by the BY value (missing ones first) or by the element itself.
fn compare(a: &Item, b: &Item, alpha: bool, by_pattern: bool) -> Ordering {
    if !alpha {
        return match a.score.partial_cmp(&b.score) {
            Some(Ordering::Equal) | None => a.element.cmp(&b.element),
            Some(order) => order,
        };
    }
    if by_pattern {
        return match (&a.key, &b.key) {
            (Some(x), Some(y)) => x.cmp(y),
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
        };
    }
    a.element.cmp(&b.element)
}

/// LIMIT against `len` elements: the inclusive output range (empty when
/// `end < start`), by Redis's rules.
fn limit_range(len: usize, (offset, count): (i64, i64)) -> (i64, i64) {
    let len = len as i64;
    let start = offset.max(0);
    let mut end = if count < 0 {
        len - 1
    } else {
        start.saturating_add(count - 1)
    };
    if start >= len {
        return (len - 1, len - 2);
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

fn sort_generic(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> CmdResult {
    let mut o = parse(args, read_only)?;
    let source = lookup(ctx, &args[1]);
    let (elements, ordered) = load(source.as_ref())?;
    drop(source);
    // An unordered source's own order differs between servers: a stored
    // result is always sorted (by the elements, as ALPHA), as in Redis.
    if o.dont_sort && !ordered && o.store.is_some() {
        o.dont_sort = false;
        o.alpha = true;
        o.by = None;
    }
    let (start, end) = limit_range(elements.len(), o.limit);
    let mut items: Vec<Item> = elements
        .into_iter()
        .map(|element| Item {
            element,
            score: 0.0,
            key: None,
        })
        .collect();
    let mut not_a_number = false;
    if o.dont_sort {
        if ordered && o.desc {
            items.reverse();
        }
    } else {
        for item in &mut items {
            let by = match &o.by {
                Some(pattern) => match by_pattern(ctx, pattern, &item.element) {
                    Some(v) => v,
                    // A missing BY value sorts as 0 (or first, with ALPHA).
                    None => continue,
                },
                None => item.element.clone(),
            };
            if o.alpha {
                if o.by.is_some() {
                    item.key = Some(by);
                }
            } else {
                match sort_score(&by) {
                    Some(score) => item.score = score,
                    None => not_a_number = true,
                }
            }
        }
        let (alpha, by, desc) = (o.alpha, o.by.is_some(), o.desc);
        // Stable, as glibc's merge-sorting qsort is for ties under BY.
        items.sort_by(|a, b| {
            let order = compare(a, b, alpha, by);
            if desc {
                order.reverse()
            } else {
                order
            }
        });
    }
    if not_a_number {
        return Err(CommandError::SortNotDouble);
    }
    let picked: &[Item] = if end >= start {
        &items[start as usize..=end as usize]
    } else {
        &[]
    };
    // Every picked element, or the GET lookups for it.
    let mut out: Vec<Option<Bytes>> = Vec::with_capacity(picked.len() * o.get.len().max(1));
    for item in picked {
        if o.get.is_empty() {
            out.push(Some(item.element.clone()));
        }
        for pattern in &o.get {
            out.push(by_pattern(ctx, pattern, &item.element));
        }
    }
    let Some(dest) = o.store else {
        return Ok(Reply::Array(out.into_iter().map(Reply::bulk_opt).collect()));
    };
    let len = out.len();
    if len > 0 {
        let fill = ctx.state.encodings.list_fill();
        let list = List::from_elems(out.into_iter().map(Option::unwrap_or_default), fill);
        let now = ctx.now_ms;
        ctx.db()
            .insert_live(dest.clone(), Value::List(list), None, now);
        ctx.signal_key(&dest);
        ctx.dirty(len as u64);
        ctx.notify(notify::LIST, "sortstore", &dest);
    } else if ctx.db().delete(&dest) {
        ctx.dirty(1);
        ctx.notify(notify::GENERIC, "del", &dest);
    }
    Ok(Reply::Integer(len as i64))
}

fn sort(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_as_strtod() {
        for (text, want) in [
            ("1", Some(1.0)),
            ("-2.5", Some(-2.5)),
            ("  7", Some(7.0)),
            ("", Some(0.0)),
            ("1e3", Some(1000.0)),
            ("1e", None),
            (".5", Some(0.5)),
            ("5.", Some(5.0)),
            ("+4", Some(4.0)),
            ("inf", Some(f64::INFINITY)),
            ("-Infinity", Some(f64::NEG_INFINITY)),
            ("infx", None),
            ("nan", None),
            ("0x10", Some(16.0)),
            ("0x1p4", Some(16.0)),
            ("0x", None),
            ("1e400", None),
            ("1e-400", None),
            ("0e-400", Some(0.0)),
            ("abc", None),
            ("7 ", None),
            ("  ", None),
            ("5\0junk", Some(5.0)),
            (".", None),
        ] {
            assert_eq!(sort_score(text.as_bytes()), want, "{text:?}");
        }
    }

    #[test]
    fn limits_follow_redis() {
        assert_eq!(limit_range(3, (0, -1)), (0, 2));
        assert_eq!(limit_range(3, (1, 1)), (1, 1));
        assert_eq!(limit_range(3, (-5, 2)), (0, 1));
        assert_eq!(limit_range(3, (5, 2)), (2, 1));
        assert_eq!(limit_range(3, (0, 0)), (0, -1));
        assert_eq!(limit_range(3, (2, i64::MAX)), (2, 2));
        assert_eq!(limit_range(0, (0, -1)), (-1, -2));
    }

    #[test]
    fn store_keys_are_found_like_redis() {
        let line = |s: &str| {
            s.split(' ')
                .map(|w| Bytes::from(w.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&line("sort l store d")), vec![1, 3]);
        assert_eq!(keys(&line("sort l limit store d store e")), vec![1, 6]);
        assert_eq!(keys(&line("sort l by store get store")), vec![1]);
        assert_eq!(keys(&line("sort l store")), vec![1]);
    }
}
