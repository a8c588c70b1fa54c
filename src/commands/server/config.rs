//! CONFIG GET, SET, RESETSTAT, HELP over the live [`Config`].
//!
//! Each parameter is one [`Param`]: how to print it and, if it can change at run
//! time, how to parse a new value into a [`Config`]. CONFIG SET applies every
//! pair to a copy and installs the copy only if all of them parsed, so a failed
//! SET changes nothing, as in Redis. Parameters clients and benchmarks query but
//! forkless does not implement are reported with Redis's defaults and refused
//! on SET.
//!
//! Lock order: CONFIG SET takes the config write lock while it holds the state
//! lock, so no code may wait for the state lock while holding a config guard.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{args, dispatch_sub, help_reply, Sub};
use crate::commands::Ctx;
use crate::config::{self, Config};
use crate::errors::{CmdResult, CommandError};
use crate::glob;
use crate::reply::Reply;
use crate::state::Stats;

pub(super) const SUBS: &[Sub] = &[
    Sub {
        name: "get",
        arity: -3,
        handler: get,
    },
    Sub {
        name: "set",
        arity: -4,
        handler: set,
    },
    Sub {
        name: "resetstat",
        arity: 2,
        handler: resetstat,
    },
    Sub {
        name: "help",
        arity: 2,
        handler: help,
    },
];

pub fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    dispatch_sub(ctx, args, "config", SUBS)
}

type Getter = fn(&Config) -> String;
/// Parses `value` into the config, or returns Redis's reason for refusing it.
type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// How a parameter reacts to CONFIG SET.
#[derive(Clone, Copy)]
enum Change {
    Set(Setter),
    /// Fixed for the process's life (Redis's immutable configs).
    Immutable,
    /// Reported for clients' sake; forkless implements only this value.
    Fixed,
}

struct Param {
    name: &'static str,
    get: Getter,
    change: Change,
}

const PARAMS: &[Param] = &[
    Param {
        name: "port",
        get: |c| c.port.to_string(),
        // Rebinding listeners at run time is not supported.
        change: Change::Immutable,
    },
    Param {
        name: "bind",
        get: |c| c.bind.join(" "),
        change: Change::Immutable,
    },
    Param {
        name: "dir",
        get: |c| {
            std::fs::canonicalize(&c.dir)
                .unwrap_or_else(|_| c.dir.clone())
                .display()
                .to_string()
        },
        change: Change::Set(set_dir),
    },
    Param {
        name: "dbfilename",
        get: |c| c.dbfilename.clone(),
        change: Change::Set(|c, v| {
            c.dbfilename = config::validate_dbfilename(v).map_err(|e| e.0)?;
            Ok(())
        }),
    },
    Param {
        name: "save",
        get: |c| c.save_string(),
        change: Change::Set(|c, v| {
            c.save = config::parse_save(v).map_err(|e| e.0)?;
            Ok(())
        }),
    },
    Param {
        name: "databases",
        get: |c| c.databases.to_string(),
        change: Change::Immutable,
    },
    Param {
        name: "maxclients",
        get: |c| c.maxclients.to_string(),
        change: Change::Set(|c, v| {
            c.maxclients = int_in(v, 1, u32::MAX as i64)? as usize;
            Ok(())
        }),
    },
    Param {
        name: "appendonly",
        get: |_| "no".into(),
        change: Change::Set(|_, v| match yes_no(v)? {
            false => Ok(()),
            true => Err("appendonly is not supported: forkless persists with snapshots".into()),
        }),
    },
    Param {
        name: "stop-writes-on-bgsave-error",
        get: |c| yes_no_str(c.stop_writes_on_bgsave_error),
        change: Change::Set(|c, v| {
            c.stop_writes_on_bgsave_error = yes_no(v)?;
            Ok(())
        }),
    },
    Param {
        name: "proto-max-bulk-len",
        get: |c| c.proto_max_bulk_len.to_string(),
        change: Change::Set(|c, v| {
            let n = mem_in(v, 1024 * 1024, i64::MAX)?;
            c.proto_max_bulk_len = usize::try_from(n).unwrap_or(usize::MAX);
            Ok(())
        }),
    },
    Param {
        name: "hz",
        get: |c| c.hz.to_string(),
        change: Change::Set(|c, v| {
            // Redis accepts any non-negative value and clamps it to 1..=500.
            c.hz = int_in(v, 0, i32::MAX as i64)?.clamp(1, 500) as u32;
            Ok(())
        }),
    },
    Param {
        name: "timeout",
        get: |c| c.timeout.to_string(),
        change: Change::Set(|c, v| {
            c.timeout = int_in(v, 0, i32::MAX as i64)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "loglevel",
        get: |c| c.loglevel.clone(),
        change: Change::Set(|c, v| {
            let lower = v.to_ascii_lowercase();
            c.loglevel = config::validate_loglevel(&lower).map_err(|_| {
                "argument(s) must be one of the following: debug, verbose, notice, warning"
                    .to_string()
            })?;
            Ok(())
        }),
    },
    Param {
        name: "requirepass",
        get: |c| c.requirepass.clone(),
        change: Change::Set(|c, v| {
            c.requirepass = v.to_string();
            Ok(())
        }),
    },
    Param {
        name: "client-query-buffer-limit",
        get: |c| c.client_query_buffer_limit.to_string(),
        change: Change::Set(|c, v| {
            c.client_query_buffer_limit = mem_in(v, 1024 * 1024, i64::MAX)? as u64;
            Ok(())
        }),
    },
    Param {
        name: "client-output-buffer-limit",
        get: |c| c.client_output_buffer_limit.to_config_string(),
        change: Change::Set(|c, v| c.client_output_buffer_limit.apply(v, parse_memory)),
    },
    Param {
        name: "maxmemory",
        get: |_| "0".into(),
        change: Change::Fixed,
    },
    Param {
        name: "maxmemory-policy",
        get: |_| "noeviction".into(),
        change: Change::Fixed,
    },
    Param {
        name: "maxmemory-samples",
        get: |_| "5".into(),
        change: Change::Fixed,
    },
    Param {
        name: "appendfsync",
        get: |_| "everysec".into(),
        change: Change::Fixed,
    },
    Param {
        name: "appendfilename",
        get: |_| "appendonly.aof".into(),
        change: Change::Immutable,
    },
    Param {
        name: "rdbcompression",
        get: |_| "no".into(),
        change: Change::Fixed,
    },
    Param {
        name: "rdbchecksum",
        get: |_| "yes".into(),
        change: Change::Fixed,
    },
    Param {
        name: "daemonize",
        get: |_| "no".into(),
        change: Change::Immutable,
    },
    Param {
        name: "io-threads",
        get: |_| "1".into(),
        change: Change::Immutable,
    },
    Param {
        name: "cluster-enabled",
        get: |_| "no".into(),
        change: Change::Immutable,
    },
    Param {
        name: "tcp-backlog",
        get: |_| "511".into(),
        change: Change::Immutable,
    },
    Param {
        name: "tcp-keepalive",
        get: |_| "0".into(),
        change: Change::Fixed,
    },
    Param {
        name: "notify-keyspace-events",
        get: |_| String::new(),
        change: Change::Fixed,
    },
    Param {
        name: "slowlog-log-slower-than",
        get: |_| "10000".into(),
        change: Change::Fixed,
    },
    Param {
        name: "slowlog-max-len",
        get: |_| "128".into(),
        change: Change::Fixed,
    },
    Param {
        name: "protected-mode",
        get: |c| yes_no_str(c.protected_mode),
        change: Change::Set(|c, v| {
            c.protected_mode = yes_no(v)?;
            Ok(())
        }),
    },
];

fn find(name: &[u8]) -> Option<&'static Param> {
    PARAMS
        .iter()
        .find(|p| p.name.as_bytes().eq_ignore_ascii_case(name))
}

fn yes_no_str(v: bool) -> String {
    if v { "yes" } else { "no" }.into()
}

fn yes_no(v: &str) -> Result<bool, String> {
    if v.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".into())
    }
}

fn int_in(v: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let n = args::parse_i64_strict(v.as_bytes())
        .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
    check_range(n, lo, hi)
}

fn check_range(n: i64, lo: i64, hi: i64) -> Result<i64, String> {
    if n < lo || n > hi {
        return Err(format!("argument must be between {lo} and {hi} inclusive"));
    }
    Ok(n)
}

/// A memory amount as Redis's memtoull reads it: digits, then an optional unit
/// (`b`, `k`, `kb`, `m`, `mb`, `g`, `gb`, case-insensitive; `k` = 1000, `kb` = 1024).
pub fn parse_memory(v: &str) -> Option<i64> {
    let lower = v.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let mul: i64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.is_empty() {
        return None;
    }
    digits.parse::<i64>().ok()?.checked_mul(mul)
}

fn mem_in(v: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let n = parse_memory(v).ok_or_else(|| "argument must be a memory value".to_string())?;
    check_range(n, lo, hi)
}

/// Like Redis's chdir: the directory must exist. The path is kept absolute so
/// later saves do not depend on the process's working directory.
fn set_dir(c: &mut Config, v: &str) -> Result<(), String> {
    let path = PathBuf::from(v);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err("Not a directory".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("No such file or directory".into())
        }
        Err(e) => return Err(e.to_string()),
    }
    c.dir = std::fs::canonicalize(&path).unwrap_or(path);
    Ok(())
}

fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let config = ctx.shared.config().clone();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut pairs = Vec::new();
    for pattern in &args[2..] {
        if !pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            // An exact name is echoed as the client wrote it, as Redis does.
            if let Some(p) = find(pattern) {
                if !seen.contains(&p.name) {
                    seen.push(p.name);
                    pairs.push((
                        Reply::Bulk(pattern.clone()),
                        Reply::bulk_str(&(p.get)(&config)),
                    ));
                }
            }
            continue;
        }
        for p in PARAMS {
            if !seen.contains(&p.name) && glob::matches_nocase(pattern, p.name.as_bytes()) {
                seen.push(p.name);
                pairs.push((Reply::bulk_str(p.name), Reply::bulk_str(&(p.get)(&config))));
            }
        }
    }
    Ok(Reply::Map(pairs))
}

fn set_failed(name: &str, reason: &str) -> CommandError {
    CommandError::err(format!(
        "CONFIG SET failed (possibly related to argument '{name}') - {reason}"
    ))
}

fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CommandError::Syntax);
    }
    let pairs: Vec<(&Bytes, &Bytes)> = args[2..].chunks(2).map(|c| (&c[0], &c[1])).collect();
    // Every name must be known before anything is parsed, as in Redis.
    let mut params = Vec::new();
    for (name, _) in &pairs {
        let Some(p) = find(name) else {
            return Err(CommandError::err(format!(
                "Unknown option or number of arguments for CONFIG SET - '{}'",
                String::from_utf8_lossy(name)
            )));
        };
        if params.iter().any(|q: &&Param| q.name == p.name) {
            return Err(set_failed(p.name, "duplicate parameter"));
        }
        params.push(p);
    }
    let current = ctx.shared.config().clone();
    let mut next = current.clone();
    for (p, (_, value)) in params.iter().zip(&pairs) {
        let value = String::from_utf8_lossy(value);
        match p.change {
            Change::Set(setter) => setter(&mut next, &value).map_err(|r| set_failed(p.name, &r))?,
            Change::Immutable => return Err(set_failed(p.name, "can't set immutable config")),
            Change::Fixed if value == (p.get)(&current) => {}
            Change::Fixed => {
                return Err(set_failed(
                    p.name,
                    &format!("forkless supports only '{}'", (p.get)(&current)),
                ))
            }
        }
    }
    *ctx.shared.config_mut() = next;
    Ok(Reply::ok())
}

fn resetstat(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.state.stats = Stats::default();
    ctx.state.keyspace.reset_expired_count();
    let net = &ctx.shared.net;
    for counter in [
        &net.total_connections_received,
        &net.rejected_connections,
        &net.net_input_bytes,
        &net.net_output_bytes,
    ] {
        counter.store(0, Ordering::Relaxed);
    }
    Ok(Reply::ok())
}

fn help(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("2mb"), Some(2 * 1024 * 1024));
        assert_eq!(parse_memory("1gb"), Some(1 << 30));
        assert_eq!(parse_memory("x"), None);
        assert_eq!(parse_memory("1tb"), None);
        assert_eq!(parse_memory(""), None);
    }

    #[test]
    fn ranges_use_redis_text() {
        assert_eq!(
            int_in("99999", 0, 65535).unwrap_err(),
            "argument must be between 0 and 65535 inclusive"
        );
        assert_eq!(
            int_in("abc", 0, 1).unwrap_err(),
            "argument couldn't be parsed into an integer"
        );
        assert_eq!(
            yes_no("maybe").unwrap_err(),
            "argument must be 'yes' or 'no'"
        );
    }

    #[test]
    fn hz_is_clamped() {
        let mut c = Config::default();
        let Change::Set(setter) = find(b"HZ").unwrap().change else {
            panic!("hz is settable")
        };
        setter(&mut c, "0").unwrap();
        assert_eq!(c.hz, 1);
        setter(&mut c, "1000").unwrap();
        assert_eq!(c.hz, 500);
    }

    #[test]
    fn dir_must_exist() {
        let mut c = Config::default();
        assert_eq!(
            set_dir(&mut c, "/nonexistent/forkless").unwrap_err(),
            "No such file or directory"
        );
        set_dir(&mut c, "/tmp").unwrap();
        assert!(c.dir.is_absolute());
    }
}
