//! Persistence commands: SAVE, BGSAVE, LASTSAVE, SHUTDOWN, and DEBUG (RELOAD,
//! SLEEP, OBJECT, SET-ACTIVE-EXPIRE, EXPORT-RDB), which `enable-debug-command` guards.

use bytes::Bytes;

use super::flags::*;
use super::{spec, CommandSpec, Ctx, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::unix_ms;
use crate::persistence::{self, scheduler, ShutdownOptions};
use crate::reply::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "save",
        1,
        ADMIN | NOSCRIPT | NO_MULTI,
        NO_KEYS,
        "server",
        "Synchronously saves the database(s) to disk.",
        save,
    ),
    spec(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT,
        NO_KEYS,
        "server",
        "Asynchronously saves the database(s) to disk.",
        bgsave,
    ),
    spec(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        NO_KEYS,
        "server",
        "Returns the Unix timestamp of the last successful save to disk.",
        lastsave,
    ),
    spec(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | SENTINEL | NO_MULTI | ALLOW_BUSY,
        NO_KEYS,
        "server",
        "Synchronously saves the database(s) to disk and shuts down the server.",
        shutdown,
    ),
    spec(
        "debug",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        NO_KEYS,
        "server",
        "A container for debugging commands.",
        debug,
    ),
];

fn save(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    scheduler::reap(ctx.state);
    if ctx.state.persistence.job.in_progress() {
        return Err(CommandError::BgsaveInProgress);
    }
    scheduler::save_foreground(ctx.shared, ctx.state)
        .map(|_| Reply::ok())
        .map_err(|_| CommandError::Other("ERR".into()))
}

fn bgsave(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // FULL (forkless's own) rewrites the whole base even when a delta
    // against the last save would do.
    let (schedule, full) = match args.len() {
        1 => (false, false),
        2 if args[1].eq_ignore_ascii_case(b"schedule") => (true, false),
        2 if args[1].eq_ignore_ascii_case(b"full") => (false, true),
        2 if args[1].eq_ignore_ascii_case(b"cancel") => {
            return match scheduler::cancel_bgsave(ctx.state) {
                Some(scheduler::Cancelled::Running) => {
                    Ok(Reply::simple("Background saving cancelled"))
                }
                Some(scheduler::Cancelled::Scheduled) => {
                    Ok(Reply::simple("Scheduled background saving cancelled"))
                }
                None => Err(CommandError::BgsaveNothingToCancel),
            };
        }
        _ => return Err(CommandError::Syntax),
    };
    scheduler::reap(ctx.state);
    if ctx.state.persistence.job.in_progress() {
        if schedule {
            ctx.state.persistence.bgsave_scheduled = true;
            return Ok(Reply::simple("Background saving scheduled"));
        }
        return Err(CommandError::BgsaveInProgress);
    }
    ctx.state.persistence.force_full |= full;
    scheduler::start_bgsave(ctx.shared, ctx.state)?;
    Ok(Reply::simple("Background saving started"))
}

fn lastsave(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.state.persistence.last_save_unix))
}

fn shutdown(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut opts = ShutdownOptions::default();
    let mut abort = false;
    let mut other_flags = false;
    let mut now = false;
    for arg in &args[1..] {
        let a = arg.to_ascii_lowercase();
        match a.as_slice() {
            b"nosave" => opts.nosave = true,
            b"save" => opts.save = true,
            b"now" | b"force" => {
                opts.force |= a == b"force";
                now |= a == b"now";
                other_flags = true;
            }
            b"abort" => abort = true,
            _ => return Err(CommandError::Syntax),
        }
    }
    if (opts.nosave && opts.save) || (abort && (opts.nosave || opts.save || other_flags)) {
        return Err(CommandError::Syntax);
    }
    if abort {
        if crate::replication::shutdown::abort(ctx.state) {
            return Ok(Reply::ok());
        }
        return Err(CommandError::err("No shutdown in progress."));
    }
    tracing::info!("User requested shutdown...");
    // As Redis 7.0: a primary first waits for its replicas to catch up (NOW
    // skips it, and so does a client that cannot block: MULTI, scripts).
    if !now
        && ctx.may_block
        && ctx.state.repl.shutdown_abort.is_none()
        && crate::replication::shutdown::replicas_lag(ctx.state)
        && !crate::replication::shutdown::timeout(ctx.shared).is_zero()
    {
        if let Some(shared) = ctx.shared.self_arc() {
            let rx = crate::replication::shutdown::begin(shared, ctx.state, opts);
            ctx.blocked = Some(super::BlockRequest {
                // Outside the blocking registry's ids and WAIT's.
                waiter_id: u64::MAX / 2,
                rx,
                timeout: None,
                timeout_reply: Reply::Error(crate::replication::shutdown::FAILED.into()),
            });
            return Ok(Reply::NullArray);
        }
    }
    // Exits the process on success: the connection just closes, as in Redis.
    persistence::shutdown_and_exit(ctx.shared, ctx.state, opts);
    Err(CommandError::err("Errors trying to SHUTDOWN. Check logs."))
}

fn debug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    debug_allowed(ctx)?;
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match (sub.as_str(), args.len()) {
        ("reload", _) => debug_reload_args(ctx, args),
        ("sleep", 3) => debug_sleep(&args[2]),
        ("object", 3) => debug_object(ctx, &args[2]),
        ("export-rdb", 3) => debug_export_rdb(ctx, &args[2]),
        ("set-active-expire", 3) => {
            let on = crate::commands::args::parse_i64_strict(&args[2])
                .ok_or(CommandError::NotInteger)?;
            ctx.state.active_expire = on != 0;
            Ok(Reply::ok())
        }
        ("help", 2) => Ok(crate::commands::server::help_reply(
            "DEBUG",
            &[
                "EXPORT-RDB <file>",
                "    Write the data set as a Redis RDB version 10 file, from a snapshot, in the",
                "    background (the file appears when complete; relative to `dir`).",
                "OBJECT <key>",
                "    Show low-level info about the <key> and associated value.",
                "RELOAD [NOSAVE]",
                "    Save the RDB on disk and reload it back to memory.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not",
                "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
                "    default.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ],
        )),
        _ => Err(CommandError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}

/// `enable-debug-command`: `no` refuses DEBUG, `local` allows loopback clients only.
fn debug_allowed(ctx: &Ctx<'_>) -> Result<(), CommandError> {
    let setting = ctx.shared.config().enable_debug_command.clone();
    super::server::local_only(ctx, &setting, "DEBUG", "enable-debug-command")
}

/// DEBUG EXPORT-RDB: a clone of the keyspace (O(1), under the lock) goes to
/// a thread that writes it as a Redis RDB; writers go on meanwhile.
fn debug_export_rdb(ctx: &mut Ctx<'_>, file: &Bytes) -> CmdResult {
    // DEBUG is allowed while loading; an export then would miss the data set.
    if ctx.shared.loading.is_active() {
        return Err(CommandError::Loading);
    }
    let path = std::path::PathBuf::from(String::from_utf8_lossy(file).into_owned());
    let path = ctx.shared.config().dir.join(path);
    let snapshot = ctx.state.keyspace.clone();
    persistence::redis_rdb::export_in_background(snapshot, path).map_err(CommandError::err)?;
    Ok(Reply::simple("Background RDB export started"))
}

/// DEBUG SLEEP: stalls the whole server (it holds the state lock), as in Redis.
fn debug_sleep(arg: &Bytes) -> CmdResult {
    let secs = std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite())
        .unwrap_or(0.0)
        .max(0.0);
    std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
    Ok(Reply::ok())
}

fn debug_object(ctx: &mut Ctx<'_>, key: &Bytes) -> CmdResult {
    let now = ctx.now_ms;
    let Some(entry) = ctx.db().get(key, now) else {
        return Err(CommandError::err("no such key"));
    };
    let encoding = crate::commands::introspection::encoding(&entry.value);
    let serialized = crate::commands::introspection::entry_usage(key, entry, 5);
    let addr = entry as *const _ as usize;
    let mut text = format!(
        "Value at:0x{addr:x} refcount:1 encoding:{encoding} serializedlength:{serialized} \
         lru:0 lru_seconds_idle:0"
    );
    if let crate::keyspace::Value::List(l) = &entry.value {
        let nodes = l.chunk_count();
        text.push_str(&format!(
            " ql_nodes:{nodes} ql_avg_node:{:.2} ql_listpack_max:-2 ql_compressed:0 \
             ql_uncompressed_size:{serialized}",
            l.len() as f64 / nodes as f64
        ));
    }
    Ok(Reply::Simple(text))
}

fn debug_reload_args(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut save = true;
    for arg in &args[2..] {
        if arg.eq_ignore_ascii_case(b"nosave") {
            save = false;
        } else {
            return Err(CommandError::err(
                "DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
            ));
        }
    }
    debug_reload(ctx, save)
}

/// DEBUG RELOAD: save, empty the keyspace, load the dump back.
fn debug_reload(ctx: &mut Ctx<'_>, save: bool) -> CmdResult {
    scheduler::reap(ctx.state);
    if save {
        if ctx.state.persistence.job.in_progress() {
            return Err(CommandError::BgsaveInProgress);
        }
        scheduler::save_foreground(ctx.shared, ctx.state)
            .map_err(|_| CommandError::Other("ERR".into()))?;
    }
    let (path, databases, limits) = {
        let c = ctx.shared.config();
        (c.dump_path(), c.databases, crate::state::encodings_of(&c))
    };
    match persistence::chain::load_file(&path, databases, limits, unix_ms()) {
        Ok(chained) => {
            let loaded = chained.loaded;
            if !ctx.state.watches.is_empty() {
                for db in 0..loaded.keyspace.db_count() {
                    let state = &mut *ctx.state;
                    state.watches.touch_replaced(
                        db,
                        state.keyspace.db(db),
                        Some(loaded.keyspace.db(db)),
                        ctx.now_ms,
                    );
                }
            }
            ctx.state.persistence.keep_loaded(
                &ctx.shared.config(),
                &loaded.keyspace,
                chained.chain,
                &path,
            );
            if let Err(e) = persistence::install_loaded(
                ctx.state,
                loaded.keyspace,
                loaded.keys_loaded,
                loaded.keys_expired,
            ) {
                // As Redis's rdbLoad: a library that does not load fails it.
                tracing::warn!("DEBUG RELOAD: the snapshot's functions did not load: {e}");
                return Err(CommandError::err(
                    "Error trying to load the RDB dump, check server logs.",
                ));
            }
            tracing::info!("DB reloaded by DEBUG RELOAD");
            Ok(Reply::ok())
        }
        Err(e) => {
            tracing::warn!("DEBUG RELOAD cannot load {}: {e}", path.display());
            Err(CommandError::err(
                "Error trying to load the RDB dump, check server logs.",
            ))
        }
    }
}
