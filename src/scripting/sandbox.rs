//! Redis's sandbox around the Lua state: the globals a script may read, the
//! read-only libraries, the error handler that shapes error replies, and
//! `pcall` with Redis 7.0's conversion of error tables.
//!
//! Lua 5.1 has no read-only tables, so each library (and the global table) is
//! an empty proxy whose metatable reads through to the real table and refuses
//! writes with Redis's text; `__metatable` keeps scripts from swapping it.
//! Reading a global that does not exist is an error, as in Redis.

use std::sync::Arc;

use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

use super::busy::ScriptWatch;
use super::convert::{self, ScriptError};
use super::raw::{self, RunState};

/// Instructions between two checks of the kill flag.
const HOOK_EVERY: u32 = 10_000;

/// The sandbox's handles, shared by every run.
#[derive(Clone)]
pub struct Sandbox {
    /// The real global table (behind the read-only proxy scripts see).
    globals: Table,
    /// The real `redis` table.
    redis: Table,
    /// What a function library sees of `redis` while it loads (Redis gives
    /// it only `log`, the log levels and the version).
    load_view: Table,
    xpcall: Function,
    handler: Function,
    /// Runs a script with its KEYS and ARGV ([`raw::runner`]).
    runner: Function,
    lib_env: Function,
    /// What a run shares with `redis.call` (also app data of the state).
    run: Arc<RunState>,
}

/// Lua prelude, run once with the real globals: makes the proxies.
const PRELUDE: &str = r#"
local G, setmetatable, error, tostring = ...
local function readonly()
  error("Attempt to modify a readonly table", 2)
end
local function missing(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
local R = G.redis
local load_view = setmetatable({log = R.log, LOG_DEBUG = R.LOG_DEBUG, LOG_VERBOSE = R.LOG_VERBOSE,
  LOG_NOTICE = R.LOG_NOTICE, LOG_WARNING = R.LOG_WARNING, REDIS_VERSION = R.REDIS_VERSION,
  REDIS_VERSION_NUM = R.REDIS_VERSION_NUM}, {__index = missing, __metatable = false})
local function protect(t)
  return setmetatable({}, {__index = t, __newindex = readonly, __metatable = false})
end
for _, name in ipairs({"string", "table", "math", "coroutine", "redis", "cjson", "cmsgpack", "bit", "struct"}) do
  G[name] = protect(G[name])
end
setmetatable(G, {__index = missing, __metatable = false})
local getmetatable = getmetatable
G.setmetatable = function(t, mt)
  if getmetatable(t) == false then
    error("Attempt to modify a readonly table", 0)
  end
  return setmetatable(t, mt)
end
local env = protect(G)
G._G = env
-- A function library's environment: `redis` is the loader's table while the
-- library loads, then falls through to the real one.
local function lib_env(loader)
  local fields = setmetatable({redis = loader}, {__index = env, __metatable = false})
  return setmetatable({}, {__index = fields, __newindex = readonly, __metatable = false}), fields
end
return env, lib_env, load_view
"#;

/// Globals of the standard libraries that Redis does not give scripts.
const REMOVED: &[&str] = &[
    "loadfile", "dofile", "print", "setfenv", "getfenv", "newproxy", "module", "require",
];

/// Builds the Lua state with Redis's libraries and sandbox.
pub fn new_state(watch: Arc<ScriptWatch>) -> mlua::Result<(Lua, Sandbox)> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::new(),
    )?;
    lua.set_memory_limit(super::LUA_MEMORY_LIMIT)?;
    let globals = lua.globals();
    for name in REMOVED {
        globals.raw_set(*name, Value::Nil)?;
    }
    let xpcall: Function = globals.raw_get("xpcall")?;
    let raw_pcall: Function = globals.raw_get("pcall")?;
    globals.raw_set("pcall", redis_pcall(&lua, raw_pcall)?)?;
    let redis = super::convert::redis_table(&lua)?;
    let run = Arc::new(RunState::default());
    lua.set_app_data(run.clone());
    let (call, pcall) = raw::install(&lua, &run)?;
    redis.raw_set("call", call)?;
    redis.raw_set("pcall", pcall)?;
    globals.raw_set("redis", redis.clone())?;
    globals.raw_set("cjson", super::cjson::table(&lua)?)?;
    globals.raw_set("cmsgpack", super::cmsgpack::table(&lua)?)?;
    globals.raw_set("bit", super::bit::table(&lua)?)?;
    globals.raw_set("struct", super::structlib::table(&lua)?)?;
    let setmetatable: Function = globals.raw_get("setmetatable")?;
    let error: Function = globals.raw_get("error")?;
    let tostring: Function = globals.raw_get("tostring")?;
    let (env, lib_env, load_view): (Table, Function, Table) = lua
        .load(PRELUDE)
        .set_name("=sandbox")
        .call((globals.clone(), setmetatable, error, tostring))?;
    lua.set_globals(env)?;
    let handler = lua.create_function(error_handler)?;
    let runner = raw::runner(&lua, &globals)?;
    lua.set_hook(
        mlua::HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |_lua, _debug| {
            if watch.kill_requested().is_some() {
                return Err(mlua::Error::external(ScriptError::Killed));
            }
            watch.tick();
            Ok(mlua::VmState::Continue)
        },
    )?;
    Ok((
        lua,
        Sandbox {
            globals,
            redis,
            load_view,
            xpcall,
            handler,
            runner,
            lib_env,
            run,
        },
    ))
}

/// `pcall` as Redis 7.0 gives it: an error raised by `redis.call` (or any
/// `{err=...}` table) is returned as its message string.
fn redis_pcall(lua: &Lua, raw_pcall: Function) -> mlua::Result<Function> {
    lua.create_function(move |_lua, args: MultiValue| {
        let mut out: MultiValue = raw_pcall.call(args)?;
        if matches!(out.front(), Some(Value::Boolean(false))) {
            if let Some(err) = out.get(1).cloned() {
                if let Value::Error(e) = &err {
                    if matches!(convert::classify(e), ScriptError::Killed) {
                        return Err((**e).clone());
                    }
                }
                out[1] = convert::error_value_to_message(_lua, err)?;
            }
        }
        Ok(out)
    })
}

/// The message handler every script runs under: turns any error into a table
/// `{err=..., source=..., line=...}` as Redis's `__redis__err__handler` does.
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let table = match err {
        Value::Table(t) => t,
        other => {
            let t = lua.create_table()?;
            match other {
                Value::Error(e) => match convert::classify(&e) {
                    ScriptError::Reply(text) => t.raw_set("err", text)?,
                    ScriptError::Killed => {
                        let function = lua
                            .app_data_ref::<Arc<RunState>>()
                            .is_some_and(|r| r.is_function.get());
                        let what = if function { "FUNCTION" } else { "SCRIPT" };
                        t.raw_set(
                            "err",
                            format!("ERR Script killed by user with {what} KILL..."),
                        )?
                    }
                    ScriptError::Message(msg) => t.raw_set("err", format!("ERR {msg}"))?,
                },
                Value::String(s) => {
                    let mut msg = b"ERR ".to_vec();
                    msg.extend_from_slice(&s.as_bytes());
                    t.raw_set("err", lua.create_string(msg)?)?
                }
                other => t.raw_set("err", format!("ERR {}", convert::tostring(&other)))?,
            }
            t
        }
    };
    // Level 1 raised the error; if it is a C function (or the sandbox's own
    // metamethods), the script code that called it is named.
    let frame = |level: usize| {
        lua.inspect_stack(level, |d| {
            let s = d.source();
            (s.what, s.source.map(|c| c.into_owned()), d.current_line())
        })
    };
    let mut info = None;
    for level in 1..8 {
        match frame(level) {
            None => break,
            Some(("C", _, _)) => continue,
            Some((_, Some(src), _)) if src.starts_with("=sandbox") => continue,
            found => {
                info = found;
                break;
            }
        }
    }
    if let Some((_, source, line)) = info {
        if let Some(source) = source {
            table.raw_set("source", source)?;
        }
        if let Some(line) = line {
            table.raw_set("line", line)?;
        }
    }
    Ok(table)
}

impl Sandbox {
    /// Compiles a script body as chunk `name` (`@user_script`, `@user_function`).
    pub fn compile(&self, lua: &Lua, body: &[u8], name: &str) -> Result<Function, String> {
        lua.load(body)
            .set_name(name)
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => other.to_string(),
            })
    }

    /// Runs `load` (which runs a library's code) with `func`'s environment
    /// set to a new library environment whose `redis` is a loader table
    /// (reading through to the real `redis`); `load` installs
    /// `register_function` in it. Afterwards `redis` is the real library.
    pub fn load_library<R>(
        &self,
        lua: &Lua,
        func: &Function,
        load: impl FnOnce(&Lua, &Table) -> mlua::Result<R>,
    ) -> mlua::Result<R> {
        let loader = lua.create_table()?;
        let meta = lua.create_table()?;
        meta.raw_set("__index", self.load_view.clone())?;
        loader.set_metatable(Some(meta))?;
        let (env, fields): (Table, Table) = self.lib_env.call(loader.clone())?;
        func.set_environment(env)?;
        let out = load(lua, &loader);
        fields.raw_set("redis", Value::Nil)?;
        out
    }

    /// Calls `func` under the error handler: its value, or the error table.
    pub fn call_protected(&self, lua: &Lua, func: &Function) -> mlua::Result<Result<Value, Table>> {
        let mut out: MultiValue = self.xpcall.call((func.clone(), self.handler.clone()))?;
        let ok = matches!(out.pop_front(), Some(Value::Boolean(true)));
        let first = out.pop_front().unwrap_or(Value::Nil);
        match (ok, first) {
            (true, v) => Ok(Ok(v)),
            (false, Value::Table(t)) => Ok(Err(t)),
            (false, other) => {
                let t = lua.create_table()?;
                t.raw_set("err", format!("ERR {}", convert::tostring(&other)))?;
                Ok(Err(t))
            }
        }
    }

    /// The real global table.
    pub fn globals(&self) -> &Table {
        &self.globals
    }

    /// The real `redis` table.
    pub fn redis(&self) -> &Table {
        &self.redis
    }

    /// What a run shares with `redis.call`.
    pub(crate) fn run_state(&self) -> &RunState {
        &self.run
    }

    /// Runs `func` under the error handler. An EVAL script reads KEYS and
    /// ARGV as globals; a function gets them as its two arguments.
    pub fn run(
        &self,
        lua: &Lua,
        func: &Function,
        keys: &[Bytes],
        argv: &[Bytes],
        is_function: bool,
    ) -> mlua::Result<Result<Value, Table>> {
        let out = raw::call_script(
            lua,
            &self.handler,
            &self.runner,
            func,
            keys,
            argv,
            is_function,
        )?;
        match out {
            Ok(v) => Ok(Ok(v)),
            Err(Value::Table(t)) => Ok(Err(t)),
            Err(other) => {
                let t = lua.create_table()?;
                t.raw_set("err", format!("ERR {}", convert::tostring(&other)))?;
                Ok(Err(t))
            }
        }
    }
}
