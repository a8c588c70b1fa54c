//! The `cmsgpack` library as Redis loads it (lua-cmsgpack 0.4's behaviour):
//! `pack` encodes each argument and concatenates them, `unpack` returns every
//! value of a buffer, `unpack_one` / `unpack_limit` step through it.
//!
//! Numbers with an integral value are packed as the smallest integer type,
//! others as a float when that is exact, else a double. A table whose keys
//! are exactly 1..n is an array, any other a map; tables nested deeper than
//! 16 are packed as nil.

use mlua::{Lua, MultiValue, Table, Value};

use super::bit::arg_error;
use super::convert::lua_error;

const MAX_NESTING: usize = 16;

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("_NAME", "lua-cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(lua_error(
                    lua,
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)",
                ));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                pack(v, 0, &mut out)?;
            }
            lua.create_string(out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: MultiValue| {
            let data = string_arg(lua, &args, 0, "unpack")?;
            let (values, _) = unpack(lua, &data, 0, 0).map_err(|e| lua_error(lua, e))?;
            Ok(MultiValue::from_iter(values))
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: MultiValue| {
            let data = string_arg(lua, &args, 0, "unpack_one")?;
            let offset = int_arg(&args, 1);
            unpack_stepped(lua, &data, 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: MultiValue| {
            let data = string_arg(lua, &args, 0, "unpack_limit")?;
            let limit = int_arg(&args, 1);
            let offset = int_arg(&args, 2);
            unpack_stepped(lua, &data, limit, offset)
        })?,
    )?;
    Ok(t)
}

fn string_arg(lua: &Lua, args: &MultiValue, i: usize, fname: &str) -> mlua::Result<Vec<u8>> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(n)) => Ok(n.to_string().into_bytes()),
        Some(Value::Number(n)) => Ok(super::convert::lua_number(*n).into_bytes()),
        other => Err(arg_error(lua, i, fname, "string", other)),
    }
}

fn int_arg(args: &MultiValue, i: usize) -> i64 {
    match args.get(i) {
        Some(Value::Integer(n)) => *n,
        Some(Value::Number(n)) => *n as i64,
        _ => 0,
    }
}

/// `unpack_one` / `unpack_limit`: the offset after the values (or -1 at the
/// end of the buffer), then the values.
fn unpack_stepped(lua: &Lua, data: &[u8], limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    if offset < 0 || limit < 0 {
        return Err(lua_error(
            lua,
            format!("Invalid request to unpack with offset of {offset} and limit of {limit}."),
        ));
    }
    let offset = offset as usize;
    if offset > data.len() {
        return Err(lua_error(
            lua,
            format!(
                "Start offset {offset} greater than input length {}.",
                data.len()
            ),
        ));
    }
    let (values, used) =
        unpack(lua, &data[offset..], limit as usize, 0).map_err(|e| lua_error(lua, e))?;
    let next = offset + used;
    let next = if next >= data.len() { -1 } else { next as i64 };
    let mut out = MultiValue::new();
    out.push_back(Value::Integer(next as _));
    out.extend(values);
    Ok(out)
}

fn pack(v: &Value, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => pack_int(*i, out),
        Value::Number(n) => pack_number(*n, out),
        Value::String(s) => pack_str(&s.as_bytes(), out),
        Value::Table(t) if depth < MAX_NESTING => pack_table(t, depth + 1, out)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn pack_number(n: f64, out: &mut Vec<u8>) {
    if n.is_finite() && n.fract() == 0.0 && n >= i64::MIN as f64 && n < 9.223_372_036_854_776e18 {
        pack_int(n as i64, out)
    } else if (n as f32) as f64 == n || n.is_nan() {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        let u = n as u64;
        if u <= 127 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_str(s: &[u8], out: &mut Vec<u8>) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn header(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn pack_table(t: &Table, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    let mut count = 0usize;
    let mut max = 0i64;
    let mut is_array = true;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        count += 1;
        match k {
            Value::Integer(i) if i >= 1 => max = max.max(i),
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => max = max.max(n as i64),
            _ => is_array = false,
        }
    }
    if is_array && max as usize == count {
        header(out, count, 0x90, 0xdc, 0xdd);
        for i in 1..=count {
            let v: Value = t.raw_get(i)?;
            pack(&v, depth, out)?;
        }
    } else {
        header(out, count, 0x80, 0xde, 0xdf);
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            pack(&k, depth, out)?;
            pack(&v, depth, out)?;
        }
    }
    Ok(())
}

const MISSING: &str = "Missing bytes in input.";
const BAD: &str = "Bad data format in input.";
const MAX_DECODE_DEPTH: usize = 1000;

/// Decodes up to `limit` values (0 = all) from `data`; returns them and the
/// bytes used.
fn unpack(
    lua: &Lua,
    data: &[u8],
    limit: usize,
    depth: usize,
) -> Result<(Vec<Value>, usize), String> {
    let mut pos = 0;
    let mut values = Vec::new();
    while pos < data.len() && (limit == 0 || values.len() < limit) {
        let v = decode(lua, data, &mut pos, depth)?;
        values.push(v);
    }
    Ok((values, pos))
}

fn take<'d>(data: &'d [u8], pos: &mut usize, n: usize) -> Result<&'d [u8], String> {
    let end = pos.checked_add(n).ok_or(MISSING)?;
    let s = data.get(*pos..end).ok_or(MISSING)?;
    *pos = end;
    Ok(s)
}

fn be(data: &[u8], pos: &mut usize, n: usize) -> Result<u64, String> {
    Ok(take(data, pos, n)?
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | b as u64))
}

fn decode(lua: &Lua, data: &[u8], pos: &mut usize, depth: usize) -> Result<Value, String> {
    let lerr = |e: mlua::Error| e.to_string();
    // Nesting is bounded so a crafted buffer cannot exhaust the stack.
    if depth > MAX_DECODE_DEPTH {
        return Err(BAD.into());
    }
    let c = take(data, pos, 1)?[0];
    let int = |v: i64| Value::Number(v as f64);
    Ok(match c {
        0x00..=0x7f => int(c as i64),
        0xe0..=0xff => int(c as i8 as i64),
        0xc0 => Value::Nil,
        0xc2 => Value::Boolean(false),
        0xc3 => Value::Boolean(true),
        0xcc => int(be(data, pos, 1)? as i64),
        0xcd => int(be(data, pos, 2)? as i64),
        0xce => int(be(data, pos, 4)? as i64),
        0xcf => Value::Number(be(data, pos, 8)? as f64),
        0xd0 => int(be(data, pos, 1)? as u8 as i8 as i64),
        0xd1 => int(be(data, pos, 2)? as u16 as i16 as i64),
        0xd2 => int(be(data, pos, 4)? as u32 as i32 as i64),
        0xd3 => int(be(data, pos, 8)? as i64),
        0xca => Value::Number(f32::from_bits(be(data, pos, 4)? as u32) as f64),
        0xcb => Value::Number(f64::from_bits(be(data, pos, 8)?)),
        0xa0..=0xbf | 0xd9 | 0xda | 0xdb | 0xc4 | 0xc5 | 0xc6 => {
            let n = match c {
                0xa0..=0xbf => (c & 0x1f) as usize,
                0xd9 | 0xc4 => be(data, pos, 1)? as usize,
                0xda | 0xc5 => be(data, pos, 2)? as usize,
                _ => be(data, pos, 4)? as usize,
            };
            Value::String(lua.create_string(take(data, pos, n)?).map_err(lerr)?)
        }
        0x90..=0x9f | 0xdc | 0xdd => {
            let n = match c {
                0x90..=0x9f => (c & 0x0f) as usize,
                0xdc => be(data, pos, 2)? as usize,
                _ => be(data, pos, 4)? as usize,
            };
            let t = lua.create_table().map_err(lerr)?;
            for i in 1..=n {
                let v = decode(lua, data, pos, depth + 1)?;
                t.raw_set(i, v).map_err(lerr)?;
            }
            Value::Table(t)
        }
        0x80..=0x8f | 0xde | 0xdf => {
            let n = match c {
                0x80..=0x8f => (c & 0x0f) as usize,
                0xde => be(data, pos, 2)? as usize,
                _ => be(data, pos, 4)? as usize,
            };
            let t = lua.create_table().map_err(lerr)?;
            for _ in 0..n {
                let k = decode(lua, data, pos, depth + 1)?;
                let v = decode(lua, data, pos, depth + 1)?;
                if !matches!(k, Value::Nil) {
                    t.raw_set(k, v).map_err(lerr)?;
                }
            }
            Value::Table(t)
        }
        _ => return Err(BAD.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("cmsgpack", table(&lua).unwrap()).unwrap();
        lua
    }

    #[test]
    fn packs_like_lua_cmsgpack() {
        let lua = lua();
        let s: mlua::LuaString = lua
            .load(r#"return cmsgpack.pack({1, 2, 3}, "ab", -1, 300, 1.5, true)"#)
            .eval()
            .unwrap();
        assert_eq!(
            s.as_bytes().to_vec(),
            vec![
                0x93, 1, 2, 3, 0xa2, b'a', b'b', 0xff, 0xcd, 0x01, 0x2c, 0xca, 0x3f, 0xc0, 0, 0,
                0xc3
            ]
        );
    }

    #[test]
    fn round_trips() {
        let lua = lua();
        let ok: bool = lua
            .load(
                r#"local a, b, c = cmsgpack.unpack(cmsgpack.pack({x = {1, 2}}, "s", 0.1))
                   return a.x[2] == 2 and b == "s" and c == 0.1"#,
            )
            .eval()
            .unwrap();
        assert!(ok);
        let e = lua
            .load(r#"return cmsgpack.unpack("\147\1")"#)
            .eval::<Value>()
            .unwrap_err();
        assert!(e.to_string().contains("Missing bytes in input."), "{e}");
    }
}
