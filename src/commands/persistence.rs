//! Persistence commands: SAVE, BGSAVE, LASTSAVE, SHUTDOWN, DEBUG RELOAD.

use bytes::Bytes;

use super::flags::*;
use super::{spec, CommandSpec, Ctx, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::keyspace::unix_ms;
use crate::persistence::{self, loader, scheduler, ShutdownOptions};
use crate::reply::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "save",
        1,
        ADMIN | NOSCRIPT,
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
        ADMIN | NOSCRIPT | LOADING | STALE | SENTINEL | ALLOW_BUSY,
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
    let schedule = match args.len() {
        1 => false,
        2 if args[1].eq_ignore_ascii_case(b"schedule") => true,
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
    for arg in &args[1..] {
        let a = arg.to_ascii_lowercase();
        match a.as_slice() {
            b"nosave" => opts.nosave = true,
            b"save" => opts.save = true,
            b"now" | b"force" => {
                opts.force |= a == b"force";
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
        return Err(CommandError::err("No shutdown in progress."));
    }
    tracing::info!("User requested shutdown...");
    // Exits the process on success: the connection just closes, as in Redis.
    persistence::shutdown_and_exit(ctx.shared, ctx.state, opts);
    Err(CommandError::err("Errors trying to SHUTDOWN. Check logs."))
}

fn debug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if !args[1].eq_ignore_ascii_case(b"reload") {
        return Err(CommandError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    }
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
    let (path, databases) = {
        let c = ctx.shared.config();
        (c.dump_path(), c.databases)
    };
    match loader::load_file(&path, Some(databases), unix_ms()) {
        Ok(loaded) => {
            ctx.state.keyspace = loaded.keyspace;
            ctx.state.persistence.last_load_keys_loaded = loaded.keys_loaded;
            ctx.state.persistence.last_load_keys_expired = loaded.keys_expired;
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
