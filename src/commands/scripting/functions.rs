//! FUNCTION (LOAD, DELETE, FLUSH, LIST, DUMP, RESTORE, STATS, KILL, HELP),
//! FCALL and FCALL_RO. The libraries live in [`crate::scripting::functions`].

use bytes::Bytes;

use super::{check_flags, run_script, split_keys};
use crate::commands::Ctx;
use crate::errors::{CmdResult, CommandError};
use crate::reply::Reply;

pub fn fcall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, args, false)
}

pub fn fcall_ro(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, args, true)
}

fn fcall_generic(ctx: &mut Ctx<'_>, args: &[Bytes], ro: bool) -> CmdResult {
    if crate::commands::args::parse_i64_strict(&args[2]).is_none() {
        return Err(CommandError::err("Bad number of keys provided"));
    }
    let (keys, argv) = split_keys(args)?;
    let scripting = &ctx.state.scripting;
    let f = scripting
        .functions
        .function(&args[1])
        .ok_or_else(|| CommandError::err("Function not found"))?;
    let no_writes = f.flags.iter().any(|f| f == "no-writes");
    let allow_oom = f.flags.iter().any(|f| f == "allow-oom");
    let prepared = scripting.prepare_function(f.callback.clone(), &f.name);
    check_flags(ctx, ro, no_writes, allow_oom)?;
    run_script(ctx, prepared, keys, argv, ro || no_writes, allow_oom)
}

fn arity_ok(sub: &[u8], argc: usize) -> bool {
    match sub {
        b"load" | b"restore" => argc >= 3,
        b"delete" => argc == 3,
        b"dump" | b"stats" | b"kill" | b"help" => argc == 2,
        _ => true,
    }
}

pub fn function(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    if !arity_ok(&sub, args.len()) {
        return Err(CommandError::wrong_arity(&format!(
            "function|{}",
            String::from_utf8_lossy(&sub)
        )));
    }
    let scripting = &mut ctx.state.scripting;
    match sub.as_slice() {
        b"load" => {
            let mut replace = false;
            for a in &args[2..args.len() - 1] {
                if a.eq_ignore_ascii_case(b"replace") {
                    replace = true;
                } else {
                    return Err(CommandError::err(format!(
                        "Unknown option given: {}",
                        String::from_utf8_lossy(a)
                    )));
                }
            }
            let code = &args[args.len() - 1];
            let name = scripting
                .function_load(code, replace)
                .map_err(CommandError::Other)?;
            ctx.state.dirty += 1;
            sync_data_set(ctx);
            Ok(Reply::bulk(name))
        }
        b"delete" => {
            if !scripting.functions.delete(&args[2]) {
                return Err(CommandError::err("Library not found"));
            }
            ctx.state.dirty += 1;
            sync_data_set(ctx);
            Ok(Reply::ok())
        }
        b"flush" => {
            if args.len() > 3
                || args.get(2).is_some_and(|m| {
                    !m.eq_ignore_ascii_case(b"sync") && !m.eq_ignore_ascii_case(b"async")
                })
            {
                return Err(CommandError::err(
                    "FUNCTION FLUSH only supports SYNC|ASYNC option",
                ));
            }
            scripting.functions.flush();
            ctx.state.dirty += 1;
            sync_data_set(ctx);
            Ok(Reply::ok())
        }
        b"list" => list(ctx, args),
        b"dump" => Ok(Reply::bulk(scripting.functions.dump())),
        b"restore" => {
            let policy = match args.get(3) {
                None => "append".to_string(),
                Some(p) => String::from_utf8_lossy(p).to_ascii_lowercase(),
            };
            if args.len() > 4 || !matches!(policy.as_str(), "append" | "replace" | "flush") {
                return Err(CommandError::err(
                    "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
                ));
            }
            scripting
                .function_restore(&args[2], &policy)
                .map_err(CommandError::Other)?;
            ctx.state.dirty += 1;
            sync_data_set(ctx);
            Ok(Reply::ok())
        }
        b"stats" => {
            let f = &scripting.functions;
            let lua = Reply::Map(vec![
                (
                    Reply::bulk_str("libraries_count"),
                    Reply::Integer(f.library_count() as i64),
                ),
                (
                    Reply::bulk_str("functions_count"),
                    Reply::Integer(f.function_count() as i64),
                ),
            ]);
            Ok(Reply::Map(vec![
                (Reply::bulk_str("running_script"), Reply::Null),
                (
                    Reply::bulk_str("engines"),
                    Reply::Map(vec![(Reply::bulk_str("LUA"), lua)]),
                ),
            ]))
        }
        // With the lock held here, nothing runs (see `super::answer_while_running`).
        b"kill" => Err(CommandError::Other(super::NOTBUSY.into())),
        b"help" => Ok(Reply::Array(
            FUNCTION_HELP.iter().map(|l| Reply::simple(l)).collect(),
        )),
        _ => Err(CommandError::unknown_subcommand("function", &args[1])),
    }
}

/// Functions are part of the data set: the keyspace (what snapshots clone)
/// holds their code.
fn sync_data_set(ctx: &mut Ctx<'_>) {
    let codes = ctx.state.scripting.functions.codes();
    ctx.state.keyspace.set_functions(codes);
}

fn list(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if !with_code && a.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && a.eq_ignore_ascii_case(b"libraryname") {
            if i + 1 >= args.len() {
                return Err(CommandError::err("library name argument was not given"));
            }
            i += 1;
            pattern = Some(&args[i]);
        } else {
            return Err(CommandError::err(format!(
                "Unknown argument {}",
                String::from_utf8_lossy(a)
            )));
        }
        i += 1;
    }
    let mut out = Vec::new();
    for lib in ctx.state.scripting.functions.libraries() {
        if let Some(p) = pattern {
            if !crate::glob::matches_nocase(p, lib.name.as_bytes()) {
                continue;
            }
        }
        let functions = lib
            .functions
            .values()
            .map(|f| {
                Reply::Map(vec![
                    (Reply::bulk_str("name"), Reply::bulk_str(&f.name)),
                    (
                        Reply::bulk_str("description"),
                        f.description
                            .as_deref()
                            .map(Reply::bulk_str)
                            .unwrap_or(Reply::Null),
                    ),
                    (
                        Reply::bulk_str("flags"),
                        Reply::Set(f.flags.iter().map(|x| Reply::simple(x)).collect()),
                    ),
                ])
            })
            .collect();
        let mut fields = vec![
            (Reply::bulk_str("library_name"), Reply::bulk_str(&lib.name)),
            (Reply::bulk_str("engine"), Reply::bulk_str("LUA")),
            (Reply::bulk_str("functions"), Reply::Array(functions)),
        ];
        if with_code {
            fields.push((
                Reply::bulk_str("library_code"),
                Reply::Bulk(lib.code.clone()),
            ));
        }
        out.push(Reply::Map(fields));
    }
    Ok(Reply::Array(out))
}

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];
