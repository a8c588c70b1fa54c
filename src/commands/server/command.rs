//! COMMAND: the command table as clients introspect it (COMMAND, COUNT, LIST,
//! INFO, DOCS, GETKEYS, GETKEYSANDFLAGS, HELP), built from each [`CommandSpec`].
//!
//! Cluster-aware clients read key positions from COMMAND INFO, and redis-cli 7
//! reads COMMAND DOCS for its hints, so both follow Redis 7's reply shapes.

use bytes::Bytes;

use super::{args, dispatch_sub, help_reply, keyspecs, Sub};
use crate::commands::{all_commands, flags, lookup, CommandSpec, Ctx};
use crate::errors::{CmdResult, CommandError};
use crate::glob;
use crate::reply::Reply;

pub(super) const SUBS: &[Sub] = &[
    Sub {
        name: "count",
        arity: 2,
        handler: count,
    },
    Sub {
        name: "list",
        arity: -2,
        handler: list,
    },
    Sub {
        name: "info",
        arity: -2,
        handler: info,
    },
    Sub {
        name: "docs",
        arity: -2,
        handler: docs,
    },
    Sub {
        name: "getkeys",
        arity: -4,
        handler: getkeys,
    },
    Sub {
        name: "getkeysandflags",
        arity: -4,
        handler: getkeysandflags,
    },
    Sub {
        name: "help",
        arity: 2,
        handler: help,
    },
];

pub fn command(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() == 1 {
        return Ok(Reply::Array(sorted().into_iter().map(info_entry).collect()));
    }
    dispatch_sub(ctx, args, "command", SUBS)
}

/// Every command, by name, so replies are stable.
fn sorted() -> Vec<&'static CommandSpec> {
    let mut all: Vec<_> = all_commands().collect();
    all.sort_by_key(|s| s.name);
    all
}

fn count(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(all_commands().count() as i64))
}

/// A COMMAND LIST FILTERBY test on a listed name and its spec.
type ListFilter = dyn Fn(&str, &CommandSpec) -> bool;

fn list(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let filter: Box<ListFilter> = match args.len() {
        2 => Box::new(|_, _| true),
        5 if args::is(&args[2], "filterby") => {
            let value = args[4].clone();
            if args::is(&args[3], "pattern") {
                Box::new(move |name, _| glob::matches_nocase(&value, name.as_bytes()))
            } else if args::is(&args[3], "aclcat") {
                let cat = String::from_utf8_lossy(&value).to_ascii_lowercase();
                Box::new(move |_, s| acl_categories(s).iter().any(|c| c[1..] == cat))
            } else if args::is(&args[3], "module") {
                Box::new(|_, _| false)
            } else {
                return Err(CommandError::Syntax);
            }
        }
        _ => return Err(CommandError::Syntax),
    };
    Ok(Reply::Array(
        listed()
            .into_iter()
            .filter(|(name, spec)| filter(name, spec))
            .map(|(name, _)| Reply::Bulk(Bytes::from(name)))
            .collect(),
    ))
}

/// What COMMAND LIST names, as Redis 7.0: every command and, after a
/// container, each of its subcommands (`config|get`), each with the spec its
/// filters read.
fn listed() -> Vec<(String, CommandSpec)> {
    let mut out = Vec::new();
    for spec in sorted() {
        match super::subcommands(spec.name) {
            None => out.push((spec.name.to_string(), CommandSpec { ..*spec })),
            Some(subs) => {
                out.push((spec.name.to_string(), container_spec(spec)));
                for sub in subs {
                    out.push((format!("{}|{}", spec.name, sub.name), sub_spec(spec, sub)));
                }
            }
        }
    }
    out
}

/// A container command as COMMAND INFO shows it: no flags, category or key
/// positions of its own (its subcommands carry them).
fn container_spec(spec: &CommandSpec) -> CommandSpec {
    CommandSpec {
        flags: 0,
        group: "",
        first_key: 0,
        last_key: 0,
        step: 0,
        ..*spec
    }
}

/// A subcommand's own flags and key where [`keyspecs::subcommand`] has
/// them, else its container's.
fn sub_spec(spec: &CommandSpec, sub: &Sub) -> CommandSpec {
    match keyspecs::subcommand(spec.name, sub.name) {
        Some((flags, key)) => CommandSpec {
            flags,
            first_key: key,
            last_key: key,
            step: i32::from(key > 0),
            ..*spec
        },
        None => CommandSpec { ..*spec },
    }
}

fn info(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len() == 2 {
        return Ok(Reply::Array(sorted().into_iter().map(info_entry).collect()));
    }
    Ok(Reply::Array(
        args[2..].iter().map(|name| info_of(name)).collect(),
    ))
}

fn docs(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let specs: Vec<&CommandSpec> = if args.len() == 2 {
        sorted()
    } else {
        args[2..].iter().filter_map(|n| lookup(n)).collect()
    };
    Ok(Reply::Map(
        specs
            .into_iter()
            .map(|s| (Reply::bulk_str(s.name), docs_entry(s)))
            .collect(),
    ))
}

fn getkeys(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (_, keys) = keys_of(&args[2..])?;
    Ok(Reply::Array(keys.into_iter().map(Reply::Bulk).collect()))
}

fn getkeysandflags(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (spec, keys) = keys_of(&args[2..])?;
    if let Some(specs) = keyspecs::several_key_specs(spec.name) {
        let found = keyspecs::find_keys(specs, &args[2..]);
        return Ok(Reply::Array(
            found
                .into_iter()
                .map(|(i, flags)| {
                    let flags = flags.iter().map(|f| Reply::simple(f)).collect();
                    Reply::Array(vec![Reply::Bulk(args[2 + i].clone()), Reply::Set(flags)])
                })
                .collect(),
        ));
    }
    let name = match keyspecs_container(spec.name) {
        true => format!(
            "{}|{}",
            spec.name,
            String::from_utf8_lossy(&args[3]).to_ascii_lowercase()
        ),
        false => spec.name.to_string(),
    };
    let flags = keyspecs::key_spec(&name).map_or_else(|| key_spec_flags(spec), |k| k.flags);
    let key_flags: Vec<Reply> = flags.iter().map(|f| Reply::simple(f)).collect();
    Ok(Reply::Array(
        keys.into_iter()
            .map(|k| Reply::Array(vec![Reply::Bulk(k), Reply::Set(key_flags.clone())]))
            .collect(),
    ))
}

/// The key arguments of a full command line, from its (first, last, step).
fn keys_of(line: &[Bytes]) -> Result<(&'static CommandSpec, Vec<Bytes>), CommandError> {
    let spec = lookup(&line[0]).ok_or_else(|| CommandError::err("Invalid command specified"))?;
    if let Some(at) = numkeys_index(spec.name) {
        return numkeys_keys(spec, line, at).map(|keys| (spec, keys));
    }
    if keyspecs_container(spec.name) {
        return subcommand_keys(spec, line).map(|keys| (spec, keys));
    }
    if matches!(spec.name, "xread" | "xreadgroup") {
        if !spec.arity_ok(line.len()) {
            return Err(CommandError::err(
                "Invalid number of arguments specified for command",
            ));
        }
        return crate::commands::streams::stream_keys(line)
            .map(|keys| (spec, keys))
            .ok_or_else(|| CommandError::err("Invalid arguments specified for command"));
    }
    if let Some(specs) = keyspecs::several_key_specs(spec.name) {
        if !spec.arity_ok(line.len()) {
            return Err(CommandError::err(
                "Invalid number of arguments specified for command",
            ));
        }
        let keys = keyspecs::find_keys(specs, line);
        return Ok((
            spec,
            keys.into_iter().map(|(i, _)| line[i].clone()).collect(),
        ));
    }
    // Redis checks for key arguments before the command's arity.
    if spec.first_key <= 0 {
        return Err(CommandError::err("The command has no key arguments"));
    }
    if !spec.arity_ok(line.len()) {
        return Err(CommandError::err(
            "Invalid number of arguments specified for command",
        ));
    }
    // SORT's STORE key is found by parsing (Redis's movablekeys).
    let positions = match spec.name {
        "sort" => crate::commands::sort::keys(line),
        _ => key_positions(spec, line.len()),
    };
    let keys = positions
        .into_iter()
        .map(|i| line[i].clone())
        .collect::<Vec<_>>();
    // A container's keyless subcommand (OBJECT HELP) has no key specs of its own.
    if keys.is_empty() && super::subcommands(spec.name).is_some() {
        return Err(CommandError::err("The command has no key arguments"));
    }
    Ok((spec, keys))
}

/// Where the key count sits in the commands whose keys it gives (Redis's
/// `keynum` key specs); their table entries name at most the destination.
/// Containers whose subcommands have key positions of their own
/// ([`keyspecs::subcommand`]).
fn keyspecs_container(name: &str) -> bool {
    matches!(name, "xgroup" | "xinfo")
}

/// The key of a subcommand line (`XGROUP CREATE key ...`), checked in
/// Redis's order: a known subcommand, one that has keys, its arity.
fn subcommand_keys(spec: &CommandSpec, line: &[Bytes]) -> Result<Vec<Bytes>, CommandError> {
    let sub = line
        .get(1)
        .and_then(|word| {
            super::subcommands(spec.name)?
                .iter()
                .find(|s| args::is(word, s.name))
        })
        .ok_or_else(|| CommandError::err("Invalid command specified"))?;
    let key = keyspecs::subcommand(spec.name, sub.name).map_or(0, |(_, key)| key as usize);
    if key == 0 {
        return Err(CommandError::err("The command has no key arguments"));
    }
    let arity_ok = if sub.arity >= 0 {
        line.len() == sub.arity as usize
    } else {
        line.len() >= sub.arity.unsigned_abs() as usize
    };
    if !arity_ok {
        return Err(CommandError::err(
            "Invalid number of arguments specified for command",
        ));
    }
    Ok(vec![line[key].clone()])
}

fn numkeys_index(name: &str) -> Option<usize> {
    match name {
        "zunion" | "zinter" | "zdiff" | "zintercard" | "zmpop" | "sintercard" | "lmpop" => Some(1),
        "zunionstore" | "zinterstore" | "zdiffstore" | "bzmpop" | "blmpop" => Some(2),
        _ => None,
    }
}

/// The table's keys (a STORE's destination) then the `numkeys` keys after
/// the count at `at`.
fn numkeys_keys(spec: &CommandSpec, line: &[Bytes], at: usize) -> Result<Vec<Bytes>, CommandError> {
    let invalid = || CommandError::err("Invalid arguments specified for command");
    if !spec.arity_ok(line.len()) {
        return Err(CommandError::err(
            "Invalid number of arguments specified for command",
        ));
    }
    let n = line
        .get(at)
        .and_then(|a| args::parse_i64_strict(a))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n >= 1 && at + *n < line.len())
        .ok_or_else(invalid)?;
    let mut keys: Vec<Bytes> = key_positions(spec, line.len())
        .into_iter()
        .map(|i| line[i].clone())
        .collect();
    keys.extend(line[at + 1..=at + n].iter().cloned());
    Ok(keys)
}

/// Argument indexes holding keys in a command line of `argc` arguments.
pub fn key_positions(spec: &CommandSpec, argc: usize) -> Vec<usize> {
    if spec.first_key <= 0 || spec.step <= 0 {
        return Vec::new();
    }
    let argc = argc as i64;
    let last = if spec.last_key < 0 {
        argc + spec.last_key as i64
    } else {
        spec.last_key as i64
    };
    let last = last.min(argc - 1);
    (spec.first_key as i64..=last)
        .step_by(spec.step as usize)
        .map(|i| i as usize)
        .collect()
}

/// Command flags as COMMAND INFO lists them; Redis does not list `sentinel`.
/// Redis adds `movablekeys` last for commands whose key positions the
/// legacy (first, last, step) cannot give (the `numkeys` ones).
fn flag_names(spec: &CommandSpec) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = flags::NAMES
        .iter()
        .filter(|(bit, _)| spec.flags & bit != 0 && *bit != flags::SENTINEL)
        .map(|(_, name)| *name)
        .collect();
    if numkeys_index(spec.name).is_some()
        || matches!(spec.name, "xread" | "xreadgroup")
        || keyspecs::movable(spec.name)
    {
        names.push("movablekeys");
    }
    names
}

/// ACL categories as Redis derives them (read/write, the data type, fast/slow,
/// blocking, admin commands' `@dangerous`), in the order of Redis's category table.
fn acl_categories(spec: &CommandSpec) -> Vec<String> {
    let has = |bit: u32| spec.flags & bit != 0;
    if spec.group == "sort" {
        let access = if has(flags::WRITE) { "@write" } else { "@read" };
        let fixed = crate::commands::sort::ACL_CATEGORIES.iter();
        return std::iter::once(access)
            .chain(fixed.copied())
            .map(String::from)
            .collect();
    }
    let dangerous = has(flags::ADMIN) || matches!(spec.name, "flushdb" | "flushall" | "swapdb");
    let keyspace = matches!(spec.group, "keyspace" | "generic")
        || matches!(spec.name, "dbsize" | "flushdb" | "flushall" | "swapdb");
    let table: [(&str, bool); 20] = [
        ("@keyspace", keyspace),
        ("@read", has(flags::READONLY)),
        ("@write", has(flags::WRITE)),
        ("@set", spec.group == "set"),
        ("@sortedset", spec.group == "sortedset"),
        ("@list", spec.group == "list"),
        ("@hash", spec.group == "hash"),
        ("@string", spec.group == "string"),
        ("@bitmap", spec.group == "bitmap"),
        ("@hyperloglog", spec.group == "hyperloglog"),
        ("@geo", spec.group == "geo"),
        ("@stream", spec.group == "stream"),
        ("@pubsub", spec.group == "pubsub" && has(flags::PUBSUB)),
        ("@admin", has(flags::ADMIN)),
        ("@fast", has(flags::FAST)),
        ("@slow", !has(flags::FAST)),
        ("@blocking", has(flags::BLOCKING)),
        ("@dangerous", dangerous),
        ("@connection", spec.group == "connection"),
        ("@transaction", spec.group == "transactions"),
    ];
    table
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| name.to_string())
        .collect()
}

fn key_spec_flags(spec: &CommandSpec) -> &'static [&'static str] {
    if spec.is_write() {
        &["RW", "access", "update"]
    } else {
        &["RO", "access"]
    }
}

/// One key spec as COMMAND INFO shows it.
fn key_spec_reply(k: keyspecs::KeySpec) -> Reply {
    Reply::Set(vec![key_spec_map(k)])
}

fn key_spec_map(k: keyspecs::KeySpec) -> Reply {
    let s = |v: &str| Reply::bulk_str(v);
    let begin = match k.begin {
        keyspecs::Begin::Index(i) => Reply::Map(vec![
            (s("type"), s("index")),
            (s("spec"), Reply::Map(vec![(s("index"), Reply::Integer(i))])),
        ]),
        keyspecs::Begin::Keyword(word, from) => Reply::Map(vec![
            (s("type"), s("keyword")),
            (
                s("spec"),
                Reply::Map(vec![
                    (s("keyword"), s(word)),
                    (s("startfrom"), Reply::Integer(from)),
                ]),
            ),
        ]),
    };
    let mut fields = Vec::new();
    if let Some(notes) = k.notes {
        fields.push((s("notes"), s(notes)));
    }
    fields.extend([
        (
            s("flags"),
            Reply::Set(k.flags.iter().map(|f| Reply::simple(f)).collect()),
        ),
        (s("begin_search"), begin),
        (
            s("find_keys"),
            Reply::Map(vec![
                (s("type"), s("range")),
                (
                    s("spec"),
                    Reply::Map(vec![
                        (s("lastkey"), Reply::Integer(k.lastkey)),
                        (s("keystep"), Reply::Integer(k.keystep)),
                        (s("limit"), Reply::Integer(k.limit)),
                    ]),
                ),
            ]),
        ),
    ]);
    Reply::Map(fields)
}

fn key_specs(name: &str, spec: &CommandSpec) -> Reply {
    if let Some(specs) = keyspecs::several_key_specs(name) {
        return Reply::Set(specs.iter().map(|k| key_spec_map(*k)).collect());
    }
    if let Some(k) = keyspecs::key_spec(name) {
        return key_spec_reply(k);
    }
    if spec.first_key <= 0 {
        return Reply::Set(vec![]);
    }
    let lastkey = if spec.last_key < 0 {
        spec.last_key as i64
    } else {
        (spec.last_key - spec.first_key) as i64
    };
    let s = |v: &str| Reply::bulk_str(v);
    Reply::Set(vec![Reply::Map(vec![
        (
            s("flags"),
            Reply::Set(
                key_spec_flags(spec)
                    .iter()
                    .map(|f| Reply::simple(f))
                    .collect(),
            ),
        ),
        (
            s("begin_search"),
            Reply::Map(vec![
                (s("type"), s("index")),
                (
                    s("spec"),
                    Reply::Map(vec![(s("index"), Reply::Integer(spec.first_key as i64))]),
                ),
            ]),
        ),
        (
            s("find_keys"),
            Reply::Map(vec![
                (s("type"), s("range")),
                (
                    s("spec"),
                    Reply::Map(vec![
                        (s("lastkey"), Reply::Integer(lastkey)),
                        (s("keystep"), Reply::Integer(spec.step as i64)),
                        (s("limit"), Reply::Integer(0)),
                    ]),
                ),
            ]),
        ),
    ])])
}

/// One COMMAND INFO entry: name, arity, flags, first key, last key, step, ACL
/// categories, tips, key specs, subcommands. A container command (CONFIG, ...)
/// has no flags of its own and lists its subcommands, which carry them.
pub fn info_entry(spec: &CommandSpec) -> Reply {
    let Some(subs) = super::subcommands(spec.name) else {
        return entry(spec.name.to_string(), spec.arity, spec, Reply::Set(vec![]));
    };
    // Key positions (OBJECT/MEMORY's key is their third word) belong to the
    // subcommands too; the container itself shows none, as in Redis.
    let bare = container_spec(spec);
    let listed = subs.iter().map(|sub| sub_entry(spec, sub)).collect();
    entry(spec.name.to_string(), spec.arity, &bare, Reply::Set(listed))
}

/// A subcommand's COMMAND INFO entry (`xgroup|create`): its own flags and
/// key where [`keyspecs::subcommand`] has them, else its container's.
fn sub_entry(spec: &CommandSpec, sub: &Sub) -> Reply {
    let name = format!("{}|{}", spec.name, sub.name);
    entry(name, sub.arity, &sub_spec(spec, sub), Reply::Set(vec![]))
}

/// COMMAND INFO of one name: a command, or `container|subcommand`.
fn info_of(name: &[u8]) -> Reply {
    if let Some(bar) = name.iter().position(|&b| b == b'|') {
        let sub = lookup(&name[..bar]).and_then(|spec| {
            let subs = super::subcommands(spec.name)?;
            let sub = subs.iter().find(|s| args::is(&name[bar + 1..], s.name))?;
            Some(sub_entry(spec, sub))
        });
        return sub.unwrap_or(Reply::Null);
    }
    lookup(name).map(info_entry).unwrap_or(Reply::Null)
}

fn entry(name: String, arity: i32, spec: &CommandSpec, subcommands: Reply) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(name.clone())),
        Reply::Integer(arity as i64),
        Reply::Set(flag_names(spec).into_iter().map(Reply::simple).collect()),
        Reply::Integer(spec.first_key as i64),
        Reply::Integer(spec.last_key as i64),
        Reply::Integer(spec.step as i64),
        Reply::Set(
            acl_categories(spec)
                .into_iter()
                .map(Reply::Simple)
                .collect(),
        ),
        // Tips, key specs and subcommands are sets in RESP3, as in Redis 7.0.
        Reply::Set(
            keyspecs::tips(&name)
                .iter()
                .map(|t| Reply::bulk_str(t))
                .collect(),
        ),
        key_specs(&name, spec),
        subcommands,
    ])
}

/// One COMMAND DOCS entry. Redis's docs group for keyspace commands is `generic`.
fn docs_entry(spec: &CommandSpec) -> Reply {
    let group = match spec.group {
        "keyspace" | "sort" => "generic",
        g => g,
    };
    Reply::Map(vec![
        (Reply::bulk_str("summary"), Reply::bulk_str(spec.summary)),
        (Reply::bulk_str("since"), Reply::bulk_str(spec.since)),
        (Reply::bulk_str("group"), Reply::bulk_str(group)),
        (Reply::bulk_str("arguments"), Reply::Array(vec![])),
    ])
}

fn help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
        Ok(Reply::ok())
    }

    #[test]
    fn key_positions_follow_first_last_step() {
        let one = crate::commands::spec("x", 2, 0, (1, 1, 1), "string", "", noop);
        assert_eq!(key_positions(&one, 2), vec![1]);
        // MSET-like: every other argument from the first to the last.
        let pairs = crate::commands::spec("x", -3, 0, (1, -1, 2), "string", "", noop);
        assert_eq!(key_positions(&pairs, 5), vec![1, 3]);
        // DEL-like.
        let all = crate::commands::spec("x", -2, 0, (1, -1, 1), "keyspace", "", noop);
        assert_eq!(key_positions(&all, 4), vec![1, 2, 3]);
        let ping = lookup(b"ping").unwrap();
        assert!(key_positions(ping, 1).is_empty());
    }

    #[test]
    fn every_command_has_categories() {
        for spec in all_commands() {
            let cats = acl_categories(spec);
            assert!(
                cats.iter().any(|c| c == "@fast" || c == "@slow"),
                "{}",
                spec.name
            );
        }
    }
}
