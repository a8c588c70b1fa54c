//! What a standalone server answers to cluster and module commands: CLUSTER,
//! READONLY, READWRITE and ASKING refuse with Redis's "cluster support
//! disabled" error, which cluster-aware clients read to fall back to a single
//! node; MODULE lists no modules and cannot load any.

use bytes::Bytes;

use super::flags::*;
use super::server::{dispatch_sub, help_reply, Sub};
use super::{spec, CommandSpec, Ctx, NO_KEYS};
use crate::errors::{CmdResult, CommandError};
use crate::reply::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        since: "3.0.0",
        ..spec(
            "cluster",
            -2,
            0,
            NO_KEYS,
            "cluster",
            "A container for cluster commands",
            cluster,
        )
    },
    CommandSpec {
        since: "3.0.0",
        ..spec(
            "readonly",
            1,
            LOADING | STALE | FAST,
            NO_KEYS,
            "cluster",
            "Enables read queries for a connection to a cluster replica node",
            disabled,
        )
    },
    CommandSpec {
        since: "3.0.0",
        ..spec(
            "readwrite",
            1,
            LOADING | STALE | FAST,
            NO_KEYS,
            "cluster",
            "Disables read queries for a connection to a cluster replica node",
            disabled,
        )
    },
    CommandSpec {
        since: "3.0.0",
        ..spec(
            "asking",
            1,
            FAST,
            NO_KEYS,
            "cluster",
            "Sent by cluster clients after an -ASK redirect",
            disabled,
        )
    },
    CommandSpec {
        since: "4.0.0",
        ..spec(
            "module",
            -2,
            0,
            NO_KEYS,
            "server",
            "A container for module commands",
            module,
        )
    },
];

/// Every CLUSTER subcommand of Redis 7.0 with its arity: each answers the
/// same error here, after the arity check Redis makes first.
pub(crate) const CLUSTER_SUBS: &[Sub] = &[
    sub("addslots", -3),
    sub("addslotsrange", -4),
    sub("bumpepoch", 2),
    sub("count-failure-reports", 3),
    sub("countkeysinslot", 3),
    sub("delslots", -3),
    sub("delslotsrange", -4),
    sub("failover", -2),
    sub("flushslots", 2),
    sub("forget", 3),
    sub("getkeysinslot", 4),
    sub("help", 2),
    sub("info", 2),
    sub("keyslot", 3),
    sub("links", 2),
    sub("meet", -4),
    sub("myid", 2),
    sub("nodes", 2),
    sub("replicas", 3),
    sub("replicate", 3),
    sub("reset", -2),
    sub("saveconfig", 2),
    sub("set-config-epoch", 3),
    sub("setslot", -4),
    sub("shards", 2),
    sub("slaves", 3),
    sub("slots", 2),
];

const fn sub(name: &'static str, arity: i32) -> Sub {
    Sub {
        name,
        arity,
        handler: disabled,
    }
}

fn cluster(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "cluster", CLUSTER_SUBS)
}

fn disabled(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Err(CommandError::err(
        "This instance has cluster support disabled",
    ))
}

pub(crate) const MODULE_SUBS: &[Sub] = &[
    Sub {
        name: "list",
        arity: 2,
        handler: module_list,
    },
    Sub {
        name: "load",
        arity: -3,
        handler: module_load,
    },
    Sub {
        name: "loadex",
        arity: -3,
        handler: module_load,
    },
    Sub {
        name: "unload",
        arity: 3,
        handler: module_unload,
    },
    Sub {
        name: "help",
        arity: 2,
        handler: module_help,
    },
];

fn module(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "module", MODULE_SUBS)
}

fn module_list(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Array(vec![]))
}

/// forkless has no module API: where `enable-module-command` lets the
/// command through, loading fails as a library Redis cannot open does.
fn module_load(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    module_allowed(ctx)?;
    tracing::warn!(
        "Module {} failed to load: forkless does not load Redis modules",
        String::from_utf8_lossy(&args[2])
    );
    Err(CommandError::err(
        "Error loading the extension. Please check the server logs.",
    ))
}

fn module_unload(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    module_allowed(ctx)?;
    Err(CommandError::err(
        "Error unloading module: no such module with that name",
    ))
}

fn module_allowed(ctx: &Ctx<'_>) -> Result<(), CommandError> {
    let setting = ctx
        .shared
        .config()
        .extra
        .get("enable-module-command")
        .cloned()
        .unwrap_or_default();
    super::server::local_only(ctx, &setting, "MODULE", "enable-module-command")
}

fn module_help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    ))
}
