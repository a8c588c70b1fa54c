//! Function libraries (Redis 7.0 functions): loading a library's code with
//! its `#!lua name=<lib>` header and `redis.register_function`, the registry
//! of libraries and functions, and the DUMP payload.
//!
//! A library's code runs once, at load, in an environment of its own whose
//! `redis` is the loader's table (with `register_function`); once loaded,
//! that name falls through to the full `redis` library, which the
//! registered functions see when FCALL runs them.
//!
//! # DUMP payload (forkless's own)
//!
//! Little-endian: the 4 bytes `F5 'F' 'K' 'F'`, a `u8` version (1), a `u32`
//! library count, then per library a `u32` code length and the code (header
//! line included), then a `u32` CRC32 (IEEE) of every byte before it.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use mlua::{Function, Lua, MultiValue, Table, Value};

use super::convert::ScriptError;

/// Flags `redis.register_function` accepts.
pub const FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

const NAME_RULE: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

pub const DUMP_MAGIC: [u8; 4] = [0xf5, b'F', b'K', b'F'];
pub const DUMP_VERSION: u8 = 1;

/// One registered function.
#[derive(Clone)]
pub struct LibFunction {
    pub name: String,
    pub callback: Function,
    pub flags: Vec<String>,
    pub description: Option<String>,
}

/// One loaded library.
#[derive(Clone)]
pub struct Library {
    pub name: String,
    pub code: Bytes,
    pub functions: BTreeMap<String, LibFunction>,
}

/// Every loaded library, and which library each function belongs to.
#[derive(Clone, Default)]
pub struct Libraries {
    libs: BTreeMap<String, Library>,
    index: HashMap<String, String>,
}

impl Libraries {
    pub fn function_count(&self) -> usize {
        self.index.len()
    }

    pub fn library_count(&self) -> usize {
        self.libs.len()
    }

    pub fn code_bytes(&self) -> usize {
        self.libs.values().map(|l| l.code.len()).sum()
    }

    pub fn function(&self, name: &[u8]) -> Option<&LibFunction> {
        let name = std::str::from_utf8(name).ok()?;
        let lib = self.index.get(name)?;
        self.libs.get(lib)?.functions.get(name)
    }

    pub fn libraries(&self) -> impl Iterator<Item = &Library> {
        self.libs.values()
    }

    /// FUNCTION DELETE: false if there is no such library.
    pub fn delete(&mut self, name: &[u8]) -> bool {
        let Ok(name) = std::str::from_utf8(name) else {
            return false;
        };
        match self.libs.remove(name) {
            Some(lib) => {
                for f in lib.functions.keys() {
                    self.index.remove(f);
                }
                true
            }
            None => false,
        }
    }

    pub fn flush(&mut self) {
        self.libs.clear();
        self.index.clear();
    }

    /// Every library's code, for DUMP and snapshots.
    pub fn codes(&self) -> Vec<Bytes> {
        self.libs.values().map(|l| l.code.clone()).collect()
    }

    /// FUNCTION DUMP's payload.
    pub fn dump(&self) -> Vec<u8> {
        encode_dump(&self.codes())
    }
}

/// The DUMP payload for `codes`.
pub fn encode_dump(codes: &[Bytes]) -> Vec<u8> {
    let mut out = DUMP_MAGIC.to_vec();
    out.push(DUMP_VERSION);
    out.extend_from_slice(&(codes.len() as u32).to_le_bytes());
    for code in codes {
        out.extend_from_slice(&(code.len() as u32).to_le_bytes());
        out.extend_from_slice(code);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The library codes in a DUMP payload, or `None` if it is not one.
pub fn decode_dump(payload: &[u8]) -> Option<Vec<Bytes>> {
    let (body, crc) = payload.split_at(payload.len().checked_sub(4)?);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let rest = body.strip_prefix(&DUMP_MAGIC[..])?;
    let (&version, mut rest) = rest.split_first()?;
    if version != DUMP_VERSION {
        return None;
    }
    let u32_at = |r: &mut &[u8]| -> Option<usize> {
        let (n, tail) = r.split_at_checked(4)?;
        *r = tail;
        Some(u32::from_le_bytes(n.try_into().ok()?) as usize)
    };
    let count = u32_at(&mut rest)?;
    let mut codes = Vec::new();
    for _ in 0..count {
        let len = u32_at(&mut rest)?;
        let (code, tail) = rest.split_at_checked(len)?;
        codes.push(Bytes::copy_from_slice(code));
        rest = tail;
    }
    rest.is_empty().then_some(codes)
}

/// The header line's engine and library name, and where the code starts.
fn metadata(code: &[u8]) -> Result<(String, String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or("#!")[2..].to_string();
    let mut name = None;
    for part in parts {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(part[5..].to_string());
            continue;
        }
        return Err(format!("ERR Invalid metadata value given: {part}"));
    }
    let name = name.ok_or("ERR Library name was not given")?;
    Ok((engine, name, end))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn reply_err(text: impl Into<String>) -> mlua::Error {
    mlua::Error::external(ScriptError::Reply(text.into()))
}

/// `redis.register_function`, both forms, as the loader sees it.
fn register(lua: &Lua, args: MultiValue, into: &RefCell<Vec<LibFunction>>) -> mlua::Result<()> {
    let (name, callback, flags, description) = match args.len() {
        1 => {
            let Some(Value::Table(t)) = args.front() else {
                return Err(reply_err("ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."));
            };
            let (mut name, mut callback, mut flags, mut description) = (None, None, None, None);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let key = match &k {
                    Value::String(s) => s.to_string_lossy(),
                    _ => String::new(),
                };
                match key.as_str() {
                    "function_name" => match v {
                        Value::String(s) => name = Some(s.to_string_lossy()),
                        _ => return Err(reply_err("ERR function_name argument given to redis.register_function must be a string")),
                    },
                    "description" => match v {
                        Value::String(s) => description = Some(s.to_string_lossy()),
                        _ => return Err(reply_err("ERR description argument given to redis.register_function must be a string")),
                    },
                    "callback" => match v {
                        Value::Function(f) => callback = Some(f),
                        _ => return Err(reply_err("ERR callback argument given to redis.register_function must be a function")),
                    },
                    "flags" => match v {
                        Value::Table(f) => flags = Some(f),
                        _ => return Err(reply_err("ERR flags argument to redis.register_function must be a table representing function flags")),
                    },
                    _ => return Err(reply_err("ERR unknown argument given to redis.register_function")),
                }
            }
            let name = name.ok_or_else(|| {
                reply_err("ERR redis.register_function must get a function name argument")
            })?;
            let callback = callback.ok_or_else(|| {
                reply_err("ERR redis.register_function must get a callback argument")
            })?;
            (name, callback, flags, description)
        }
        2 => {
            let name = match &args[0] {
                Value::String(s) => s.to_string_lossy(),
                _ => {
                    return Err(reply_err(
                        "ERR first argument to redis.register_function must be a string",
                    ))
                }
            };
            let callback = match &args[1] {
                Value::Function(f) => f.clone(),
                _ => {
                    return Err(reply_err(
                        "ERR second argument to redis.register_function must be a function",
                    ))
                }
            };
            (name, callback, None, None)
        }
        _ => {
            return Err(reply_err(
                "ERR wrong number of arguments to redis.register_function",
            ))
        }
    };
    let mut flag_names = Vec::new();
    if let Some(flags) = flags {
        for v in flags.sequence_values::<Value>() {
            match v? {
                Value::String(s) if FLAGS.contains(&s.to_string_lossy().as_str()) => {
                    flag_names.push(s.to_string_lossy())
                }
                _ => return Err(reply_err("ERR unknown flag given")),
            }
        }
    }
    if !valid_name(&name) {
        return Err(reply_err(NAME_RULE));
    }
    let mut list = into.borrow_mut();
    if list.iter().any(|f| f.name == name) {
        return Err(reply_err("ERR Function already exists in the library"));
    }
    let _ = lua;
    list.push(LibFunction {
        name,
        callback,
        flags: flag_names,
        description,
    });
    Ok(())
}

impl super::Scripting {
    /// FUNCTION LOAD: compiles and runs `code`, registers its functions and
    /// returns the library's name.
    pub fn function_load(&mut self, code: &Bytes, replace: bool) -> Result<String, String> {
        let (engine, name, body_start) = metadata(code)?;
        if !engine.eq_ignore_ascii_case("lua") {
            return Err(format!("ERR Engine '{engine}' not found"));
        }
        if !valid_name(&name) {
            return Err(NAME_RULE.into());
        }
        if self.functions.libs.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let lua = self.lua().clone();
        let env = self.sandbox().clone();
        let func = env
            .compile(&lua, &code[body_start..], "@user_function")
            .map_err(|e| format!("ERR Error compiling function: {e}"))?;
        let registered = RefCell::new(Vec::new());
        let outcome = env
            .load_library(&lua, &func, |lua, loader: &Table| {
                lua.scope(|scope| {
                    let f = scope.create_function(|lua, args: MultiValue| {
                        register(lua, args, &registered)
                    })?;
                    loader.raw_set("register_function", f)?;
                    let out = env.call_protected(lua, &func);
                    loader.raw_set("register_function", Value::Nil)?;
                    out
                })
            })
            .map_err(|e| format!("ERR Error registering functions: {e}"))?;
        if let Err(err) = outcome {
            let text: String = err.raw_get::<String>("err").unwrap_or_default();
            return Err(format!("ERR Error registering functions: {text}"));
        }
        let functions = registered.into_inner();
        if functions.is_empty() {
            return Err("ERR No functions registered".into());
        }
        for f in &functions {
            if let Some(owner) = self.functions.index.get(&f.name) {
                if *owner != name {
                    return Err(format!("ERR Function {} already exists", f.name));
                }
            }
        }
        self.functions.delete(name.as_bytes());
        for f in &functions {
            self.functions.index.insert(f.name.clone(), name.clone());
        }
        self.functions.libs.insert(
            name.clone(),
            Library {
                name: name.clone(),
                code: crate::protocol::detach(code),
                functions: functions.into_iter().map(|f| (f.name.clone(), f)).collect(),
            },
        );
        Ok(name)
    }

    /// FUNCTION RESTORE: loads every library of a DUMP payload with Redis's
    /// policy (`APPEND` refuses an existing library, `REPLACE` replaces it,
    /// `FLUSH` starts empty); all or nothing.
    pub fn function_restore(&mut self, payload: &[u8], policy: &str) -> Result<(), String> {
        let codes = decode_dump(payload).ok_or("ERR DUMP payload version or checksum are wrong")?;
        let saved = self.functions.clone();
        if policy == "flush" {
            self.functions.flush();
        }
        for code in &codes {
            if let Err(e) = self.function_load(code, policy == "replace") {
                self.functions = saved;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Installs the libraries of a loaded snapshot (replacing the current ones).
    pub fn install_libraries(&mut self, codes: &[Bytes]) -> Result<(), String> {
        self.functions.flush();
        for code in codes {
            self.function_load(code, true)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_round_trips_and_rejects_damage() {
        let codes = vec![Bytes::from_static(b"#!lua name=a\nx"), Bytes::new()];
        let d = encode_dump(&codes);
        assert_eq!(decode_dump(&d), Some(codes));
        for i in 0..d.len() {
            let mut bad = d.clone();
            bad[i] ^= 1;
            assert_eq!(decode_dump(&bad), None, "byte {i}");
        }
        assert_eq!(decode_dump(&d[..d.len() - 1]), None);
    }

    #[test]
    fn metadata_like_redis() {
        assert_eq!(
            metadata(b"#!lua name=lib\ncode").unwrap(),
            ("lua".into(), "lib".into(), 14)
        );
        assert_eq!(
            metadata(b"return 1").unwrap_err(),
            "ERR Missing library metadata"
        );
        assert_eq!(
            metadata(b"#!lua").unwrap_err(),
            "ERR Invalid library metadata"
        );
        assert_eq!(
            metadata(b"#!lua x=1\n").unwrap_err(),
            "ERR Invalid metadata value given: x=1"
        );
        assert_eq!(
            metadata(b"#!lua\n").unwrap_err(),
            "ERR Library name was not given"
        );
    }
}
