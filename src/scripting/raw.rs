//! The hot path of a script run, on Lua's C API: `redis.call` and
//! `redis.pcall` (installed once, as C closures), the KEYS/ARGV tables and the
//! protected call of the script.
//!
//! Why not mlua's safe API here: with a memory limit set, mlua runs every API
//! call that may allocate (a string, a table, a field) under a `lua_pcall` of
//! its own and, on Lua 5.1, allocates two C closures for each; one
//! `redis.call` paid that a dozen times, plus a scoped closure pair per run.
//! Here a whole run is one protected call, and a `redis.call` is a C function
//! that reads its arguments off the Lua stack and pushes the reply back.
//!
//! The hazard of the C API is that a Lua error (a memory error in a push, or
//! the error `redis.call` raises) `longjmp`s over the Rust frames between the
//! raise and the `lua_pcall` that catches it, without running destructors.
//! Invariant kept by every function here that calls a raising API function:
//! its frame, and its callers' frames up to the catching `lua_pcall`, own
//! nothing with a destructor. What a call owns (the command's arguments, its
//! reply, a panic payload) lives in [`RunState`], which the Lua state owns;
//! those frames hold only references into it and plain data.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::Arc;

use bytes::Bytes;
use mlua::ffi::{self, lua_State};
use mlua::{Function, Lua, Table, Value};

use super::convert::{format_g, reply_error_text};
use super::Caller;
use crate::reply::Reply;

/// What one run shares with `redis.call`, `redis.setresp` and the error
/// handler: the caller, the protocol the script chose, and the buffers a call
/// reuses.
///
/// Touched only by the thread that runs a script, which holds the server
/// state's lock (the Lua state lives in the server state): the cells are
/// never reached from two threads at once, which is what the `Send`/`Sync`
/// below rely on.
pub(crate) struct RunState {
    /// The protocol `redis.setresp` chose: how command replies become Lua values.
    pub resp: Cell<u8>,
    pub is_function: Cell<bool>,
    /// The running script's caller, its lifetime erased; set by [`CallerGuard`]
    /// for exactly the duration of a run.
    caller: Cell<Option<NonNull<dyn Caller + 'static>>>,
    /// The current call's arguments (the vector is reused across calls).
    args: UnsafeCell<Vec<Bytes>>,
    /// The current call's reply, converted from here by reference.
    reply: UnsafeCell<Reply>,
    /// A command that panicked: re-raised once the run is back in Rust.
    panic: Cell<Option<Box<dyn Any + Send>>>,
}

// SAFETY: see the type's doc: one thread at a time, under the state lock.
unsafe impl Send for RunState {}
unsafe impl Sync for RunState {}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            resp: Cell::new(2),
            is_function: Cell::new(false),
            caller: Cell::new(None),
            args: UnsafeCell::new(Vec::with_capacity(8)),
            reply: UnsafeCell::new(Reply::Null),
            panic: Cell::new(None),
        }
    }
}

/// Lends `caller` to `redis.call` for as long as it lives.
pub(crate) struct CallerGuard<'r> {
    run: &'r RunState,
    previous: Option<NonNull<dyn Caller + 'static>>,
}

impl<'r> CallerGuard<'r> {
    pub fn new<'c>(run: &'r RunState, caller: &'c mut (dyn Caller + 'c)) -> CallerGuard<'r> {
        let ptr: NonNull<dyn Caller + 'c> = NonNull::from(caller);
        // SAFETY: only the lifetime is erased. The pointer is read by
        // `redis.call` during the run, and the guard (which borrows nothing
        // from the caller, but lives in the frame that holds the `&mut`)
        // clears it before that frame returns.
        let ptr: NonNull<dyn Caller + 'static> = unsafe { std::mem::transmute(ptr) };
        let previous = run.caller.replace(Some(ptr));
        CallerGuard { run, previous }
    }

    /// A command that panicked during the run, to be resumed by the runner.
    pub fn take_panic(&self) -> Option<Box<dyn Any + Send>> {
        self.run.panic.take()
    }
}

impl Drop for CallerGuard<'_> {
    fn drop(&mut self) {
        self.run.caller.set(self.previous);
        // The last reply and arguments are not kept past the run.
        // SAFETY: no call is in progress once the run returned.
        unsafe {
            *self.run.reply.get() = Reply::Null;
            (*self.run.args.get()).clear();
        }
    }
}

/// The C closures for `redis.call` and `redis.pcall`, bound to `run` (which
/// the caller keeps alive as long as the Lua state: it is app data of it).
pub(crate) fn install(lua: &Lua, run: &Arc<RunState>) -> mlua::Result<(Function, Function)> {
    let ptr = Arc::as_ptr(run) as *mut c_void;
    let make = |f: ffi::lua_CFunction| {
        // SAFETY: pushes one light userdata and one C closure; the closure
        // body (`command`) reads the light userdata as a `RunState`, which
        // outlives the Lua state's use of it (see above).
        unsafe {
            lua.exec_raw::<Function>((), |l| {
                ffi::lua_pushlightuserdata(l, ptr);
                ffi::lua_pushcclosure(l, f, 1);
            })
        }
    };
    Ok((make(redis_call)?, make(redis_pcall)?))
}

unsafe extern "C-unwind" fn redis_call(l: *mut lua_State) -> c_int {
    command(l, true)
}

unsafe extern "C-unwind" fn redis_pcall(l: *mut lua_State) -> c_int {
    command(l, false)
}

/// What [`RunState::call`] left in `reply`.
enum Outcome {
    Reply,
    /// `reply` is the error (its text as the script sees it).
    Error,
    Panicked,
}

/// `redis.call` (`raise`) / `redis.pcall`. Frames hold references only.
unsafe fn command(l: *mut lua_State, raise: bool) -> c_int {
    let run = &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const RunState);
    let outcome = run.call(l);
    let reply = &*run.reply.get();
    match outcome {
        Outcome::Reply => {
            push_reply(l, reply, run.resp.get() == 3);
            1
        }
        Outcome::Error => {
            let Reply::Error(text) = reply else {
                unreachable!("an error outcome holds an error reply")
            };
            push_field(l, "err", text.as_bytes());
            if raise {
                ffi::lua_error(l);
            }
            1
        }
        Outcome::Panicked => {
            push_bytes(l, b"a command called by the script panicked");
            ffi::lua_error(l)
        }
    }
}

impl RunState {
    /// Reads the call's arguments, runs the command and stores its reply.
    /// Only non-raising API functions are used here, so owned values are fine.
    unsafe fn call(&self, l: *mut lua_State) -> Outcome {
        let reply = &mut *self.reply.get();
        let args = &mut *self.args.get();
        args.clear();
        *reply = Reply::Null;
        let fail = |reply: &mut Reply, text: &str| {
            *reply = Reply::Error(text.to_string());
            Outcome::Error
        };
        let argc = ffi::lua_gettop(l);
        if argc == 0 {
            return fail(
                reply,
                "ERR Please specify at least one argument for this redis lib call",
            );
        }
        for i in 1..=argc {
            match ffi::lua_type(l, i) {
                ffi::LUA_TSTRING => {
                    let mut len = 0;
                    let p = ffi::lua_tolstring(l, i, &mut len) as *const u8;
                    args.push(Bytes::copy_from_slice(std::slice::from_raw_parts(p, len)));
                }
                // As Redis 7.0: `%.17g`, never Lua's own 14-digit conversion.
                ffi::LUA_TNUMBER => args.push(Bytes::from(format_g(ffi::lua_tonumber(l, i), 17))),
                _ => {
                    return fail(
                        reply,
                        "ERR Lua redis lib command arguments must be strings or integers",
                    )
                }
            }
        }
        let Some(mut caller) = self.caller.get() else {
            return fail(
                reply,
                "ERR redis.call is only available while a script runs",
            );
        };
        let resp = self.resp.get();
        // SAFETY: the pointer is live for the run (see `CallerGuard`), and
        // scripts cannot start scripts, so no other `&mut` to it exists now.
        let caller = caller.as_mut();
        let ran =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| caller.call(args, resp)));
        match ran {
            Ok(Reply::Error(text)) => {
                *reply = Reply::Error(reply_error_text(text.as_bytes()));
                Outcome::Error
            }
            Ok(mut r) => {
                normalize(&mut r, resp == 3);
                *reply = r;
                Outcome::Reply
            }
            Err(payload) => {
                self.panic.set(Some(payload));
                Outcome::Panicked
            }
        }
    }
}

/// Does, before any push, the conversions that allocate Rust values: error
/// texts as scripts see them, and RESP2's doubles as strings.
fn normalize(reply: &mut Reply, resp3: bool) {
    match reply {
        Reply::Error(text) => {
            let fixed = reply_error_text(text.as_bytes());
            if fixed != *text {
                *text = fixed;
            }
        }
        Reply::Double(d) if !resp3 => {
            *reply = Reply::Bulk(Bytes::from(crate::reply::format_double(*d)))
        }
        Reply::Array(items) | Reply::Push(items) | Reply::Set(items) => {
            items.iter_mut().for_each(|i| normalize(i, resp3))
        }
        Reply::Map(pairs) => pairs.iter_mut().for_each(|(k, v)| {
            normalize(k, resp3);
            normalize(v, resp3);
        }),
        _ => {}
    }
}

unsafe fn push_bytes(l: *mut lua_State, b: &[u8]) {
    ffi::lua_pushlstring(l, b.as_ptr() as *const _, b.len());
}

/// Pushes `{name = value}`.
unsafe fn push_field(l: *mut lua_State, name: &str, value: &[u8]) {
    ffi::lua_createtable(l, 0, 1);
    push_bytes(l, name.as_bytes());
    push_bytes(l, value);
    ffi::lua_rawset(l, -3);
}

/// Puts `{name = <the value on top>}` in place of the value on top.
unsafe fn wrap(l: *mut lua_State, name: &str) {
    ffi::lua_createtable(l, 0, 1);
    push_bytes(l, name.as_bytes());
    ffi::lua_pushvalue(l, -3);
    ffi::lua_rawset(l, -3);
    ffi::lua_replace(l, -2);
}

/// A command reply as the Lua value `redis.call` returns (Redis's
/// `redisProtocolToLuaType`), for RESP2 or RESP3. `reply` went through
/// [`normalize`].
unsafe fn push_reply(l: *mut lua_State, reply: &Reply, resp3: bool) {
    // Nested replies are a few levels deep; each level needs three slots.
    if ffi::lua_checkstack(l, 4) == 0 {
        push_bytes(l, b"reply nested too deeply");
        ffi::lua_error(l);
    }
    match reply {
        Reply::Simple(s) => push_field(l, "ok", s.as_bytes()),
        Reply::Error(text) => push_field(l, "err", text.as_bytes()),
        Reply::Integer(n) => ffi::lua_pushnumber(l, *n as f64),
        Reply::Bulk(b) => push_bytes(l, b),
        Reply::Bulks(run) => push_reply(l, &run.to_array(), resp3),
        Reply::Verbatim(text) if resp3 => {
            ffi::lua_createtable(l, 0, 2);
            push_bytes(l, b"string");
            push_bytes(l, text.as_bytes());
            ffi::lua_rawset(l, -3);
            push_bytes(l, b"format");
            push_bytes(l, b"txt");
            ffi::lua_rawset(l, -3);
            wrap(l, "verbatim_string");
        }
        Reply::Verbatim(text) => push_bytes(l, text.as_bytes()),
        Reply::Null | Reply::NullArray if resp3 => ffi::lua_pushnil(l),
        Reply::Null | Reply::NullArray => ffi::lua_pushboolean(l, 0),
        Reply::Array(items) | Reply::Push(items) => push_array(l, items, resp3),
        Reply::Set(items) if resp3 => {
            ffi::lua_createtable(l, 0, items.len().min(1 << 20) as c_int);
            for item in items {
                push_reply(l, item, resp3);
                ffi::lua_pushboolean(l, 1);
                ffi::lua_rawset(l, -3);
            }
            wrap(l, "set");
        }
        Reply::Set(items) => push_array(l, items, resp3),
        Reply::Map(pairs) if resp3 => {
            ffi::lua_createtable(l, 0, pairs.len().min(1 << 20) as c_int);
            for (k, v) in pairs {
                push_reply(l, k, resp3);
                push_reply(l, v, resp3);
                ffi::lua_rawset(l, -3);
            }
            wrap(l, "map");
        }
        Reply::Map(pairs) => {
            ffi::lua_createtable(l, (pairs.len() * 2).min(1 << 20) as c_int, 0);
            for (i, (k, v)) in pairs.iter().enumerate() {
                push_reply(l, k, resp3);
                ffi::lua_rawseti(l, -2, (2 * i + 1) as _);
                push_reply(l, v, resp3);
                ffi::lua_rawseti(l, -2, (2 * i + 2) as _);
            }
        }
        Reply::Double(d) => {
            // RESP2 doubles were made strings by `normalize`.
            ffi::lua_pushnumber(l, *d);
            wrap(l, "double");
        }
        Reply::Line3(b',', text) if resp3 => {
            ffi::lua_pushnumber(l, text.parse::<f64>().unwrap_or(0.0));
            wrap(l, "double");
        }
        Reply::Line3(_, text) if resp3 => push_field(l, "big_number", text.as_bytes()),
        Reply::Line3(_, text) => push_bytes(l, text.as_bytes()),
        Reply::Bool(b) if resp3 => ffi::lua_pushboolean(l, *b as c_int),
        Reply::Bool(b) => ffi::lua_pushnumber(l, *b as u8 as f64),
    }
}

unsafe fn push_array(l: *mut lua_State, items: &[Reply], resp3: bool) {
    ffi::lua_createtable(l, items.len().min(1 << 20) as c_int, 0);
    for (i, item) in items.iter().enumerate() {
        push_reply(l, item, resp3);
        ffi::lua_rawseti(l, -2, (i + 1) as _);
    }
}

/// Pushes a table of `items` as Lua strings.
unsafe fn push_strings(l: *mut lua_State, items: &[Bytes]) {
    ffi::lua_createtable(l, items.len().min(1 << 20) as c_int, 0);
    for (i, item) in items.iter().enumerate() {
        push_bytes(l, item);
        ffi::lua_rawseti(l, -2, (i + 1) as _);
    }
}

/// What a run hands [`run_body`]: plain references, nothing to drop.
struct RunArgs<'a> {
    keys: &'a [Bytes],
    argv: &'a [Bytes],
    is_function: bool,
}

/// The body of a run, inside its protected call: makes KEYS and ARGV (the
/// globals of an EVAL script, the two arguments of a function) and calls
/// the script. Stack: 1 the script, 2 the [`RunArgs`] (light userdata);
/// upvalue 1 is the real global table. Its frame holds references only.
unsafe extern "C-unwind" fn run_body(l: *mut lua_State) -> c_int {
    let args = &*(ffi::lua_touserdata(l, 2) as *const RunArgs<'_>);
    ffi::lua_settop(l, 1);
    if args.is_function {
        push_strings(l, args.keys);
        push_strings(l, args.argv);
        ffi::lua_call(l, 2, 1);
    } else {
        push_bytes(l, b"KEYS");
        push_strings(l, args.keys);
        ffi::lua_rawset(l, ffi::lua_upvalueindex(1));
        push_bytes(l, b"ARGV");
        push_strings(l, args.argv);
        ffi::lua_rawset(l, ffi::lua_upvalueindex(1));
        ffi::lua_call(l, 0, 1);
    }
    1
}

/// [`run_body`] as a C closure over `globals` (the real global table), made
/// once: on Lua 5.1 every pushed C function is a new closure object, so a
/// run pushes this one instead of creating its own.
pub(crate) fn runner(lua: &Lua, globals: &Table) -> mlua::Result<Function> {
    // SAFETY: the closure takes the one argument (the table) as upvalue.
    unsafe {
        lua.exec_raw::<Function>(globals, |l| {
            ffi::lua_pushcclosure(l, run_body, 1);
        })
    }
}

/// Calls `func` under `handler` through `runner` (see [`runner`]). Returns
/// the script's value, or what the handler made of its error (`Err`).
///
/// One protected call, `lua_pcall` itself: mlua's `exec_raw` would wrap it
/// in a second one and create two C closures (garbage) per run. Outside the
/// protected call only non-raising API functions run (pushing values the
/// state already holds and a light userdata, on slots `lua_checkstack`
/// reserved), so no error can escape.
pub(crate) fn call_script(
    lua: &Lua,
    handler: &Function,
    runner: &Function,
    func: &Function,
    keys: &[Bytes],
    argv: &[Bytes],
    is_function: bool,
) -> mlua::Result<Result<Value, Value>> {
    let args = RunArgs {
        keys,
        argv,
        is_function,
    };
    lua.exec_raw_lua(|raw| {
        // SAFETY: see above; the stack is put back as it was before returning.
        unsafe {
            let l = raw.state();
            let top = ffi::lua_gettop(l);
            if ffi::lua_checkstack(l, 5) == 0 {
                return Err(mlua::Error::StackError);
            }
            let pushed = raw
                .push(handler)
                .and_then(|_| raw.push(runner))
                .and_then(|_| raw.push(func));
            if let Err(e) = pushed {
                ffi::lua_settop(l, top);
                return Err(e);
            }
            ffi::lua_pushlightuserdata(l, &args as *const RunArgs<'_> as *mut c_void);
            let status = ffi::lua_pcall(l, 2, 1, top + 1);
            let value = raw.pop_value();
            ffi::lua_settop(l, top);
            Ok(if status == 0 { Ok(value) } else { Err(value) })
        }
    })
}
