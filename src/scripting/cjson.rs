//! The `cjson` library as Redis loads it (lua-cjson 2.1's behaviour):
//! `encode` and `decode` with its defaults (14 significant digits, sparse
//! arrays refused past a ratio, `null` as a light userdata, nesting limited
//! to 1000), its error texts, and the configuration functions.

use mlua::{Lua, MultiValue, Table, Value};

use super::bit::{arg_error, lua_type_name};
use super::convert::{format_g, lua_error};

/// lua-cjson's default nesting limit for both directions.
const MAX_DEPTH: usize = 1000;
/// Default `encode_sparse_array` settings: an array whose largest index is
/// over `SPARSE_SAFE` and more than `SPARSE_RATIO` times its item count is
/// refused.
const SPARSE_RATIO: usize = 2;
const SPARSE_SAFE: usize = 10;

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    t.raw_set("null", Value::NULL)?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(lua_error(
                    lua,
                    "bad argument #1 to 'encode' (expected 1 argument)",
                ));
            }
            let mut out = Vec::new();
            encode(&args[0], 0, &mut out).map_err(|e| lua_error(lua, e))?;
            lua.create_string(out)
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return Err(lua_error(
                    lua,
                    "bad argument #1 to 'decode' (expected 1 argument)",
                ));
            }
            let text = match &args[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Integer(i) => i.to_string().into_bytes(),
                Value::Number(n) => super::convert::lua_number(*n).into_bytes(),
                other => return Err(arg_error(lua, 0, "decode", "string", Some(other))),
            };
            let mut p = Parser {
                lua,
                s: &text,
                pos: 0,
                depth: 0,
            };
            p.document().map_err(|e| lua_error(lua, e))
        })?,
    )?;
    // The configuration functions answer with the defaults Redis runs with.
    for (name, values) in [
        ("encode_sparse_array", &["false", "2", "10"][..]),
        ("encode_max_depth", &["1000"][..]),
        ("decode_max_depth", &["1000"][..]),
        ("encode_number_precision", &["14"][..]),
        ("encode_keep_buffer", &["true"][..]),
        ("encode_invalid_numbers", &["false"][..]),
        ("decode_invalid_numbers", &["true"][..]),
    ] {
        let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        t.raw_set(
            name,
            lua.create_function(move |_, _: MultiValue| {
                Ok(MultiValue::from_iter(values.iter().map(
                    |v| match v.as_str() {
                        "true" => Value::Boolean(true),
                        "false" => Value::Boolean(false),
                        n => Value::Number(n.parse().unwrap_or(0.0)),
                    },
                )))
            })?,
        )?;
    }
    t.raw_set(
        "new",
        lua.create_function(|lua, _: MultiValue| {
            let g: Table = lua.globals().get("cjson")?;
            Ok(g)
        })?,
    )?;
    Ok(t)
}

fn encode(v: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => out.extend_from_slice(format_g(*i as f64, 14).as_bytes()),
        Value::Number(n) => {
            if !n.is_finite() {
                return Err("Cannot serialise number: must not be NaN or Inf".into());
            }
            out.extend_from_slice(format_g(*n, 14).as_bytes())
        }
        Value::String(s) => escape(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth + 1 > MAX_DEPTH {
                return Err(format!(
                    "Cannot serialise, excessive nesting ({})",
                    depth + 1
                ));
            }
            encode_table(t, depth + 1, out)?
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                lua_type_name(other)
            ))
        }
    }
    Ok(())
}

/// `Some(n)` when every key is a positive integer (an array of length n).
fn array_length(t: &Table) -> Result<Option<usize>, String> {
    let mut max = 0usize;
    let mut items = 0usize;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let index = match k {
            Value::Integer(i) if i >= 1 => i as usize,
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => n as usize,
            _ => return Ok(None),
        };
        max = max.max(index);
        items += 1;
    }
    if max > SPARSE_SAFE && max > items * SPARSE_RATIO {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

fn encode_table(t: &Table, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    match array_length(t)? {
        Some(n) if n > 0 => {
            out.push(b'[');
            for i in 1..=n {
                if i > 1 {
                    out.push(b',');
                }
                let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                encode(&v, depth, out)?;
            }
            out.push(b']');
        }
        _ => {
            out.push(b'{');
            let mut first = true;
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                if !first {
                    out.push(b',');
                }
                first = false;
                match &k {
                    Value::String(s) => escape(&s.as_bytes(), out),
                    Value::Integer(i) => escape(format_g(*i as f64, 14).as_bytes(), out),
                    Value::Number(n) => escape(format_g(*n, 14).as_bytes(), out),
                    other => {
                        return Err(format!(
                            "Cannot serialise {}: table key must be a number or string",
                            lua_type_name(other)
                        ))
                    }
                }
                out.push(b':');
                encode(&v, depth, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn escape(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// A token's name in lua-cjson's error texts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num,
    Bool,
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Num => "T_NUMBER",
            Tok::Bool => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(msg) => msg,
        }
    }
}

struct Parser<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
    depth: usize,
}

/// A token with its value and the (1-based) character it starts at.
struct Token {
    tok: Tok,
    at: usize,
    value: Value,
}

impl Parser<'_> {
    fn document(&mut self) -> Result<Value, String> {
        let t = self.next()?;
        let v = self.value(t)?;
        let end = self.next()?;
        if end.tok != Tok::End {
            return Err(expected("the end", &end));
        }
        Ok(v)
    }

    fn value(&mut self, t: Token) -> Result<Value, String> {
        match t.tok {
            Tok::Str | Tok::Num | Tok::Bool | Tok::Null => Ok(t.value),
            Tok::ObjBegin => self.object(t.at),
            Tok::ArrBegin => self.array(t.at),
            _ => Err(expected("value", &t)),
        }
    }

    fn nest(&mut self, at: usize) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "Found too many nested data structures ({}) at character {at}",
                self.depth
            ));
        }
        Ok(())
    }

    fn object(&mut self, at: usize) -> Result<Value, String> {
        self.nest(at)?;
        let t = self.lua.create_table().map_err(|e| e.to_string())?;
        let mut tok = self.next()?;
        if tok.tok == Tok::ObjEnd {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        loop {
            if tok.tok != Tok::Str {
                return Err(expected("object key string", &tok));
            }
            let key = tok.value;
            let colon = self.next()?;
            if colon.tok != Tok::Colon {
                return Err(expected("colon", &colon));
            }
            let vt = self.next()?;
            let v = self.value(vt)?;
            t.raw_set(key, v).map_err(|e| e.to_string())?;
            let sep = self.next()?;
            match sep.tok {
                Tok::ObjEnd => break,
                Tok::Comma => tok = self.next()?,
                _ => return Err(expected("comma or object end", &sep)),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn array(&mut self, at: usize) -> Result<Value, String> {
        self.nest(at)?;
        let t = self.lua.create_table().map_err(|e| e.to_string())?;
        let mut tok = self.next()?;
        if tok.tok == Tok::ArrEnd {
            self.depth -= 1;
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            let v = self.value(tok)?;
            t.raw_set(i, v).map_err(|e| e.to_string())?;
            i += 1;
            let sep = self.next()?;
            match sep.tok {
                Tok::ArrEnd => break,
                Tok::Comma => tok = self.next()?,
                _ => return Err(expected("comma or array end", &sep)),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(t))
    }

    fn next(&mut self) -> Result<Token, String> {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let at = self.pos + 1;
        let simple = |tok| Token {
            tok,
            at,
            value: Value::Nil,
        };
        let Some(&c) = self.s.get(self.pos) else {
            return Ok(simple(Tok::End));
        };
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b':' => Some(Tok::Colon),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(tok) = single {
            self.pos += 1;
            return Ok(simple(tok));
        }
        if c == b'"' {
            return self.string(at);
        }
        for (word, value) in [
            (&b"true"[..], Value::Boolean(true)),
            (&b"false"[..], Value::Boolean(false)),
            (&b"null"[..], Value::NULL),
        ] {
            if self.s[self.pos..].starts_with(word) {
                self.pos += word.len();
                let tok = if matches!(value, Value::Boolean(_)) {
                    Tok::Bool
                } else {
                    Tok::Null
                };
                return Ok(Token { tok, at, value });
            }
        }
        if c == b'-'
            || c.is_ascii_digit()
            || c == b'.'
            || c == b'+'
            || c == b'I'
            || c == b'N'
            || c == b'i'
            || c == b'n'
        {
            return Ok(self.number(at));
        }
        Ok(simple(Tok::Error("invalid token")))
    }

    fn number(&mut self, at: usize) -> Token {
        let start = self.pos;
        let mut end = start;
        while end < self.s.len()
            && matches!(self.s[end], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'x' | b'X' | b'a'..=b'd' | b'f' | b'A'..=b'D' | b'F' | b'i' | b'n' | b'I' | b'N' | b't' | b'y' | b'T' | b'Y')
        {
            end += 1;
        }
        let text = String::from_utf8_lossy(&self.s[start..end]);
        // strtod's longest valid prefix.
        let mut best = None;
        for cut in (1..=text.len()).rev() {
            if let Some(v) = parse_strtod(&text[..cut]) {
                best = Some((v, cut));
                break;
            }
        }
        match best {
            Some((v, cut)) => {
                self.pos = start + cut;
                Token {
                    tok: Tok::Num,
                    at,
                    value: Value::Number(v),
                }
            }
            None => Token {
                tok: Tok::Error("invalid number"),
                at,
                value: Value::Nil,
            },
        }
    }

    fn string(&mut self, at: usize) -> Result<Token, String> {
        let mut out = Vec::new();
        let mut i = self.pos + 1;
        // lua-cjson reports string errors where it stopped reading.
        let bad = |msg, i: usize| Token {
            tok: Tok::Error(msg),
            at: i + 1,
            value: Value::Nil,
        };
        loop {
            let Some(&c) = self.s.get(i) else {
                return Ok(bad("unexpected end of string", i));
            };
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(i + 1) else {
                        return Ok(bad("unexpected end of string", i));
                    };
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => match self.unicode(i, &mut out) {
                            Some(len) => {
                                i += len;
                                continue;
                            }
                            None => return Ok(bad("invalid unicode escape code", i)),
                        },
                        _ => return Ok(bad("invalid escape code", i)),
                    }
                    i += 2;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        self.pos = i + 1;
        let value = Value::String(self.lua.create_string(out).map_err(|e| e.to_string())?);
        Ok(Token {
            tok: Tok::Str,
            at,
            value,
        })
    }

    /// Decodes `\uXXXX` (and a surrogate pair) at `i`; returns the bytes consumed.
    fn unicode(&self, i: usize, out: &mut Vec<u8>) -> Option<usize> {
        let hex = |at: usize| -> Option<u32> {
            let h = self.s.get(at..at + 4)?;
            u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
        };
        let mut cp = hex(i + 2)?;
        let mut len = 6;
        if (0xd800..0xdc00).contains(&cp) {
            if self.s.get(i + 6) != Some(&b'\\') || self.s.get(i + 7) != Some(&b'u') {
                return None;
            }
            let low = hex(i + 8)?;
            if !(0xdc00..0xe000).contains(&low) {
                return None;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            len = 12;
        } else if (0xdc00..0xe000).contains(&cp) {
            return None;
        }
        let ch = char::from_u32(cp)?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Some(len)
    }
}

fn parse_strtod(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let body = lower.trim_start_matches(['-', '+']);
    let neg = lower.starts_with('-');
    if let Some(hex) = body.strip_prefix("0x") {
        let v = u64::from_str_radix(hex, 16).ok()? as f64;
        return Some(if neg { -v } else { v });
    }
    if body == "inf" || body == "infinity" {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if body == "nan" {
        return Some(f64::NAN);
    }
    if body.is_empty() || !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    lower.parse().ok()
}

fn expected(what: &str, found: &Token) -> String {
    format!(
        "Expected {what} but found {} at character {}",
        found.tok.name(),
        found.at
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("cjson", table(&lua).unwrap()).unwrap();
        lua
    }

    #[test]
    fn encodes_like_cjson() {
        let lua = lua();
        let s: String = lua
            .load(r#"return cjson.encode({1, 2.5, "a/b", true, {}})"#)
            .eval()
            .unwrap();
        assert_eq!(s, r#"[1,2.5,"a\/b",true,{}]"#);
        let s: String = lua.load(r#"return cjson.encode({x=1})"#).eval().unwrap();
        assert_eq!(s, r#"{"x":1}"#);
        let e = lua
            .load("return cjson.encode({[1]=1, [100]=2})")
            .eval::<String>()
            .unwrap_err();
        assert!(e.to_string().contains("excessively sparse array"), "{e}");
    }

    #[test]
    fn decodes_like_cjson() {
        let lua = lua();
        let n: f64 = lua
            .load(r#"local t = cjson.decode('{"a":[1,2,{"b":3}]}') return t.a[3].b"#)
            .eval()
            .unwrap();
        assert_eq!(n, 3.0);
        let null: bool = lua
            .load(r#"return cjson.decode('[null]')[1] == cjson.null"#)
            .eval()
            .unwrap();
        assert!(null);
        let s: String = lua
            .load(r#"return cjson.decode('"\\u00e9\\ud83d\\ude00"')"#)
            .eval()
            .unwrap();
        assert_eq!(s, "é😀");
        let e = lua
            .load("return cjson.decode('{')")
            .eval::<Value>()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("Expected object key string but found T_END at character 2"),
            "{e}"
        );
    }
}
