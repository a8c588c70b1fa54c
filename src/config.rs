//! Command-line options and the server's run-time configuration.
//!
//! Option names follow redis.conf so a Redis operator reads them unchanged.
//! [`Args`] is what argh parses; [`Config`] is the live configuration that
//! `CONFIG GET`/`CONFIG SET` read and change.

use std::path::PathBuf;

use argh::FromArgs;

use crate::protocol::DEFAULT_MAX_BULK;

/// Redis 7's default save points.
pub const DEFAULT_SAVE: &str = "3600 1 300 100 60 10000";

/// forkless: a Redis-compatible in-memory data server whose snapshots need no fork.
#[derive(FromArgs, Debug)]
pub struct Args {
    /// TCP port to listen on (default 6379; 0 picks a free port and logs it)
    #[argh(option, default = "6379")]
    pub port: u16,

    /// address(es) to listen on, space separated (default 127.0.0.1, loopback only)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    pub bind: String,

    /// directory the snapshot file is written to and loaded from (default .)
    #[argh(option, default = "String::from(\".\")")]
    pub dir: String,

    /// snapshot file name inside --dir (default dump.rdb); a path is refused
    #[argh(option, default = "String::from(\"dump.rdb\")")]
    pub dbfilename: String,

    /// save points as "<seconds> <changes> ..." pairs: snapshot when at least
    /// <changes> writes happened within <seconds> (default "3600 1 300 100 60 10000";
    /// "" disables automatic snapshots)
    #[argh(option, default = "String::from(DEFAULT_SAVE)")]
    pub save: String,

    /// number of databases, selected with SELECT (default 16)
    #[argh(option, default = "16")]
    pub databases: usize,

    /// maximum number of connected clients (default 10000)
    #[argh(option, default = "10000")]
    pub maxclients: usize,

    /// log verbosity: debug, verbose, notice or warning (default notice)
    #[argh(option, default = "String::from(\"notice\")")]
    pub loglevel: String,

    /// password clients must give with AUTH before other commands (default: none)
    #[argh(option, default = "String::new()")]
    pub requirepass: String,

    /// yes (default) or no: refuse non-loopback clients while no password is set
    #[argh(option, default = "String::from(\"yes\")")]
    pub protected_mode: String,

    #[argh(subcommand)]
    pub command: Option<SubCommand>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum SubCommand {
    CheckDump(CheckDumpArgs),
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
    pub stop_writes_on_bgsave_error: bool,
    pub hz: u32,
    /// Close idle clients after this many seconds (0 = never).
    pub timeout: u64,
    /// The default user's password; empty means none (see `crate::security`).
    pub requirepass: String,
    /// Refuse non-loopback clients while no password is set.
    pub protected_mode: bool,
    /// Largest unparsed input a client may accumulate (0 = unlimited).
    pub client_query_buffer_limit: u64,
    /// Pending-output limits per client class (see `crate::limits`).
    pub client_output_buffer_limit: crate::limits::ObufLimits,
}

/// One `save <seconds> <changes>` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavePoint {
    pub seconds: u64,
    pub changes: u64,
}

impl Config {
    pub fn from_args(args: &Args) -> Result<Config, ConfigError> {
        let config = Config {
            port: args.port,
            bind: args.bind.split_whitespace().map(str::to_string).collect(),
            dir: PathBuf::from(&args.dir),
            dbfilename: validate_dbfilename(&args.dbfilename)?,
            save: parse_save(&args.save)?,
            databases: validate_databases(args.databases)?,
            maxclients: args.maxclients.max(1),
            loglevel: validate_loglevel(&args.loglevel)?,
            proto_max_bulk_len: DEFAULT_MAX_BULK,
            stop_writes_on_bgsave_error: true,
            hz: 10,
            timeout: 0,
            requirepass: args.requirepass.clone(),
            protected_mode: parse_yes_no(&args.protected_mode)
                .ok_or_else(|| ConfigError("--protected-mode must be yes or no".into()))?,
            client_query_buffer_limit: 1 << 30,
            client_output_buffer_limit: Default::default(),
        };
        if config.bind.is_empty() {
            return Err(ConfigError("--bind needs at least one address".into()));
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
}

impl Default for Config {
    fn default() -> Self {
        Config::from_args(&Args {
            port: 6379,
            bind: "127.0.0.1".into(),
            dir: ".".into(),
            dbfilename: "dump.rdb".into(),
            save: DEFAULT_SAVE.into(),
            databases: 16,
            maxclients: 10000,
            loglevel: "notice".into(),
            requirepass: String::new(),
            protected_mode: "yes".into(),
            command: None,
        })
        .expect("defaults are valid")
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

fn validate_databases(n: usize) -> Result<usize, ConfigError> {
    if n == 0 || n > i32::MAX as usize {
        return Err(ConfigError("databases must be at least 1".into()));
    }
    Ok(n)
}

pub fn validate_loglevel(level: &str) -> Result<String, ConfigError> {
    match level {
        "debug" | "verbose" | "notice" | "warning" | "nothing" => Ok(level.to_string()),
        _ => Err(ConfigError(format!(
            "invalid loglevel '{level}': use debug, verbose, notice, warning or nothing"
        ))),
    }
}

/// Parses a redis.conf boolean (`yes`/`no`, any case).
pub fn parse_yes_no(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
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
