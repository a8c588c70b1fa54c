//! Lua scripting: one Lua 5.1 state per server, Redis's sandbox and libraries,
//! the EVAL script cache and the FUNCTION libraries.
//!
//! The state lives in [`crate::state::State`], so a script runs under the state
//! lock as one whole command: snapshots, MULTI and keyspace notifications see
//! all of it or none. `redis.call` needs the command table, which lives above
//! this module: the command layer hands a [`Caller`] to [`Prepared::run`], and
//! the call goes back up through it.
//!
//! A running script is watched through [`busy::ScriptWatch`], which sits
//! outside the lock: other connections read it to answer `-BUSY`, and SCRIPT
//! KILL / FUNCTION KILL set its kill flag, which an instruction-count hook in
//! the Lua state checks.

pub mod bit;
pub mod busy;
pub mod cjson;
pub mod cmsgpack;
pub mod convert;
pub mod functions;
mod raw;
pub mod sandbox;
pub mod structlib;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use mlua::{Function, Lua, Table, Value};

use crate::reply::Reply;
use busy::ScriptWatch;

/// Lua's memory is bounded: a script that allocates past this fails with an
/// out-of-memory error instead of taking the server down.
pub const LUA_MEMORY_LIMIT: usize = 1 << 30;

/// Runs the commands a script calls with `redis.call` / `redis.pcall`.
pub trait Caller {
    /// Runs one command for the script; command errors come back as
    /// [`Reply::Error`]. `resp` is the protocol the script chose with
    /// `redis.setresp`.
    fn call(&mut self, args: &[Bytes], resp: u8) -> Reply;
}

/// What an EVAL script's `#!lua` line declares (Redis 7.0). A script
/// without one runs in compatibility mode: no flags apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shebang {
    /// Length of the line, without its line feed (which stays, so line
    /// numbers in error texts are the body's own).
    pub len: usize,
    pub no_writes: bool,
    pub allow_oom: bool,
}

/// The flags a `#!lua flags=...` line accepts (those a function may have).
const SHEBANG_FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// Reads an EVAL body's `#!` line, worded as Redis refuses a bad one.
pub fn parse_shebang(body: &[u8]) -> Result<Option<Shebang>, String> {
    if !body.starts_with(b"#!") {
        return Ok(None);
    }
    let Some(len) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let line = String::from_utf8_lossy(&body[..len]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or_default();
    if engine != "#!lua" {
        return Err(format!("ERR Unexpected engine in script shebang: {engine}"));
    }
    let mut shebang = Shebang {
        len,
        ..Shebang::default()
    };
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {part}"));
        };
        for flag in list.split(',').filter(|_| !list.is_empty()) {
            if !SHEBANG_FLAGS.contains(&flag) {
                return Err(format!("ERR Unexpected flag in script shebang: {flag}"));
            }
            shebang.no_writes |= flag == "no-writes";
            shebang.allow_oom |= flag == "allow-oom";
        }
    }
    Ok(Some(shebang))
}

/// A compiled EVAL script.
struct Script {
    body: Bytes,
    func: Function,
    shebang: Option<Shebang>,
    /// Its sha1, for error texts (shared, not copied, by each run).
    name: Arc<str>,
}

/// The Lua state, the EVAL script cache and the function libraries.
pub struct Scripting {
    lua: Lua,
    /// The sandbox's pieces, built once.
    env: Arc<sandbox::Sandbox>,
    /// sha1 (lower-case hex) → script.
    cache: HashMap<String, Script>,
    /// Sum of the cached bodies' lengths (INFO `used_memory_scripts_eval`).
    cache_bytes: usize,
    pub functions: functions::Libraries,
    watch: Arc<ScriptWatch>,
}

/// A script ready to run, holding only handles into the Lua state, so the
/// command layer can run it while it lends the state to [`Caller`].
pub struct Prepared {
    lua: Lua,
    env: Arc<sandbox::Sandbox>,
    func: Function,
    /// The sha1 (EVAL) or the function name (FCALL), for error texts.
    name: Arc<str>,
    is_function: bool,
    /// An EVAL script's `#!lua` line, if it has one.
    pub shebang: Option<Shebang>,
    watch: Arc<ScriptWatch>,
}

/// How an EVAL body failed to compile, as Redis words it.
pub fn compile_error(message: &str) -> String {
    format!("ERR Error compiling script (new function): {message}")
}

impl Scripting {
    pub fn new(watch: Arc<ScriptWatch>) -> Scripting {
        let (lua, env) = sandbox::new_state(watch.clone()).expect("the Lua state starts");
        Scripting {
            functions: functions::Libraries::default(),
            lua,
            env: Arc::new(env),
            cache: HashMap::new(),
            cache_bytes: 0,
            watch,
        }
    }

    /// Compiles `body` into the cache (if not there yet) and returns its sha1.
    pub fn load(&mut self, body: &Bytes) -> Result<String, String> {
        self.load_entry(body).map(|(sha, _)| sha)
    }

    /// The cache entry of `body`, compiled and added if new.
    fn load_entry(&mut self, body: &Bytes) -> Result<(String, &Script), String> {
        use std::collections::hash_map::Entry;
        let sha = sha1hex(body);
        let script = match self.cache.entry(sha.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let shebang = parse_shebang(body)?;
                let code = &body[shebang.map_or(0, |s| s.len)..];
                let func = self
                    .env
                    .compile(&self.lua, code, "@user_script")
                    .map_err(|e| compile_error(&e))?;
                self.cache_bytes += body.len();
                e.insert(Script {
                    body: crate::protocol::detach(body),
                    func,
                    shebang,
                    name: Arc::from(sha.as_str()),
                })
            }
        };
        Ok((sha, script))
    }

    /// EVAL: `body` from the cache (compiled and added if new), ready to run.
    pub fn prepare_body(&mut self, body: &Bytes) -> Result<Prepared, String> {
        let (_, script) = self.load_entry(body)?;
        let (func, name) = (script.func.clone(), script.name.clone());
        let shebang = script.shebang;
        let mut prepared = self.prepared(func, name, false);
        prepared.shebang = shebang;
        Ok(prepared)
    }

    pub fn exists(&self, sha: &[u8]) -> bool {
        std::str::from_utf8(sha)
            .map(|s| self.cache.contains_key(&s.to_ascii_lowercase()))
            .unwrap_or(false)
    }

    /// SCRIPT FLUSH: forgets every cached script.
    pub fn flush_scripts(&mut self) {
        self.cache.clear();
        self.cache_bytes = 0;
        let _ = self.lua.gc_collect();
    }

    pub fn cached_scripts(&self) -> usize {
        self.cache.len()
    }

    pub fn cached_bytes(&self) -> usize {
        self.cache_bytes
    }

    /// Bytes the Lua state holds (INFO `used_memory_lua`).
    pub fn lua_memory(&self) -> usize {
        self.lua.used_memory()
    }

    /// The body of a cached script.
    pub fn body(&self, sha: &str) -> Option<&Bytes> {
        self.cache.get(sha).map(|s| &s.body)
    }

    /// The cached script `sha` (lower-case hex), ready to run.
    pub fn prepare_sha(&self, sha: &[u8]) -> Option<Prepared> {
        let sha = std::str::from_utf8(sha).ok()?;
        let script = match self.cache.get(sha) {
            Some(found) => found,
            None => self.cache.get(&sha.to_ascii_lowercase())?,
        };
        let mut prepared = self.prepared(script.func.clone(), script.name.clone(), false);
        prepared.shebang = script.shebang;
        Some(prepared)
    }

    fn prepared(&self, func: Function, name: Arc<str>, is_function: bool) -> Prepared {
        Prepared {
            lua: self.lua.clone(),
            env: self.env.clone(),
            func,
            name,
            is_function,
            shebang: None,
            watch: self.watch.clone(),
        }
    }

    /// The watch shared with connections.
    pub fn watch(&self) -> &Arc<ScriptWatch> {
        &self.watch
    }

    /// The Lua state, for the function libraries' loader.
    pub(crate) fn lua(&self) -> &Lua {
        &self.lua
    }

    pub(crate) fn sandbox(&self) -> &Arc<sandbox::Sandbox> {
        &self.env
    }

    /// A registered function, ready to run.
    pub fn prepare_function(&self, func: Function, name: &str) -> Prepared {
        self.prepared(func, Arc::from(name), true)
    }
}

impl Prepared {
    /// Runs the script with `keys` and `argv`; every `redis.call` goes through
    /// `caller`. Returns the script's reply, converted as Redis converts it.
    pub fn run(self, keys: &[Bytes], argv: &[Bytes], caller: &mut dyn Caller) -> Reply {
        let Prepared {
            lua,
            env,
            func,
            name,
            is_function,
            watch,
            ..
        } = self;
        let run = env.run_state();
        run.resp.set(2);
        run.is_function.set(is_function);
        let _running = watch.begin(is_function);
        let lent = raw::CallerGuard::new(run, caller);
        let outcome = env.run(&lua, &func, keys, argv, is_function);
        if let Some(payload) = lent.take_panic() {
            std::panic::resume_unwind(payload);
        }
        drop(lent);
        let killed = watch.kill_requested();
        let reply = match outcome {
            Ok(Ok(value)) => convert::lua_to_reply(&value, env.run_state().resp.get()),
            Ok(Err(err)) => error_reply(&err, &name),
            Err(e) => match killed {
                Some(_) => kill_reply(is_function),
                None => Reply::Error(format!("ERR {}", one_line(&e.to_string()))),
            },
        };
        reply
    }
}

fn kill_reply(is_function: bool) -> Reply {
    let what = if is_function {
        "FUNCTION KILL"
    } else {
        "SCRIPT KILL"
    };
    Reply::Error(format!("ERR Script killed by user with {what}..."))
}

/// The reply for a script that raised `err` (the table the error handler made).
fn error_reply(err: &Table, name: &str) -> Reply {
    let msg: String = match err.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.to_string_lossy(),
        _ => "ERR unknown error".into(),
    };
    let msg = msg.strip_prefix('-').unwrap_or(&msg).to_string();
    let source: Option<String> = err.raw_get("source").ok();
    let line: Option<i64> = err.raw_get("line").ok();
    let text = match (source, line) {
        (Some(source), Some(line)) => format!("{msg} script: {name}, on {source}:{line}."),
        (Some(source), None) => format!("{msg} script: {name}, on {source}."),
        _ => format!("{msg} script: {name}."),
    };
    Reply::Error(one_line(&text))
}

/// Error replies are one line: Redis replaces CR and LF with spaces.
pub fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// The sha1 of `body` in lower-case hex, as SCRIPT LOAD and `redis.sha1hex` give it.
pub fn sha1hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines() {
        assert_eq!(parse_shebang(b"return 1"), Ok(None));
        let s = parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1")
            .unwrap()
            .unwrap();
        assert_eq!((s.len, s.no_writes, s.allow_oom), (31, true, true));
        assert!(!parse_shebang(b"#!lua flags=\n").unwrap().unwrap().no_writes);
        assert_eq!(
            parse_shebang(b"#!lua"),
            Err("ERR Invalid script shebang".into())
        );
        assert_eq!(
            parse_shebang(b"#!lua flags=bogus\n"),
            Err("ERR Unexpected flag in script shebang: bogus".into())
        );
        assert_eq!(
            parse_shebang(b"#!lua name=x\n"),
            Err("ERR Unknown lua shebang option: name=x".into())
        );
    }

    #[test]
    fn sha1_of_empty_string() {
        assert_eq!(sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}

#[cfg(test)]
mod run_tests {
    use super::*;

    struct NoCalls;

    impl Caller for NoCalls {
        fn call(&mut self, _args: &[Bytes], _resp: u8) -> Reply {
            Reply::Null
        }
    }

    fn eval(s: &mut Scripting, body: &str) -> Reply {
        let sha = s.load(&Bytes::copy_from_slice(body.as_bytes())).unwrap();
        s.prepare_sha(sha.as_bytes())
            .unwrap()
            .run(&[], &[], &mut NoCalls)
    }

    #[test]
    fn script_kill_stops_a_loop() {
        let watch = Arc::new(ScriptWatch::default());
        let mut s = Scripting::new(watch.clone());
        let killer = std::thread::spawn(move || {
            while watch.running().is_none() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            watch.request_kill(busy::KILL_SCRIPT);
        });
        let reply = eval(&mut s, "local i = 0 while true do i = i + 1 end");
        killer.join().unwrap();
        let Reply::Error(text) = reply else {
            panic!("{reply:?}")
        };
        assert!(
            text.starts_with("ERR Script killed by user with SCRIPT KILL... script: "),
            "{text}"
        );
        // The state is usable afterwards.
        assert_eq!(eval(&mut s, "return 1"), Reply::Integer(1));
    }
}
