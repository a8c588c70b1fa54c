//! Command-line options and the server's run-time configuration.
//!
//! Option names follow redis.conf so a Redis operator reads them unchanged.
//! [`Args`] is what argh parses; [`Config`] is the live configuration that
//! `CONFIG GET`/`CONFIG SET` read and change.

use std::path::PathBuf;

use argh::FromArgs;

use crate::protocol::DEFAULT_MAX_BULK;

/// The Redis version forkless answers as (HELLO, INFO, `--version`), so
/// clients enable the features they expect.
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

/// Redis 7's default save points.
pub const DEFAULT_SAVE: &str = "3600 1 300 100 60 10000";

/// forkless: a Redis-compatible in-memory data server whose snapshots need no fork.
///
/// Usage: forkless [/path/to/redis.conf] [--option value ...]; options given
/// on the command line override the configuration file.
#[derive(FromArgs, Debug, Default)]
pub struct Args {
    /// a redis.conf-style configuration file to read first
    #[argh(positional)]
    pub config_file: Option<PathBuf>,

    /// TCP port to listen on (default 6379; 0 picks a free port and logs it)
    #[argh(option)]
    pub port: Option<u16>,

    /// address(es) to listen on, space separated (default 127.0.0.1, loopback only)
    #[argh(option)]
    pub bind: Option<String>,

    /// directory the snapshot file is written to and loaded from (default .)
    #[argh(option)]
    pub dir: Option<String>,

    /// snapshot file name inside --dir (default dump.rdb); a path is refused
    #[argh(option)]
    pub dbfilename: Option<String>,

    /// save points as "<seconds> <changes> ..." pairs: snapshot when at least
    /// <changes> writes happened within <seconds> (default "3600 1 300 100 60 10000";
    /// "" disables automatic snapshots)
    #[argh(option)]
    pub save: Option<String>,

    /// number of databases, selected with SELECT (default 16)
    #[argh(option)]
    pub databases: Option<usize>,

    /// maximum number of connected clients (default 10000)
    #[argh(option)]
    pub maxclients: Option<usize>,

    /// log verbosity: debug, verbose, notice or warning (default notice)
    #[argh(option)]
    pub loglevel: Option<String>,

    /// any other redis.conf directive as "name value", repeatable
    /// (e.g. --config "hz 20")
    #[argh(option)]
    pub config: Vec<String>,

    /// password clients must give with AUTH before other commands (default: none)
    #[argh(option)]
    pub requirepass: Option<String>,

    /// yes (default) or no: refuse non-loopback clients while no password is set
    #[argh(option)]
    pub protected_mode: Option<String>,

    /// replicate from a primary, given as "<host> <port>" (default: none)
    #[argh(option)]
    pub replicaof: Option<String>,

    #[argh(subcommand)]
    pub command: Option<SubCommand>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum SubCommand {
    CheckDump(CheckDumpArgs),
    ImportRdb(ImportRdbArgs),
    ExportRdb(ExportRdbArgs),
}

/// Convert a Redis RDB file (versions 1 to 12) into a forkless snapshot.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import-rdb")]
pub struct ImportRdbArgs {
    /// the Redis RDB file to read
    #[argh(positional)]
    pub input: PathBuf,
    /// the forkless snapshot to write
    #[argh(positional)]
    pub output: PathBuf,
}

/// Write a forkless snapshot as a Redis RDB version 10 file (redis-server 7.0 loads it).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export-rdb")]
pub struct ExportRdbArgs {
    /// the snapshot to read (default: the configured dir and dbfilename)
    #[argh(option)]
    pub dump: Option<PathBuf>,
    /// the RDB file to write
    #[argh(positional)]
    pub output: PathBuf,
}

/// Verify a snapshot file without starting a server: header, every record, CRC.
/// Exit code 0 when the file is sound, 1 when it is corrupt, 2 when it cannot be read.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check-dump")]
pub struct CheckDumpArgs {
    /// the snapshot file to check
    #[argh(positional)]
    pub file: PathBuf,
}

/// A configuration value that failed validation; the text is Redis's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The live configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub bind: Vec<String>,
    pub dir: PathBuf,
    pub dbfilename: String,
    pub save: Vec<SavePoint>,
    pub databases: usize,
    pub maxclients: usize,
    pub loglevel: String,
    pub proto_max_bulk_len: usize,
    /// A sparse HyperLogLog larger than this many bytes turns dense.
    pub hll_sparse_max_bytes: usize,
    pub stop_writes_on_bgsave_error: bool,
    /// Saves write a delta against the last save when that pays
    /// (`incremental-snapshots`).
    pub incremental_snapshots: bool,
    /// A save rewrites the whole base once the deltas pass this fraction of
    /// it (`incremental-snapshot-max-delta-ratio`).
    pub incremental_max_delta_ratio: f64,
    pub hz: u32,
    /// Close idle clients after this many seconds (0 = never).
    pub timeout: u64,
    /// Worker threads that run connections (`io-threads`).
    pub io_threads: usize,
    /// jemalloc purges unused pages on a thread of its own (`jemalloc-bg-thread`).
    pub jemalloc_bg_thread: bool,
    /// How long the event loop polls after a batch before it sleeps, when
    /// batches come that close together (`busy-poll-us`; crate::busypoll).
    pub busy_poll_us: u64,
    /// Commands slower than this many microseconds go to the slow log (-1 = none).
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: u64,
    /// Latency events at least this many milliseconds are recorded (0 = off).
    pub latency_monitor_threshold: u64,
    /// DEBUG is allowed: `no`, `yes` or `local` (loopback clients only).
    pub enable_debug_command: String,
    /// The configuration file the server was started with (CONFIG REWRITE's target).
    pub config_file: Option<PathBuf>,
    /// Parameters accepted and reported but without effect, by canonical name
    /// (see [`crate::params`]).
    pub extra: std::collections::BTreeMap<&'static str, String>,
    /// `notify-keyspace-events` as [`crate::pubsub::notify`] flags (0 = off).
    /// The state keeps a copy that commands read; CONFIG SET updates both.
    pub notify_keyspace_events: u32,
    /// The `pubsub` class of `client-output-buffer-limit`; the state keeps a copy.
    pub pubsub_output_limit: crate::pubsub::OutputLimit,
    /// The default user's password; empty means none (see `crate::security`).
    pub requirepass: String,
    /// Refuse non-loopback clients while no password is set.
    pub protected_mode: bool,
    /// Largest unparsed input a client may accumulate (0 = unlimited).
    pub client_query_buffer_limit: u64,
    /// The normal and replica classes of `client-output-buffer-limit` (see
    /// `crate::limits`); the pubsub class is `pubsub_output_limit`.
    pub client_output_buffer_limit: crate::limits::ObufLimits,
}

/// One `save <seconds> <changes>` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavePoint {
    pub seconds: u64,
    pub changes: u64,
}

impl Config {
    /// Redis's defaults (with forkless's loopback-only bind).
    pub fn defaults() -> Config {
        Config {
            port: 6379,
            bind: vec!["127.0.0.1".into()],
            dir: PathBuf::from("."),
            dbfilename: "dump.rdb".into(),
            save: parse_save(DEFAULT_SAVE).unwrap_or_default(),
            databases: 16,
            maxclients: 10000,
            loglevel: "notice".into(),
            proto_max_bulk_len: DEFAULT_MAX_BULK,
            hll_sparse_max_bytes: 3000,
            stop_writes_on_bgsave_error: true,
            incremental_snapshots: true,
            incremental_max_delta_ratio: 0.5,
            hz: 10,
            timeout: 0,
            io_threads: 1,
            jemalloc_bg_thread: true,
            busy_poll_us: 100,
            slowlog_log_slower_than: 10000,
            slowlog_max_len: 128,
            latency_monitor_threshold: 0,
            enable_debug_command: "no".into(),
            config_file: None,
            extra: crate::params::stored_defaults(),
            notify_keyspace_events: 0,
            pubsub_output_limit: Default::default(),
            requirepass: String::new(),
            protected_mode: true,
            client_query_buffer_limit: 1 << 30,
            client_output_buffer_limit: Default::default(),
        }
    }

    /// Defaults, then the configuration file (if any), then command-line options.
    pub fn from_args(args: &Args) -> Result<Config, ConfigError> {
        let mut config = Config::defaults();
        if let Some(path) = &args.config_file {
            for warning in crate::conffile::apply_file(&mut config, path)? {
                eprintln!("forkless: warning: {warning}");
            }
            config.config_file = Some(std::fs::canonicalize(path).unwrap_or(path.clone()));
        }
        let flags: [(&str, Option<String>); 11] = [
            ("port", args.port.map(|v| v.to_string())),
            ("bind", args.bind.clone()),
            ("dir", args.dir.clone()),
            ("dbfilename", args.dbfilename.clone()),
            ("save", args.save.clone()),
            ("databases", args.databases.map(|v| v.to_string())),
            ("maxclients", args.maxclients.map(|v| v.to_string())),
            ("loglevel", args.loglevel.clone()),
            ("requirepass", args.requirepass.clone()),
            ("protected-mode", args.protected_mode.clone()),
            ("replicaof", args.replicaof.clone()),
        ];
        for (name, value) in flags {
            if let Some(value) = value {
                set_from_flag(&mut config, name, &value)?;
            }
        }
        for directive in &args.config {
            let (name, value) = directive.split_once(' ').unwrap_or((directive, ""));
            set_from_flag(&mut config, name, value.trim())?;
        }
        Ok(config)
    }

    /// The snapshot file: `dir/dbfilename`.
    pub fn dump_path(&self) -> PathBuf {
        self.dir.join(&self.dbfilename)
    }

    /// The `save` parameter as Redis prints it (`3600 1 300 100`).
    pub fn save_string(&self) -> String {
        self.save
            .iter()
            .map(|p| format!("{} {}", p.seconds, p.changes))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A stored integer parameter (e.g. `hash-max-listpack-entries`), or `default`.
    pub fn extra_i64(&self, name: &str, default: i64) -> i64 {
        self.extra
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

fn set_from_flag(config: &mut Config, name: &str, value: &str) -> Result<(), ConfigError> {
    let param = crate::params::find(name.as_bytes())
        .ok_or_else(|| ConfigError(format!("--{name}: unknown configuration parameter")))?;
    param
        .set(config, value)
        .map_err(|reason| ConfigError(format!("--{name} '{value}': {reason}")))
}

impl Default for Config {
    fn default() -> Self {
        Config::defaults()
    }
}

/// Parses `save` pairs; `""` means no save points.
pub fn parse_save(text: &str) -> Result<Vec<SavePoint>, ConfigError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if !words.len().is_multiple_of(2) {
        return Err(ConfigError("Invalid save parameters".into()));
    }
    words
        .chunks(2)
        .map(|pair| {
            let seconds = pair[0].parse::<u64>();
            let changes = pair[1].parse::<u64>();
            match (seconds, changes) {
                (Ok(seconds), Ok(changes)) => Ok(SavePoint { seconds, changes }),
                _ => Err(ConfigError("Invalid save parameters".into())),
            }
        })
        .collect()
}

/// A dbfilename must be a plain file name: a path would let a client write anywhere.
pub fn validate_dbfilename(name: &str) -> Result<String, ConfigError> {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name == "." || name == ".." {
        return Err(ConfigError(
            "dbfilename can't be a path, just a filename".into(),
        ));
    }
    Ok(name.to_string())
}

pub fn validate_loglevel(level: &str) -> Result<String, ConfigError> {
    match level {
        "debug" | "verbose" | "notice" | "warning" | "nothing" => Ok(level.to_string()),
        _ => Err(ConfigError(format!(
            "invalid loglevel '{level}': use debug, verbose, notice, warning or nothing"
        ))),
    }
}

/// Maps a Redis log level to a tracing filter directive.
pub fn tracing_filter(level: &str) -> &'static str {
    match level {
        "debug" => "debug",
        "verbose" => "debug",
        "notice" => "info",
        "warning" => "warn",
        _ => "off",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_points_parse() {
        assert_eq!(parse_save("").unwrap(), vec![]);
        assert_eq!(
            parse_save("3600 1 300 100").unwrap(),
            vec![
                SavePoint {
                    seconds: 3600,
                    changes: 1
                },
                SavePoint {
                    seconds: 300,
                    changes: 100
                }
            ]
        );
        assert!(parse_save("3600").is_err());
        assert!(parse_save("a b").is_err());
    }

    #[test]
    fn dbfilename_must_not_be_a_path() {
        assert!(validate_dbfilename("dump.rdb").is_ok());
        assert!(validate_dbfilename("../x.rdb").is_err());
        assert!(validate_dbfilename("/tmp/x").is_err());
    }

    #[test]
    fn defaults_match_redis() {
        let c = Config::default();
        assert_eq!(c.port, 6379);
        assert_eq!(c.bind, vec!["127.0.0.1"]);
        assert_eq!(c.save_string(), DEFAULT_SAVE);
        assert_eq!(c.databases, 16);
    }
}
