//! Scripting commands: EVAL, EVALSHA and their read-only twins, SCRIPT, and
//! (in [`functions`]) FUNCTION, FCALL and FCALL_RO.
//!
//! The handlers stay thin: the Lua state, the cache and the conversions live
//! in [`crate::scripting`]. What this module adds is the way back up for
//! `redis.call`: a [`ScriptCaller`] that runs each command through the
//! command table as the script's own client (the caller's connection, with
//! the script's database and protocol), refusing what scripts may not run.

pub mod functions;

use bytes::Bytes;

use super::flags::*;
use super::{spec, CommandSpec, Ctx, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::reply::{Protocol, Reply};
use crate::scripting::{Caller, Prepared};

const EVAL_FLAGS: u32 = NOSCRIPT | STALE | MAY_REPLICATE;
const EVAL_RO_FLAGS: u32 = NOSCRIPT | STALE | READONLY;

const fn since(version: &'static str, spec: CommandSpec) -> CommandSpec {
    CommandSpec {
        since: version,
        ..spec
    }
}

pub const COMMANDS: &[CommandSpec] = &[
    since(
        "2.6.0",
        spec(
            "eval",
            -3,
            EVAL_FLAGS,
            NO_KEYS,
            "scripting",
            "Executes a server-side Lua script.",
            eval,
        ),
    ),
    since(
        "2.6.0",
        spec(
            "evalsha",
            -3,
            EVAL_FLAGS,
            NO_KEYS,
            "scripting",
            "Executes a server-side Lua script by SHA1 digest.",
            evalsha,
        ),
    ),
    since(
        "7.0.0",
        spec(
            "eval_ro",
            -3,
            EVAL_RO_FLAGS,
            NO_KEYS,
            "scripting",
            "Executes a read-only server-side Lua script.",
            eval_ro,
        ),
    ),
    since(
        "7.0.0",
        spec(
            "evalsha_ro",
            -3,
            EVAL_RO_FLAGS,
            NO_KEYS,
            "scripting",
            "Executes a read-only server-side Lua script by SHA1 digest.",
            evalsha_ro,
        ),
    ),
    since(
        "2.6.0",
        spec(
            "script",
            -2,
            NOSCRIPT,
            NO_KEYS,
            "scripting",
            "A container for Lua scripts management commands.",
            script,
        ),
    ),
    since(
        "7.0.0",
        spec(
            "function",
            -2,
            NOSCRIPT,
            NO_KEYS,
            "scripting",
            "A container for function commands.",
            functions::function,
        ),
    ),
    since(
        "7.0.0",
        spec(
            "fcall",
            -3,
            EVAL_FLAGS,
            NO_KEYS,
            "scripting",
            "Invokes a function.",
            functions::fcall,
        ),
    ),
    since(
        "7.0.0",
        spec(
            "fcall_ro",
            -3,
            EVAL_RO_FLAGS,
            NO_KEYS,
            "scripting",
            "Invokes a read-only function.",
            functions::fcall_ro,
        ),
    ),
];

/// `-BUSY` for clients that arrive while a script is past the threshold.
pub const BUSY_SCRIPT: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// The same while a function runs.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
pub const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
pub const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";
const NOSCRIPT_ERR: &str = "NOSCRIPT No matching script. Please use EVAL.";

fn eval(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, false, false)
}

fn evalsha(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, true, false)
}

fn eval_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, false, true)
}

fn evalsha_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, true, true)
}

/// Splits `numkeys key... arg...` (from `args[2]` on) into keys and arguments.
pub fn split_keys(args: &[Bytes]) -> Result<(&[Bytes], &[Bytes]), CommandError> {
    let numkeys = super::args::int(&args[2])?;
    if numkeys < 0 {
        return Err(CommandError::err("Number of keys can't be negative"));
    }
    let rest = &args[3..];
    if numkeys as u64 > rest.len() as u64 {
        return Err(CommandError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    Ok(rest.split_at(numkeys as usize))
}

fn eval_generic(ctx: &mut Ctx<'_>, args: &[Bytes], by_sha: bool, ro: bool) -> CmdResult {
    let (keys, argv) = split_keys(args)?;
    let scripting = &mut ctx.state.scripting;
    let prepared = if by_sha {
        scripting
            .prepare_sha(&args[1])
            .ok_or_else(|| CommandError::Other(NOSCRIPT_ERR.into()))?
    } else {
        scripting
            .prepare_body(&args[1])
            .map_err(CommandError::Other)?
    };
    let Some(shebang) = prepared.shebang else {
        // No `#!lua` line: Redis 7.0's compatibility mode, no flags.
        return run_script(ctx, prepared, keys, argv, ro, false);
    };
    check_flags(ctx, ro, shebang.no_writes, shebang.allow_oom)?;
    run_script(
        ctx,
        prepared,
        keys,
        argv,
        ro || shebang.no_writes,
        shebang.allow_oom,
    )
}

/// What Redis checks before a script with flags (a `#!lua` line, or a
/// function) starts: a `*_RO` command needs `no-writes`, and over
/// `maxmemory` a script that may write needs `allow-oom`.
pub fn check_flags(
    ctx: &Ctx<'_>,
    ro: bool,
    no_writes: bool,
    allow_oom: bool,
) -> Result<(), CommandError> {
    if ro && !no_writes {
        return Err(CommandError::err(
            "Can not execute a script with write flag using *_ro command.",
        ));
    }
    let eviction = &ctx.state.eviction;
    if !no_writes && !allow_oom && eviction.settings.maxmemory > 0 && eviction.oom_at_command_start
    {
        return Err(CommandError::Oom);
    }
    Ok(())
}

/// Runs a prepared script or function as the caller's fake script client.
pub fn run_script(
    ctx: &mut Ctx<'_>,
    prepared: Prepared,
    keys: &[Bytes],
    argv: &[Bytes],
    ro: bool,
    allow_oom: bool,
) -> CmdResult {
    let saved_db = ctx.client.db;
    let saved_proto = ctx.client.proto;
    let saved_executing = ctx.client.tx.executing;
    let saved_may_block = ctx.may_block;
    // Commands called by the script run directly (no MULTI queueing, no
    // subscribed-mode checks) and never block.
    ctx.client.tx.executing = true;
    ctx.may_block = false;
    let reply = {
        let mut caller = ScriptCaller {
            ctx: &mut *ctx,
            db: saved_db,
            ro,
            allow_oom,
            wrote: false,
        };
        prepared.run(keys, argv, &mut caller)
    };
    ctx.client.db = saved_db;
    ctx.client.proto = saved_proto;
    ctx.client.tx.executing = saved_executing;
    ctx.may_block = saved_may_block;
    match reply {
        Reply::Error(text) => Err(CommandError::Other(text)),
        reply => Ok(reply),
    }
}

/// The fake client a script's commands run as.
struct ScriptCaller<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    /// The script's selected database (SELECT in a script does not move the caller).
    db: usize,
    ro: bool,
    /// The script's `allow-oom` flag: memory never refuses its commands.
    allow_oom: bool,
    /// A write command ran: from then on the script must run to its end,
    /// so memory no longer stops it.
    wrote: bool,
}

impl Caller for ScriptCaller<'_, '_> {
    fn call(&mut self, args: &[Bytes], resp: u8) -> Reply {
        let err = |t: &str| Reply::Error(t.to_string());
        let Some(spec) = super::lookup(&args[0]) else {
            return err("ERR Unknown Redis command called from script");
        };
        if !spec.arity_ok(args.len()) {
            return err("ERR Wrong number of args calling Redis command from script");
        }
        if spec.flags & NOSCRIPT != 0 {
            return err("ERR This Redis command is not allowed from script");
        }
        // Over maxmemory when the script started, and nothing written yet:
        // a command that may grow memory is refused (Redis's
        // `scriptVerifyOOM`).
        let eviction = &self.ctx.state.eviction;
        if spec.flags & super::flags::DENYOOM != 0
            && !self.allow_oom
            && !self.wrote
            && eviction.settings.maxmemory > 0
            && eviction.oom_at_command_start
        {
            return Reply::Error(CommandError::Oom.to_string());
        }
        if spec.is_write() {
            if self.ro {
                return err("ERR Write commands are not allowed from read-only scripts.");
            }
            self.ctx.shared.scripts.mark_write();
            self.wrote = true;
        }
        self.ctx.client.db = self.db;
        self.ctx.client.proto = if resp == 3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        };
        // The checks `dispatch` makes beyond the ones above: authentication,
        // loading and eviction were settled for the script itself, and
        // MULTI queueing is off while it runs; the replication refusals
        // remain.
        let result = match super::replication_refusal(self.ctx, spec) {
            Some(e) => {
                self.ctx.state.stats.command(spec.name).rejected_calls += 1;
                Err(super::transactions::reject(self.ctx, spec, e))
            }
            None => super::call(self.ctx, spec, args),
        };
        let reply = result.unwrap_or_else(|e| e.to_reply());
        if let Reply::Error(text) = &reply {
            self.ctx.state.stats.record_error(text);
        }
        self.db = self.ctx.client.db;
        reply
    }
}

fn script(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let argc = args.len();
    let arity_ok = match sub.as_slice() {
        b"load" => argc == 3,
        b"exists" => argc >= 3,
        b"kill" | b"help" => argc == 2,
        _ => true,
    };
    if !arity_ok {
        return Err(CommandError::wrong_arity(&format!(
            "script|{}",
            String::from_utf8_lossy(&sub)
        )));
    }
    match sub.as_slice() {
        b"load" => {
            let sha = ctx
                .state
                .scripting
                .load(&args[2])
                .map_err(CommandError::Other)?;
            Ok(Reply::bulk(sha))
        }
        b"exists" => Ok(Reply::Array(
            args[2..]
                .iter()
                .map(|sha| Reply::Integer(ctx.state.scripting.exists(sha) as i64))
                .collect(),
        )),
        b"flush" => {
            if let Some(mode) = args.get(2) {
                let m = mode.to_ascii_lowercase();
                if argc > 3 || (m != b"sync" && m != b"async") {
                    return Err(CommandError::err(
                        "SCRIPT FLUSH only support SYNC|ASYNC option",
                    ));
                }
            }
            ctx.state.scripting.flush_scripts();
            Ok(Reply::ok())
        }
        // With the lock held here, no script is running (a running one is
        // killed before the lock, see `crate::connection`).
        b"kill" => Err(CommandError::Other(NOTBUSY.into())),
        b"help" => Ok(Reply::Array(
            SCRIPT_HELP.iter().map(|l| Reply::simple(l)).collect(),
        )),
        _ => Err(CommandError::unknown_subcommand("script", &args[1])),
    }
}

const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

/// What a connection answers, without the state lock, while a script runs:
/// `Some(reply)` for SCRIPT KILL / FUNCTION KILL and, past the threshold, the
/// BUSY error for anything else. `None` means the command must wait for the
/// lock (SHUTDOWN NOSAVE also asks the script to stop first).
pub fn answer_while_running(
    watch: &crate::scripting::busy::ScriptWatch,
    args: &[Bytes],
) -> Option<Reply> {
    use crate::scripting::busy::{KILL_SCRIPT, KILL_SHUTDOWN};
    let running = watch.running()?;
    let name = args[0].to_ascii_lowercase();
    let sub = args.get(1).map(|a| a.to_ascii_lowercase());
    let is_kill = args.len() == 2 && sub.as_deref() == Some(b"kill".as_slice());
    let busy_text =
        |function: bool| Reply::Error(if function { BUSY_FUNCTION } else { BUSY_SCRIPT }.into());
    if is_kill && (name == b"script" || name == b"function") {
        let by_function = name == b"function";
        if running.wrote {
            return Some(Reply::Error(UNKILLABLE.into()));
        }
        if by_function != running.is_function {
            return Some(busy_text(running.is_function));
        }
        watch.request_kill(KILL_SCRIPT);
        return Some(Reply::ok());
    }
    if name == b"shutdown" && args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"nosave")) {
        watch.request_kill(KILL_SHUTDOWN);
        return None;
    }
    running.busy.then(|| busy_text(running.is_function))
}
