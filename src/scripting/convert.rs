//! Conversions between Lua values and replies, exactly as Redis 7.0 makes
//! them, and the `redis` library table.
//!
//! Command reply → Lua (what `redis.call` returns) depends on the protocol the
//! script chose with `redis.setresp`; Lua → reply (what the script returns)
//! follows Redis's `luaReplyToRedisReply`: numbers are truncated to integers,
//! a table is an array up to its first nil unless it is one of the special
//! single-field tables (`err`, `ok`, `double`, `big_number`, `map`, `set`).

use std::sync::Arc;

use bytes::Bytes;
use mlua::{Lua, MultiValue, Table, Value};

use super::raw::RunState;
use crate::reply::Reply;

/// Why a Rust function of the sandbox raised an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptError {
    /// A command's error reply raised by `redis.call`: Lua code sees it as
    /// the error table `{err=text}`.
    Reply(String),
    /// SCRIPT KILL, FUNCTION KILL or SHUTDOWN NOSAVE stopped the script.
    Killed,
    /// A library error, worded like Lua's `luaL_error` (position included).
    Message(String),
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptError::Reply(t) | ScriptError::Message(t) => f.write_str(t),
            ScriptError::Killed => f.write_str("Script killed"),
        }
    }
}

impl std::error::Error for ScriptError {}

/// What an error from Rust code in the sandbox stands for.
pub fn classify(e: &mlua::Error) -> ScriptError {
    match e {
        mlua::Error::CallbackError { cause, .. } => classify(cause),
        mlua::Error::ExternalError(inner) => match inner.downcast_ref::<ScriptError>() {
            Some(s) => s.clone(),
            None => ScriptError::Message(inner.to_string()),
        },
        mlua::Error::RuntimeError(msg) => ScriptError::Message(msg.clone()),
        mlua::Error::MemoryError(_) => ScriptError::Message("not enough memory".into()),
        other => ScriptError::Message(other.to_string()),
    }
}

/// An error raised by a library function called from Lua: prefixed with the
/// calling Lua function's position, as `luaL_error` does.
pub fn lua_error(lua: &Lua, msg: impl std::fmt::Display) -> mlua::Error {
    let place = lua
        .inspect_stack(1, |d| {
            let s = d.source();
            match (s.what, s.short_src, d.current_line()) {
                ("C", _, _) | (_, None, _) | (_, _, None) => String::new(),
                (_, Some(src), Some(line)) => format!("{src}:{line}: "),
            }
        })
        .unwrap_or_default();
    mlua::Error::external(ScriptError::Message(format!("{place}{msg}")))
}

/// The error value `pcall` hands to Lua code: messages for Rust errors and
/// `{err=...}` tables, anything else as it is.
pub fn error_value_to_message(lua: &Lua, err: Value) -> mlua::Result<Value> {
    match err {
        Value::Error(e) => Ok(Value::String(lua.create_string(classify(&e).to_string())?)),
        Value::Table(t) => match t.raw_get::<Value>("err")? {
            s @ Value::String(_) => Ok(s),
            _ => Ok(Value::Table(t)),
        },
        other => Ok(other),
    }
}

/// A value as Lua's `tostring` would print it (for error messages).
pub fn tostring(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => lua_number(*n),
        Value::String(s) => s.to_string_lossy(),
        Value::Error(e) => classify(e).to_string(),
        other => other.type_name().to_string(),
    }
}

/// A Lua number as Lua 5.1 prints it (`%.14g`).
pub fn lua_number(n: f64) -> String {
    format_g(n, 14)
}

/// C's `%.<precision>g`.
pub fn format_g(x: f64, precision: usize) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = precision.max(1);
    // An integral value below 10^p prints as that integer (its exponent is
    // below the precision): exact, and far cheaper than the exact-digits
    // formatting below. Scripts pass counters to redis.call all the time.
    if x.fract() == 0.0 && x.abs() < 10f64.powi(p.min(18) as i32) {
        return (x as i64).to_string();
    }
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A Lua number as a reply integer: C's `(long long)` cast on x86, where NaN
/// and out-of-range values become the minimum.
pub fn number_to_integer(n: f64) -> i64 {
    // 2^63: the first double past i64's range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// An error of the `redis` library: raised as an error table, without position.
fn redis_error(msg: &str) -> mlua::Error {
    mlua::Error::external(ScriptError::Reply(format!("ERR {msg}")))
}

/// The `redis` table but `call` and `pcall` (see [`super::raw`]).
pub fn redis_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("REDIS_VERSION", "7.0.15")?;
    t.raw_set("REDIS_VERSION_NUM", 0x07000f)?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        t.raw_set(name, level)?;
    }
    for (name, v) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        t.raw_set(name, v)?;
    }
    t.raw_set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| {
            let text = match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => {
                    let bytes = s.as_bytes().to_vec();
                    reply_error_text(&bytes)
                }
                _ => "ERR wrong number or type of arguments".into(),
            };
            let t = lua.create_table()?;
            t.raw_set("err", text)?;
            Ok(t)
        })?,
    )?;
    t.raw_set(
        "status_reply",
        lua.create_function(|lua, args: MultiValue| {
            let t = lua.create_table()?;
            match (args.len(), args.front()) {
                (1, Some(s @ Value::String(_))) => t.raw_set("ok", s.clone())?,
                _ => t.raw_set("err", "ERR wrong number or type of arguments")?,
            }
            Ok(t)
        })?,
    )?;
    t.raw_set(
        "sha1hex",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(redis_error("wrong number of arguments"));
            }
            let bytes = match &args[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Integer(i) => i.to_string().into_bytes(),
                Value::Number(n) => lua_number(*n).into_bytes(),
                _ => Vec::new(),
            };
            Ok(super::sha1hex(&bytes))
        })?,
    )?;
    t.raw_set(
        "log",
        lua.create_function(|_, args: MultiValue| {
            if args.len() < 2 {
                return Err(redis_error("redis.log() requires two arguments or more."));
            }
            let level = match &args[0] {
                Value::Integer(i) => *i,
                Value::Number(n) => *n as i64,
                _ => return Err(redis_error("First argument must be a number (log level).")),
            };
            if !(0..=3).contains(&level) {
                return Err(redis_error("Invalid debug level."));
            }
            let text: Vec<String> = args.iter().skip(1).map(tostring).collect();
            let text = text.join(" ");
            match level {
                3 => tracing::warn!("{text}"),
                2 => tracing::info!("{text}"),
                _ => tracing::debug!("{text}"),
            }
            Ok(())
        })?,
    )?;
    t.raw_set(
        "setresp",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(redis_error("redis.setresp() requires one argument."));
            }
            let v = match &args[0] {
                Value::Integer(i) => *i,
                Value::Number(n) => *n as i64,
                _ => 0,
            };
            if v != 2 && v != 3 {
                return Err(redis_error("RESP version must be 2 or 3."));
            }
            if let Some(run) = lua.app_data_ref::<Arc<RunState>>() {
                run.resp.set(v as u8);
            }
            Ok(())
        })?,
    )?;
    t.raw_set(
        "set_repl",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(redis_error("redis.set_repl() requires two arguments."));
            }
            let v = match &args[0] {
                Value::Integer(i) => *i,
                Value::Number(n) => *n as i64,
                _ => -1,
            };
            if !(0..=3).contains(&v) {
                return Err(redis_error(
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ));
            }
            Ok(())
        })?,
    )?;
    t.raw_set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    let noop = lua.create_function(|_, _: MultiValue| Ok(()))?;
    t.raw_set(
        "breakpoint",
        lua.create_function(|_, _: MultiValue| Ok(false))?,
    )?;
    t.raw_set("debug", noop)?;
    t.raw_set(
        "acl_check_cmd",
        lua.create_function(|_, args: MultiValue| {
            if args.is_empty() {
                return Err(redis_error(
                    "Please specify at least one argument for this redis lib call",
                ));
            }
            Ok(true)
        })?,
    )?;
    Ok(t)
}

/// The text of an error reply built from `msg` as Redis's
/// `luaPushErrorBuff` builds it: a leading `-` means the first word is the
/// error code; a message without one gets `ERR`.
pub(crate) fn reply_error_text(msg: &[u8]) -> String {
    let text = String::from_utf8_lossy(msg);
    let dashed = if text.starts_with('-') {
        text.to_string()
    } else {
        format!("-{text}")
    };
    let body = &dashed[1..];
    let (code, rest) = match body.split_once(' ') {
        Some((code, rest)) => (code, rest),
        None => ("ERR", body),
    };
    let rest = rest.trim_matches(['\r', '\n']);
    format!("{code} {rest}")
}

/// Nested tables deeper than this are cut (Redis's Lua stack would overflow).
const MAX_DEPTH: usize = 1000;

/// A script's return value as the reply Redis sends; `resp` is the protocol
/// the script chose with `redis.setresp`.
pub fn lua_to_reply(value: &Value, resp: u8) -> Reply {
    to_reply(value, resp, 0)
}

fn to_reply(value: &Value, resp: u8, depth: usize) -> Reply {
    match value {
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp == 3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Integer(1),
        Value::Boolean(false) => Reply::Null,
        Value::Integer(i) => Reply::Integer(*i),
        Value::Number(n) => Reply::Integer(number_to_integer(*n)),
        Value::Table(t) if depth < MAX_DEPTH => table_reply(t, resp, depth),
        _ => Reply::Null,
    }
}

fn table_reply(t: &Table, resp: u8, depth: usize) -> Reply {
    let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(s) = field("err") {
        return Reply::Error(super::one_line(
            s.to_string_lossy().trim_end_matches(['\r', '\n']),
        ));
    }
    if let Value::String(s) = field("ok") {
        return Reply::Simple(super::one_line(&s.to_string_lossy()));
    }
    match field("double") {
        Value::Number(n) => return Reply::Line3(b',', double_text(n)),
        Value::Integer(i) => return Reply::Line3(b',', double_text(i as f64)),
        _ => {}
    }
    if let Value::String(s) = field("big_number") {
        return Reply::Line3(b'(', super::one_line(&s.to_string_lossy()));
    }
    if let Value::Table(m) = field("map") {
        let mut pairs = Vec::new();
        for (k, v) in m.pairs::<Value, Value>().flatten() {
            pairs.push((to_reply(&k, resp, depth + 1), to_reply(&v, resp, depth + 1)));
        }
        return Reply::Map(pairs);
    }
    if let Value::Table(s) = field("set") {
        let mut items = Vec::new();
        for (k, _) in s.pairs::<Value, Value>().flatten() {
            items.push(to_reply(&k, resp, depth + 1));
        }
        return Reply::Set(items);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_reply(&v, resp, depth + 1)),
        }
    }
    Reply::Array(items)
}

/// A double as Redis 7.0 replies with it (`%.17g`, `inf`, `-inf`, `nan`).
fn double_text(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else {
        format_g(d, 17)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_g() {
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(3.5, 17), "3.5");
        assert_eq!(format_g(10.0, 17), "10");
        assert_eq!(format_g(-42.0, 17), "-42");
        assert_eq!(format_g(99_999_999_999_999_984.0, 17), "99999999999999984");
        assert_eq!(format_g(1e17, 17), "1e+17");
        assert_eq!(format_g(1e14, 14), "1e+14");
        assert_eq!(format_g(123.0, 2), "1.2e+02");
        assert_eq!(format_g(1e20, 17), "1e+20");
        assert_eq!(
            format_g(1e-5, 14),
            "1.0000000000000001e-05".replace("1.0000000000000001", "1")
        );
        assert_eq!(format_g(123456.789, 14), "123456.789");
        assert_eq!(format_g(f64::INFINITY, 17), "inf");
    }

    #[test]
    fn error_codes_like_redis() {
        assert_eq!(reply_error_text(b"My err"), "My err");
        assert_eq!(reply_error_text(b"-My err"), "My err");
        assert_eq!(reply_error_text(b"x"), "ERR x");
        assert_eq!(
            reply_error_text(b"WRONGTYPE Operation"),
            "WRONGTYPE Operation"
        );
    }

    #[test]
    fn numbers_truncate_like_c() {
        assert_eq!(number_to_integer(3.99), 3);
        assert_eq!(number_to_integer(-3.99), -3);
        assert_eq!(number_to_integer(1e300), i64::MIN);
        assert_eq!(number_to_integer(f64::NAN), i64::MIN);
    }
}
