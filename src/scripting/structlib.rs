//! The `struct` library as Redis loads it (Roberto Ierusalimschy's struct,
//! behaviour only): `pack`, `unpack` and `size` over a format of `<` `>` `=`
//! (byte order), `!n` (alignment), `x` (padding), `b B h H l L T i[n] I[n]`
//! (integers), `f d` (floats), `c[n]` (fixed strings; `c0` takes the length
//! from the previous value when unpacking) and `s` (zero-terminated).

use mlua::{Lua, MultiValue, Table, Value};

use super::bit::{arg_error, number_arg};
use super::convert::lua_error;

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            little: true,
            align: 1,
        }
    }
}

/// One format option and its size.
struct Opt {
    opt: u8,
    size: usize,
}

struct Format<'f> {
    fmt: &'f [u8],
    pos: usize,
}

impl Format<'_> {
    fn num(&mut self, default: usize) -> Result<usize, String> {
        if !self.fmt.get(self.pos).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: usize = 0;
        while let Some(d) = self.fmt.get(self.pos).filter(|d| d.is_ascii_digit()) {
            a = a
                .checked_mul(10)
                .and_then(|a| a.checked_add((d - b'0') as usize))
                .filter(|a| *a <= i32::MAX as usize)
                .ok_or("integral size overflow")?;
            self.pos += 1;
        }
        Ok(a)
    }

    fn next(&mut self) -> Result<Option<Opt>, String> {
        let Some(&opt) = self.fmt.get(self.pos) else {
            return Ok(None);
        };
        self.pos += 1;
        let size = match opt {
            b'b' | b'B' | b'x' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.num(1)?,
            b'i' | b'I' => {
                let sz = self.num(4)?;
                if sz > MAX_INT_SIZE {
                    return Err(format!(
                        "integral size {sz} is larger than limit of {MAX_INT_SIZE}"
                    ));
                }
                sz
            }
            _ => 0,
        };
        Ok(Some(Opt { opt, size }))
    }

    /// Byte order, alignment and spaces; anything else is invalid.
    fn control(&mut self, opt: u8, h: &mut Header) -> Result<(), Control> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' | b'=' => h.little = true,
            b'!' => {
                let a = self.num(MAX_ALIGN).map_err(Control::Error)?;
                if !a.is_power_of_two() {
                    return Err(Control::Error(format!("alignment {a} is not a power of 2")));
                }
                h.align = a;
            }
            _ => return Err(Control::Invalid(opt)),
        }
        Ok(())
    }
}

enum Control {
    Error(String),
    Invalid(u8),
}

fn to_align(len: usize, h: &Header, opt: &Opt) -> usize {
    if opt.size == 0 || opt.opt == b'c' {
        return 0;
    }
    let size = opt.size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn control_error(lua: &Lua, fname: &str, c: Control) -> mlua::Error {
    match c {
        Control::Error(e) => lua_error(lua, e),
        Control::Invalid(opt) => lua_error(
            lua,
            format!(
                "bad argument #1 to '{fname}' (invalid format option '{}')",
                opt as char
            ),
        ),
    }
}

fn format_arg(lua: &Lua, args: &MultiValue, fname: &str) -> mlua::Result<Vec<u8>> {
    string_arg(lua, args, 0, fname)
}

fn string_arg(lua: &Lua, args: &MultiValue, i: usize, fname: &str) -> mlua::Result<Vec<u8>> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(n)) => Ok(n.to_string().into_bytes()),
        Some(Value::Number(n)) => Ok(super::convert::lua_number(*n).into_bytes()),
        other => Err(arg_error(lua, i, fname, "string", other)),
    }
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(pack)?)?;
    t.raw_set("unpack", lua.create_function(unpack)?)?;
    t.raw_set("size", lua.create_function(size)?)?;
    Ok(t)
}

fn pack(lua: &Lua, mut args: MultiValue) -> mlua::Result<mlua::LuaString> {
    let fmt = format_arg(lua, &args, "pack")?;
    // The C library pushes a nil marker after its arguments, so a missing
    // argument reads as nil there.
    args.push_back(Value::Nil);
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut out = Vec::new();
    let mut arg = 1;
    while let Some(mut o) = f.next().map_err(|e| lua_error(lua, e))? {
        let pad = to_align(out.len(), &h, &o);
        out.resize(out.len() + pad, 0);
        match o.opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = number_arg(lua, &args, arg, "pack")?;
                arg += 1;
                let mut value = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                let mut buf = vec![0u8; o.size];
                for i in 0..o.size {
                    let at = if h.little { i } else { o.size - 1 - i };
                    buf[at] = (value & 0xff) as u8;
                    value = value.checked_shr(8).unwrap_or(0);
                }
                out.extend_from_slice(&buf);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = number_arg(lua, &args, arg, "pack")? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'd' => {
                let n = number_arg(lua, &args, arg, "pack")?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = string_arg(lua, &args, arg, "pack")?;
                arg += 1;
                if o.size == 0 {
                    o.size = s.len();
                }
                if s.len() < o.size {
                    return Err(lua_error(
                        lua,
                        format!("bad argument #{} to 'pack' (string too short)", arg + 1),
                    ));
                }
                out.extend_from_slice(&s[..o.size]);
                if o.opt == b's' {
                    out.push(0);
                }
            }
            other => f
                .control(other, &mut h)
                .map_err(|c| control_error(lua, "pack", c))?,
        }
    }
    lua.create_string(out)
}

fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let fmt = format_arg(lua, &args, "unpack")?;
    let data = string_arg(lua, &args, 1, "unpack")?;
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1.0,
        Some(_) => number_arg(lua, &args, 2, "unpack")?,
    };
    if start < 1.0 {
        return Err(lua_error(
            lua,
            "bad argument #3 to 'unpack' (offset must be 1 or greater)",
        ));
    }
    let mut pos = start as usize - 1;
    if pos > data.len() {
        return Err(lua_error(
            lua,
            "bad argument #3 to 'unpack' (offset must be 1 or greater)",
        ));
    }
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut out = MultiValue::new();
    let too_short = || lua_error(lua, "bad argument #2 to 'unpack' (data string too short)");
    while let Some(mut o) = f.next().map_err(|e| lua_error(lua, e))? {
        pos += to_align(pos, &h, &o);
        if pos + o.size > data.len() {
            return Err(too_short());
        }
        match o.opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let bytes = &data[pos..pos + o.size];
                let mut l: u64 = 0;
                for i in 0..o.size {
                    let b = if h.little {
                        bytes[o.size - 1 - i]
                    } else {
                        bytes[i]
                    };
                    l = (l << 8) | b as u64;
                }
                let v = if o.opt.is_ascii_lowercase() && o.size > 0 && o.size <= 8 {
                    let mask = u64::MAX.checked_shl((o.size * 8 - 1) as u32).unwrap_or(0);
                    if l & mask != 0 {
                        l |= mask;
                    }
                    l as i64 as f64
                } else {
                    l as f64
                };
                out.push_back(Value::Number(v));
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = data[pos..pos + 4].try_into().unwrap_or_default();
                let v = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push_back(Value::Number(v as f64));
            }
            b'd' => {
                let b: [u8; 8] = data[pos..pos + 8].try_into().unwrap_or_default();
                let v = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push_back(Value::Number(v));
            }
            b'c' => {
                if o.size == 0 {
                    let n = match out.pop_back() {
                        Some(Value::Number(n)) => n as usize,
                        Some(Value::Integer(n)) => n as usize,
                        _ => return Err(lua_error(lua, "format 'c0' needs a previous size")),
                    };
                    if n > data.len() || pos > data.len() - n {
                        return Err(too_short());
                    }
                    o.size = n;
                }
                out.push_back(Value::String(lua.create_string(&data[pos..pos + o.size])?));
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(lua_error(lua, "unfinished string in data"));
                };
                out.push_back(Value::String(lua.create_string(&data[pos..pos + end])?));
                o.size = end + 1;
            }
            other => f
                .control(other, &mut h)
                .map_err(|c| control_error(lua, "unpack", c))?,
        }
        pos += o.size;
    }
    out.push_back(Value::Integer((pos + 1) as _));
    Ok(out)
}

fn size(lua: &Lua, args: MultiValue) -> mlua::Result<i64> {
    let fmt = format_arg(lua, &args, "size")?;
    let mut f = Format { fmt: &fmt, pos: 0 };
    let mut h = Header::default();
    let mut pos = 0usize;
    while let Some(o) = f.next().map_err(|e| lua_error(lua, e))? {
        pos += to_align(pos, &h, &o);
        if o.opt == b's' {
            return Err(lua_error(
                lua,
                "bad argument #1 to 'size' (option 's' has no fixed size)",
            ));
        }
        if o.opt == b'c' && o.size == 0 {
            return Err(lua_error(
                lua,
                "bad argument #1 to 'size' (option 'c0' has no fixed size)",
            ));
        }
        if !o.opt.is_ascii_alphanumeric() {
            f.control(o.opt, &mut h)
                .map_err(|c| control_error(lua, "size", c))?;
        }
        pos += o.size;
    }
    Ok(pos as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("struct", table(&lua).unwrap()).unwrap();
        lua
    }

    #[test]
    fn pack_and_unpack() {
        let lua = lua();
        let s: mlua::LuaString = lua
            .load(r#"return struct.pack(">i2<h", 258, -2)"#)
            .eval()
            .unwrap();
        assert_eq!(s.as_bytes().to_vec(), vec![1, 2, 0xfe, 0xff]);
        let (a, b, next): (f64, String, i64) = lua
            .load(r#"return struct.unpack("<Is", struct.pack("<Is", 7, "hi"))"#)
            .eval()
            .unwrap();
        assert_eq!((a, b.as_str(), next), (7.0, "hi", 8));
        let n: i64 = lua.load(r#"return struct.size("!4bi")"#).eval().unwrap();
        assert_eq!(n, 8);
        let e = lua
            .load(r#"return struct.pack("z")"#)
            .eval::<Value>()
            .unwrap_err();
        assert!(e.to_string().contains("invalid format option 'z'"), "{e}");
    }
}
