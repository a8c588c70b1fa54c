//! The configuration parameter table: every parameter Redis 7.0 answers to
//! `CONFIG GET *`, with its type, default, validation and whether it changes
//! what forkless does.
//!
//! CONFIG GET/SET/REWRITE and the redis.conf reader all go through [`PARAMS`],
//! so a value accepted in one place is accepted (and printed) the same way in
//! the others. A parameter is one of:
//!
//! - [`Role::Acts`]: backed by a [`Config`] field that forkless uses;
//! - [`Role::Stored`]: accepted with Redis's validation, kept in
//!   [`Config::extra`] and reported back, but without effect (encoding and
//!   tuning knobs of Redis's internals, replication, TLS, AOF tuning ...);
//! - [`Role::Fixed`]: forkless implements only the default value (turning it
//!   on would promise a feature forkless lacks, e.g. `appendonly yes`).

use std::path::PathBuf;

use crate::config::{self, Config};

/// Reads a parameter's current value as CONFIG GET prints it.
pub type Getter = fn(&Config) -> String;
/// Parses a new value into the config, or returns Redis's reason for refusing it.
pub type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// A stored parameter's value type, with Redis's validation.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    /// An integer within the inclusive range.
    Int(i64, i64),
    /// A memory amount (`1gb`, `100mb`, `4096`) within the inclusive range,
    /// printed back in bytes.
    Mem(i64, i64),
    /// One of these values, case-insensitive, printed lower-case.
    Enum(&'static [&'static str]),
    /// A memory amount, or a percentage (`10%`) of `maxmemory`; printed in
    /// bytes or as the percentage.
    MemOrPercent,
    /// Any string (paths, addresses, lists Redis parses specially).
    Str,
}

#[derive(Clone, Copy)]
pub enum Role {
    Acts(Getter, Setter),
    Stored(Kind),
    Fixed,
}

pub struct Param {
    pub name: &'static str,
    /// Another name for the same parameter (`hash-max-ziplist-entries` for
    /// `hash-max-listpack-entries`); both answer CONFIG GET.
    pub alias: Option<&'static str>,
    pub default: &'static str,
    /// False for Redis's immutable configs: CONFIG SET refuses them; they are
    /// set from the command line or the config file only.
    pub mutable: bool,
    pub role: Role,
    /// redis.conf takes several words for it (`save 3600 1`, `bind a b`).
    pub multi_word: bool,
}

impl Param {
    /// True when forkless behaves differently with a different value.
    pub fn acts(&self) -> bool {
        matches!(self.role, Role::Acts(..))
    }

    /// The current value as CONFIG GET prints it.
    pub fn get(&self, c: &Config) -> String {
        match self.role {
            Role::Acts(get, _) => get(c),
            Role::Stored(_) => c
                .extra
                .get(self.name)
                .cloned()
                .unwrap_or_else(|| self.default.to_string()),
            Role::Fixed => self.default.to_string(),
        }
    }

    /// Validates `value` and applies it to `c` (no mutability check here).
    pub fn set(&self, c: &mut Config, value: &str) -> Result<(), String> {
        match self.role {
            Role::Acts(_, set) => set(c, value),
            Role::Stored(kind) => {
                let normal = validate(kind, value)?;
                c.extra.insert(self.name, normal);
                Ok(())
            }
            Role::Fixed if value.eq_ignore_ascii_case(self.default) => Ok(()),
            Role::Fixed => Err(format!(
                "forkless supports only '{}' for this parameter",
                self.default
            )),
        }
    }

    /// The names this parameter answers to.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.alias)
    }
}

/// Checks a stored value and returns it as CONFIG GET prints it.
pub fn validate(kind: Kind, value: &str) -> Result<String, String> {
    match kind {
        Kind::Bool => yes_no(value).map(|b| yes_no_str(b).to_string()),
        Kind::Int(lo, hi) => int_in(value, lo, hi).map(|n| n.to_string()),
        Kind::Mem(lo, hi) => mem_in(value, lo, hi).map(|n| n.to_string()),
        Kind::Enum(values) => values
            .iter()
            .find(|v| v.eq_ignore_ascii_case(value))
            .map(|v| v.to_string())
            .ok_or_else(|| {
                format!(
                    "argument(s) must be one of the following: {}",
                    values.join(", ")
                )
            }),
        Kind::MemOrPercent => mem_or_percent(value).map(|v| match v {
            MemOrPercent::Bytes(n) => n.to_string(),
            MemOrPercent::Percent(0) => "0".into(),
            MemOrPercent::Percent(p) => format!("{p}%"),
        }),
        Kind::Str => Ok(value.to_string()),
    }
}

/// A value of [`Kind::MemOrPercent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemOrPercent {
    Bytes(u64),
    Percent(u64),
}

impl MemOrPercent {
    /// The bytes it stands for, given `maxmemory`.
    pub fn bytes_of(self, maxmemory: u64) -> u64 {
        match self {
            MemOrPercent::Bytes(n) => n,
            MemOrPercent::Percent(p) => maxmemory / 100 * p + maxmemory % 100 * p / 100,
        }
    }
}

/// Parses a memory amount or a percentage, with Redis's errors.
pub fn mem_or_percent(v: &str) -> Result<MemOrPercent, String> {
    const BAD: &str = "argument must be a memory or percent value";
    if let Some(p) = v.strip_suffix('%') {
        let p = crate::numbers::parse_i64_strict(p.as_bytes())
            .filter(|p| *p >= 0)
            .ok_or(BAD)?;
        if p > 100 {
            return Err("percentage argument must be less or equal to 100".into());
        }
        return Ok(MemOrPercent::Percent(p as u64));
    }
    match parse_memory(v) {
        Some(n) if n >= 0 => Ok(MemOrPercent::Bytes(n as u64)),
        _ => Err(BAD.into()),
    }
}

pub fn yes_no_str(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}

pub fn yes_no(v: &str) -> Result<bool, String> {
    if v.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".into())
    }
}

pub fn int_in(v: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let n = crate::numbers::parse_i64_strict(v.as_bytes())
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
        .find(|c: char| !c.is_ascii_digit() && c != '-')
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

pub fn mem_in(v: &str, lo: i64, hi: i64) -> Result<i64, String> {
    let n = parse_memory(v).ok_or_else(|| "argument must be a memory value".to_string())?;
    check_range(n, lo, hi)
}

/// Like Redis's chdir: the directory must exist. The path is kept absolute so
/// later saves do not depend on the process's working directory.
pub fn set_dir(c: &mut Config, v: &str) -> Result<(), String> {
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

/// Finds a parameter by name or alias, case-insensitively.
pub fn find(name: &[u8]) -> Option<&'static Param> {
    PARAMS
        .iter()
        .find(|p| p.names().any(|n| n.as_bytes().eq_ignore_ascii_case(name)))
}

/// Fills `c.extra` with every stored parameter's default.
pub fn stored_defaults() -> std::collections::BTreeMap<&'static str, String> {
    PARAMS
        .iter()
        .filter(|p| matches!(p.role, Role::Stored(_)))
        .map(|p| (p.name, p.default.to_string()))
        .collect()
}

const I32: i64 = i32::MAX as i64;
const U32: i64 = u32::MAX as i64;
const MAX: i64 = i64::MAX;

const fn stored(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        alias: None,
        default,
        mutable: true,
        role: Role::Stored(kind),
        multi_word: false,
    }
}

const fn imm(p: Param) -> Param {
    Param {
        mutable: false,
        ..p
    }
}

const fn alias(p: Param, alias: &'static str) -> Param {
    Param {
        alias: Some(alias),
        ..p
    }
}

const fn words(p: Param) -> Param {
    Param {
        multi_word: true,
        ..p
    }
}

const fn acts(name: &'static str, default: &'static str, get: Getter, set: Setter) -> Param {
    Param {
        name,
        alias: None,
        default,
        mutable: true,
        role: Role::Acts(get, set),
        multi_word: false,
    }
}

const fn fixed(name: &'static str, default: &'static str) -> Param {
    Param {
        name,
        alias: None,
        default,
        mutable: true,
        role: Role::Fixed,
        multi_word: false,
    }
}

const B: Kind = Kind::Bool;
const DEBUG_LEVELS: &[&str] = &["no", "yes", "local"];

fn set_int<T: TryFrom<i64>>(v: &str, lo: i64, hi: i64) -> Result<T, String> {
    let n = int_in(v, lo, hi)?;
    T::try_from(n).map_err(|_| "argument out of range".to_string())
}

pub static PARAMS: &[Param] = &[
    // --- Parameters that change what forkless does. ---
    imm(acts(
        "port",
        "6379",
        |c| c.port.to_string(),
        |c, v| {
            c.port = set_int(v, 0, 65535)?;
            Ok(())
        },
    )),
    imm(words(acts(
        "bind",
        "127.0.0.1",
        |c| c.bind.join(" "),
        |c, v| {
            let addrs: Vec<String> = v.split_whitespace().map(str::to_string).collect();
            if addrs.is_empty() {
                return Err("Too many bind addresses specified.".into());
            }
            c.bind = addrs;
            Ok(())
        },
    ))),
    acts(
        "dir",
        ".",
        |c| {
            std::fs::canonicalize(&c.dir)
                .unwrap_or_else(|_| c.dir.clone())
                .display()
                .to_string()
        },
        set_dir,
    ),
    acts(
        "dbfilename",
        "dump.rdb",
        |c| c.dbfilename.clone(),
        |c, v| {
            c.dbfilename = config::validate_dbfilename(v).map_err(|e| e.0)?;
            Ok(())
        },
    ),
    words(acts(
        "save",
        config::DEFAULT_SAVE,
        |c| c.save_string(),
        |c, v| {
            c.save = config::parse_save(v).map_err(|e| e.0)?;
            Ok(())
        },
    )),
    imm(acts(
        "databases",
        "16",
        |c| c.databases.to_string(),
        |c, v| {
            c.databases = set_int(v, 1, I32)?;
            Ok(())
        },
    )),
    acts(
        "maxclients",
        "10000",
        |c| c.maxclients.to_string(),
        |c, v| {
            c.maxclients = set_int(v, 1, U32)?;
            Ok(())
        },
    ),
    acts(
        "incremental-snapshots",
        "yes",
        |c| yes_no_str(c.incremental_snapshots).into(),
        |c, v| {
            c.incremental_snapshots = yes_no(v)?;
            Ok(())
        },
    ),
    acts(
        "incremental-snapshot-max-delta-ratio",
        "0.5",
        |c| c.incremental_max_delta_ratio.to_string(),
        |c, v| {
            c.incremental_max_delta_ratio = v
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r >= 0.0)
                .ok_or("argument must be a non-negative number")?;
            Ok(())
        },
    ),
    acts(
        "stop-writes-on-bgsave-error",
        "yes",
        |c| yes_no_str(c.stop_writes_on_bgsave_error).into(),
        |c, v| {
            c.stop_writes_on_bgsave_error = yes_no(v)?;
            Ok(())
        },
    ),
    acts(
        "proto-max-bulk-len",
        "536870912",
        |c| c.proto_max_bulk_len.to_string(),
        |c, v| {
            let n = mem_in(v, 1024 * 1024, MAX)?;
            c.proto_max_bulk_len = usize::try_from(n).unwrap_or(usize::MAX);
            Ok(())
        },
    ),
    acts(
        "hz",
        "10",
        |c| c.hz.to_string(),
        |c, v| {
            // Redis accepts any non-negative value and clamps it to 1..=500.
            c.hz = int_in(v, 0, I32)?.clamp(1, 500) as u32;
            Ok(())
        },
    ),
    acts(
        "timeout",
        "0",
        |c| c.timeout.to_string(),
        |c, v| {
            c.timeout = set_int(v, 0, I32)?;
            Ok(())
        },
    ),
    acts(
        "loglevel",
        "notice",
        |c| c.loglevel.clone(),
        |c, v| {
            let lower = v.to_ascii_lowercase();
            c.loglevel = config::validate_loglevel(&lower).map_err(|_| {
                "argument(s) must be one of the following: debug, verbose, notice, warning"
                    .to_string()
            })?;
            Ok(())
        },
    ),
    acts(
        "slowlog-log-slower-than",
        "10000",
        |c| c.slowlog_log_slower_than.to_string(),
        |c, v| {
            c.slowlog_log_slower_than = int_in(v, -1, MAX)?;
            Ok(())
        },
    ),
    acts(
        "slowlog-max-len",
        "128",
        |c| c.slowlog_max_len.to_string(),
        |c, v| {
            c.slowlog_max_len = set_int(v, 0, MAX)?;
            Ok(())
        },
    ),
    acts(
        "latency-monitor-threshold",
        "0",
        |c| c.latency_monitor_threshold.to_string(),
        |c, v| {
            c.latency_monitor_threshold = set_int(v, 0, MAX)?;
            Ok(())
        },
    ),
    imm(acts(
        "enable-debug-command",
        "no",
        |c| c.enable_debug_command.clone(),
        |c, v| {
            c.enable_debug_command = validate(Kind::Enum(DEBUG_LEVELS), v)?;
            Ok(())
        },
    )),
    // --- Features forkless does not have: only the default is accepted. ---
    fixed("appendonly", "no"),
    imm(fixed("cluster-enabled", "no")),
    imm(fixed("daemonize", "no")),
    acts(
        "requirepass",
        "",
        |c| c.requirepass.clone(),
        |c, v| {
            c.requirepass = v.to_string();
            Ok(())
        },
    ),
    // Read at start-up; REPLICAOF changes `replicaof` (CONFIG REWRITE keeps it).
    imm(words(alias(stored("replicaof", Kind::Str, ""), "slaveof"))),
    stored("masterauth", Kind::Str, ""),
    stored("masteruser", Kind::Str, ""),
    imm(fixed("unixsocket", "")),
    imm(fixed("tls-port", "0")),
    // Threads that run connections (tokio workers); snapshot writes always run
    // on a thread of their own. Redis's default, 1, measured best on 2 cores
    // with the client on the same machine (benches/README.md).
    imm(acts(
        "io-threads",
        "1",
        |c| c.io_threads.to_string(),
        |c, v| {
            c.io_threads = int_in(v, 1, 128)? as usize;
            Ok(())
        },
    )),
    // jemalloc's background purging thread (crate::alloc; no effect with
    // another allocator). On by default, as in Redis.
    acts(
        "jemalloc-bg-thread",
        "yes",
        |c| yes_no_str(c.jemalloc_bg_thread).into(),
        |c, v| {
            c.jemalloc_bg_thread = yes_no(v)?;
            Ok(())
        },
    ),
    // forkless's own: how long the event loop polls between requests that
    // come close together instead of sleeping (crate::busypoll); 0 = off.
    acts(
        "busy-poll-us",
        "100",
        |c| c.busy_poll_us.to_string(),
        |c, v| {
            c.busy_poll_us = set_int(v, 0, 1_000_000)?;
            Ok(())
        },
    ),
    // --- Accepted, validated and stored; no effect on forkless. ---
    stored("maxmemory", Kind::Mem(0, MAX), "0"),
    stored(
        "maxmemory-policy",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        "noeviction",
    ),
    acts(
        "notify-keyspace-events",
        "",
        |c| crate::pubsub::notify::to_text(c.notify_keyspace_events),
        |c, v| {
            c.notify_keyspace_events = crate::pubsub::notify::parse(v)
                .ok_or_else(|| crate::pubsub::notify::PARSE_ERROR.to_string())?;
            Ok(())
        },
    ),
    acts(
        "protected-mode",
        "yes",
        |c| yes_no_str(c.protected_mode).into(),
        |c, v| {
            c.protected_mode = yes_no(v)?;
            Ok(())
        },
    ),
    stored("rdbcompression", B, "yes"),
    imm(stored("rdbchecksum", B, "yes")),
    imm(stored("io-threads-do-reads", B, "no")),
    imm(stored("always-show-logo", B, "no")),
    stored("rdb-del-sync-files", B, "no"),
    stored("activerehashing", B, "yes"),
    imm(stored("set-proc-title", B, "yes")),
    stored("dynamic-hz", B, "yes"),
    stored("lazyfree-lazy-eviction", B, "no"),
    stored("lazyfree-lazy-expire", B, "no"),
    stored("lazyfree-lazy-server-del", B, "no"),
    stored("lazyfree-lazy-user-del", B, "no"),
    stored("lazyfree-lazy-user-flush", B, "no"),
    stored("repl-disable-tcp-nodelay", B, "no"),
    stored("repl-diskless-sync", B, "yes"),
    stored("aof-rewrite-incremental-fsync", B, "yes"),
    stored("no-appendfsync-on-rewrite", B, "no"),
    stored("cluster-require-full-coverage", B, "yes"),
    stored("rdb-save-incremental-fsync", B, "yes"),
    stored("aof-load-truncated", B, "yes"),
    stored("aof-use-rdb-preamble", B, "yes"),
    stored("aof-timestamp-enabled", B, "no"),
    alias(
        stored("cluster-replica-no-failover", B, "no"),
        "cluster-slave-no-failover",
    ),
    alias(stored("replica-lazy-flush", B, "no"), "slave-lazy-flush"),
    alias(
        stored("replica-serve-stale-data", B, "yes"),
        "slave-serve-stale-data",
    ),
    alias(stored("replica-read-only", B, "yes"), "slave-read-only"),
    alias(
        stored("replica-ignore-maxmemory", B, "yes"),
        "slave-ignore-maxmemory",
    ),
    stored("activedefrag", B, "no"),
    imm(stored("syslog-enabled", B, "no")),
    stored("cluster-allow-reads-when-down", B, "no"),
    stored("cluster-allow-pubsubshard-when-down", B, "yes"),
    stored("crash-log-enabled", B, "yes"),
    stored("crash-memcheck-enabled", B, "yes"),
    imm(stored("disable-thp", B, "yes")),
    stored("cluster-allow-replica-migration", B, "yes"),
    stored("replica-announced", B, "yes"),
    stored("latency-tracking", B, "yes"),
    stored("aof-disable-auto-gc", B, "no"),
    stored("replica-ignore-disk-write-errors", B, "no"),
    stored("tls-cluster", B, "no"),
    stored("tls-replication", B, "no"),
    stored("tls-prefer-server-ciphers", B, "no"),
    stored("tls-session-caching", B, "yes"),
    imm(stored("aclfile", Kind::Str, "")),
    imm(stored("pidfile", Kind::Str, "")),
    alias(
        stored("replica-announce-ip", Kind::Str, ""),
        "slave-announce-ip",
    ),
    stored("cluster-announce-ip", Kind::Str, ""),
    imm(stored("cluster-config-file", Kind::Str, "nodes.conf")),
    stored("cluster-announce-hostname", Kind::Str, ""),
    imm(stored("syslog-ident", Kind::Str, "redis")),
    imm(stored("appendfilename", Kind::Str, "appendonly.aof")),
    imm(stored("appenddirname", Kind::Str, "appendonlydir")),
    imm(stored("server_cpulist", Kind::Str, "")),
    imm(stored("bio_cpulist", Kind::Str, "")),
    imm(stored("aof_rewrite_cpulist", Kind::Str, "")),
    imm(stored("bgsave_cpulist", Kind::Str, "")),
    stored("ignore-warnings", Kind::Str, ""),
    stored(
        "proc-title-template",
        Kind::Str,
        "{title} {listen-addr} {server-mode}",
    ),
    stored("bind-source-addr", Kind::Str, ""),
    imm(stored("logfile", Kind::Str, "")),
    stored("tls-cert-file", Kind::Str, ""),
    stored("tls-key-file", Kind::Str, ""),
    stored("tls-key-file-pass", Kind::Str, ""),
    stored("tls-client-cert-file", Kind::Str, ""),
    stored("tls-client-key-file", Kind::Str, ""),
    stored("tls-client-key-file-pass", Kind::Str, ""),
    stored("tls-dh-params-file", Kind::Str, ""),
    stored("tls-ca-cert-file", Kind::Str, ""),
    stored("tls-ca-cert-dir", Kind::Str, ""),
    stored("tls-protocols", Kind::Str, ""),
    stored("tls-ciphers", Kind::Str, ""),
    stored("tls-ciphersuites", Kind::Str, ""),
    imm(stored(
        "supervised",
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
        "no",
    )),
    imm(stored(
        "syslog-facility",
        Kind::Enum(&[
            "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
        ]),
        "local0",
    )),
    stored(
        "repl-diskless-load",
        Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
        "disabled",
    ),
    stored(
        "appendfsync",
        Kind::Enum(&["always", "everysec", "no"]),
        "everysec",
    ),
    stored(
        "oom-score-adj",
        Kind::Enum(&["no", "yes", "relative", "absolute"]),
        "no",
    ),
    stored(
        "acl-pubsub-default",
        Kind::Enum(&["allchannels", "resetchannels"]),
        "resetchannels",
    ),
    stored(
        "sanitize-dump-payload",
        Kind::Enum(&["no", "yes", "clients"]),
        "no",
    ),
    stored(
        "cluster-preferred-endpoint-type",
        Kind::Enum(&["ip", "hostname", "unknown-endpoint"]),
        "ip",
    ),
    stored(
        "propagation-error-behavior",
        Kind::Enum(&["ignore", "panic", "panic-on-replicas"]),
        "ignore",
    ),
    stored(
        "shutdown-on-sigint",
        Kind::Enum(&["default", "save", "nosave", "now", "force"]),
        "default",
    ),
    stored(
        "shutdown-on-sigterm",
        Kind::Enum(&["default", "save", "nosave", "now", "force"]),
        "default",
    ),
    imm(stored(
        "enable-protected-configs",
        Kind::Enum(DEBUG_LEVELS),
        "no",
    )),
    imm(stored(
        "enable-module-command",
        Kind::Enum(DEBUG_LEVELS),
        "no",
    )),
    stored(
        "tls-auth-clients",
        Kind::Enum(&["no", "yes", "optional"]),
        "yes",
    ),
    stored("auto-aof-rewrite-percentage", Kind::Int(0, I32), "100"),
    alias(
        stored("cluster-replica-validity-factor", Kind::Int(0, I32), "10"),
        "cluster-slave-validity-factor",
    ),
    alias(
        stored(
            "list-max-listpack-size",
            Kind::Int(i32::MIN as i64, I32),
            "-2",
        ),
        "list-max-ziplist-size",
    ),
    stored("tcp-keepalive", Kind::Int(0, I32), "300"),
    stored("cluster-migration-barrier", Kind::Int(0, I32), "1"),
    stored("active-defrag-cycle-min", Kind::Int(1, 99), "1"),
    stored("active-defrag-cycle-max", Kind::Int(1, 99), "25"),
    stored("active-defrag-threshold-lower", Kind::Int(0, 1000), "10"),
    stored("active-defrag-threshold-upper", Kind::Int(0, 1000), "100"),
    stored("lfu-log-factor", Kind::Int(0, I32), "10"),
    stored("lfu-decay-time", Kind::Int(0, I32), "1"),
    alias(
        stored("replica-priority", Kind::Int(0, I32), "100"),
        "slave-priority",
    ),
    stored("repl-diskless-sync-delay", Kind::Int(0, I32), "5"),
    stored("maxmemory-samples", Kind::Int(1, I32), "5"),
    stored("maxmemory-eviction-tenacity", Kind::Int(0, 100), "10"),
    alias(
        stored("replica-announce-port", Kind::Int(0, 65535), "0"),
        "slave-announce-port",
    ),
    imm(stored("tcp-backlog", Kind::Int(0, I32), "511")),
    imm(stored("cluster-port", Kind::Int(0, 65535), "0")),
    stored("cluster-announce-bus-port", Kind::Int(0, 65535), "0"),
    stored("cluster-announce-port", Kind::Int(0, 65535), "0"),
    stored("cluster-announce-tls-port", Kind::Int(0, 65535), "0"),
    stored("repl-timeout", Kind::Int(1, I32), "60"),
    alias(
        stored("repl-ping-replica-period", Kind::Int(1, I32), "10"),
        "repl-ping-slave-period",
    ),
    stored("list-compress-depth", Kind::Int(0, I32), "0"),
    stored("active-expire-effort", Kind::Int(1, 10), "1"),
    alias(
        stored("min-replicas-to-write", Kind::Int(0, I32), "0"),
        "min-slaves-to-write",
    ),
    alias(
        stored("min-replicas-max-lag", Kind::Int(0, I32), "10"),
        "min-slaves-max-lag",
    ),
    stored("shutdown-timeout", Kind::Int(0, I32), "10"),
    stored("repl-diskless-sync-max-replicas", Kind::Int(0, I32), "0"),
    stored("active-defrag-max-scan-fields", Kind::Int(1, MAX), "1000"),
    stored("acllog-max-len", Kind::Int(0, MAX), "128"),
    alias(
        stored("busy-reply-threshold", Kind::Int(0, MAX), "5000"),
        "lua-time-limit",
    ),
    stored("cluster-node-timeout", Kind::Int(0, MAX), "15000"),
    stored("stream-node-max-entries", Kind::Int(0, MAX), "100"),
    stored("repl-backlog-size", Kind::Mem(1, MAX), "1048576"),
    alias(
        stored("hash-max-listpack-entries", Kind::Int(0, MAX), "512"),
        "hash-max-ziplist-entries",
    ),
    stored("set-max-intset-entries", Kind::Int(0, MAX), "512"),
    alias(
        stored("zset-max-listpack-entries", Kind::Int(0, MAX), "128"),
        "zset-max-ziplist-entries",
    ),
    stored("active-defrag-ignore-bytes", Kind::Mem(1, MAX), "104857600"),
    alias(
        stored("hash-max-listpack-value", Kind::Mem(0, MAX), "64"),
        "hash-max-ziplist-value",
    ),
    stored("stream-node-max-bytes", Kind::Mem(0, MAX), "4096"),
    alias(
        stored("zset-max-listpack-value", Kind::Mem(0, MAX), "64"),
        "zset-max-ziplist-value",
    ),
    acts(
        "hll-sparse-max-bytes",
        "3000",
        |c| c.hll_sparse_max_bytes.to_string(),
        |c, v| {
            let n = mem_in(v, 0, MAX)?;
            c.hll_sparse_max_bytes = usize::try_from(n).unwrap_or(usize::MAX);
            Ok(())
        },
    ),
    stored("tracking-table-max-keys", Kind::Int(0, MAX), "1000000"),
    acts(
        "client-query-buffer-limit",
        "1073741824",
        |c| c.client_query_buffer_limit.to_string(),
        |c, v| {
            c.client_query_buffer_limit = mem_in(v, 1024 * 1024, MAX)? as u64;
            Ok(())
        },
    ),
    stored("repl-backlog-ttl", Kind::Int(0, MAX), "3600"),
    stored("auto-aof-rewrite-min-size", Kind::Mem(0, MAX), "67108864"),
    stored("maxmemory-clients", Kind::MemOrPercent, "0"),
    stored("tls-session-cache-size", Kind::Int(0, I32), "20480"),
    stored("tls-session-cache-timeout", Kind::Int(0, I32), "300"),
    stored("cluster-link-sendbuf-limit", Kind::Mem(0, MAX), "0"),
    imm(stored("unixsocketperm", Kind::Int(0, 0o777), "0")),
    stored("socket-mark-id", Kind::Int(0, U32), "0"),
    words(stored("oom-score-adj-values", Kind::Str, "0 200 800")),
    // Normal clients are bounded by default, unlike Redis (see crate::limits);
    // the pubsub class is the pub/sub delivery queue's limit.
    words(acts(
        "client-output-buffer-limit",
        "normal 1073741824 268435456 60 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        crate::limits::output_limit_config_text,
        crate::limits::set_output_limit_config,
    )),
    words(stored(
        "latency-tracking-info-percentiles",
        Kind::Str,
        "50 99 99.9",
    )),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_defaults_valid() {
        let mut seen = std::collections::HashSet::new();
        for p in PARAMS {
            for n in p.names() {
                assert!(seen.insert(n), "{n} listed twice");
            }
            if let Role::Stored(kind) = p.role {
                assert!(validate(kind, p.default).is_ok(), "{} default", p.name);
            }
        }
    }

    #[test]
    fn every_redis_parameter_is_known() {
        // The names Redis 7.0.15 answers to CONFIG GET *.
        assert!(PARAMS.iter().flat_map(|p| p.names()).count() >= 192);
    }

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
    fn stored_values_are_validated_and_normalised() {
        let mut c = Config::default();
        let p = find(b"HASH-MAX-ZIPLIST-ENTRIES").unwrap();
        assert_eq!(p.name, "hash-max-listpack-entries");
        p.set(&mut c, "1000").unwrap();
        assert_eq!(p.get(&c), "1000");
        assert_eq!(
            p.set(&mut c, "-1").unwrap_err(),
            format!("argument must be between 0 and {MAX} inclusive")
        );
        let p = find(b"activerehashing").unwrap();
        p.set(&mut c, "NO").unwrap();
        assert_eq!(p.get(&c), "no");
        assert_eq!(
            p.set(&mut c, "x").unwrap_err(),
            "argument must be 'yes' or 'no'"
        );
        let p = find(b"appendfsync").unwrap();
        assert_eq!(
            p.set(&mut c, "sometimes").unwrap_err(),
            "argument(s) must be one of the following: always, everysec, no"
        );
        let p = find(b"repl-backlog-size").unwrap();
        p.set(&mut c, "2mb").unwrap();
        assert_eq!(p.get(&c), "2097152");
    }

    #[test]
    fn hz_is_clamped() {
        let mut c = Config::default();
        let p = find(b"HZ").unwrap();
        p.set(&mut c, "0").unwrap();
        assert_eq!(c.hz, 1);
        p.set(&mut c, "1000").unwrap();
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
