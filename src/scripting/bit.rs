//! The `bit` library (LuaBitOp's interface, as Redis loads it): 32-bit
//! operations on Lua numbers, results as signed 32-bit numbers.

use mlua::{Lua, MultiValue, Table, Value};

use super::convert::lua_error;

/// A Lua number or numeric string argument, as `luaL_checknumber` takes it.
pub fn number_arg(lua: &Lua, args: &MultiValue, i: usize, fname: &str) -> mlua::Result<f64> {
    let Some(v) = args.get(i) else {
        return Err(arg_error(lua, i, fname, "number", None));
    };
    match v {
        Value::Integer(n) => Ok(*n as f64),
        Value::Number(n) => Ok(*n),
        Value::String(s) => {
            let text = s.to_string_lossy();
            parse_lua_number(&text).ok_or_else(|| arg_error(lua, i, fname, "number", Some(v)))
        }
        _ => Err(arg_error(lua, i, fname, "number", Some(v))),
    }
}

/// Lua's string to number conversion (decimal or `0x` hex, spaces around).
pub fn parse_lua_number(text: &str) -> Option<f64> {
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    if t.is_empty() || t.eq_ignore_ascii_case("nan") || t.to_ascii_lowercase().contains("inf") {
        return None;
    }
    t.parse().ok()
}

/// `luaL_argerror`'s text for argument `i` (0-based).
pub fn arg_error(
    lua: &Lua,
    i: usize,
    fname: &str,
    expected: &str,
    got: Option<&Value>,
) -> mlua::Error {
    let got = got.map_or("no value", lua_type_name);
    // Called straight from a C function (pcall), Lua cannot name the callee.
    let called_from_c = lua.inspect_stack(1, |d| d.source().what == "C");
    let fname = if called_from_c.unwrap_or(false) {
        "?"
    } else {
        fname
    };
    lua_error(
        lua,
        format!(
            "bad argument #{} to '{fname}' ({expected} expected, got {got})",
            i + 1
        ),
    )
}

/// A value's Lua type name.
pub fn lua_type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// LuaBitOp's normalisation: round to an integer, keep the low 32 bits.
pub fn tobit(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    let r = n.round_ties_even();
    r.rem_euclid(4_294_967_296.0) as u64 as u32 as i32
}

fn bits(lua: &Lua, args: &MultiValue, i: usize, fname: &str) -> mlua::Result<u32> {
    Ok(tobit(number_arg(lua, args, i, fname)?) as u32)
}

type Unary = fn(u32) -> u32;
type Shift = fn(u32, u32) -> u32;

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let unary: [(&'static str, Unary); 3] = [
        ("tobit", |b| b),
        ("bnot", |b| !b),
        ("bswap", |b| b.swap_bytes()),
    ];
    for (name, op) in unary {
        t.raw_set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                Ok(op(bits(lua, &args, 0, name)?) as i32 as f64)
            })?,
        )?;
    }
    let folds: [(&'static str, Shift); 3] = [
        ("band", |a, b| a & b),
        ("bor", |a, b| a | b),
        ("bxor", |a, b| a ^ b),
    ];
    for (name, op) in folds {
        t.raw_set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                let mut acc = bits(lua, &args, 0, name)?;
                for i in 1..args.len() {
                    acc = op(acc, bits(lua, &args, i, name)?);
                }
                Ok(acc as i32 as f64)
            })?,
        )?;
    }
    let shifts: [(&'static str, Shift); 5] = [
        ("lshift", |b, n| b << (n & 31)),
        ("rshift", |b, n| b >> (n & 31)),
        ("arshift", |b, n| ((b as i32) >> (n & 31)) as u32),
        ("rol", |b, n| b.rotate_left(n & 31)),
        ("ror", |b, n| b.rotate_right(n & 31)),
    ];
    for (name, op) in shifts {
        t.raw_set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                let b = bits(lua, &args, 0, name)?;
                let n = bits(lua, &args, 1, name)?;
                Ok(op(b, n) as i32 as f64)
            })?,
        )?;
    }
    t.raw_set(
        "tohex",
        lua.create_function(|lua, args: MultiValue| {
            let b = bits(lua, &args, 0, "tohex")?;
            let n = match args.get(1) {
                None => 8,
                Some(_) => bits(lua, &args, 1, "tohex")? as i32,
            };
            Ok(tohex(b, n))
        })?,
    )?;
    Ok(t)
}

/// `bit.tohex(b, n)`: `n` hex digits (upper case when negative), at most 8.
pub fn tohex(mut b: u32, n: i32) -> String {
    let (digits, n) = if n < 0 {
        (b"0123456789ABCDEF", n.unsigned_abs().min(8) as usize)
    } else {
        (b"0123456789abcdef", (n as usize).min(8))
    };
    let mut buf = vec![b'0'; n];
    for slot in buf.iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_like_luabitop() {
        assert_eq!(tobit(4294967295.0), -1);
        assert_eq!(tobit(4294967296.0), 0);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(3.5), 4);
    }

    #[test]
    fn hex() {
        assert_eq!(tohex(255, 8), "000000ff");
        assert_eq!(tohex(255, -4), "00FF");
        assert_eq!(tohex(0xdeadbeef, 2), "ef");
        assert_eq!(tohex(1, 20), "00000001");
    }

    #[test]
    fn runs_in_lua() {
        let lua = Lua::new();
        lua.globals().set("bit", table(&lua).unwrap()).unwrap();
        let r: f64 = lua.load("return bit.band(0xff, 0x0f, 7)").eval().unwrap();
        assert_eq!(r, 7.0);
        let r: f64 = lua.load("return bit.lshift(1, 31)").eval().unwrap();
        assert_eq!(r, -2147483648.0);
        let r: String = lua.load("return bit.tohex(bit.bnot(0))").eval().unwrap();
        assert_eq!(r, "ffffffff");
    }
}
