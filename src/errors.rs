//! Every error a command can answer with, and its exact Redis 7 text.
//!
//! Command handlers return [`CommandError`]; the connection turns it into a RESP
//! error reply at one place ([`CommandError::to_reply`]). Keeping every string here
//! keeps them byte-for-byte equal to Redis's, which clients match on.

use crate::reply::Reply;

/// An error a command answers with. The connection stays open after any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand { name: String, args: String },
    #[error("ERR unknown subcommand '{sub}'. Try {cmd} HELP.")]
    UnknownSubcommand { cmd: String, sub: String },
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR hash value is not an integer")]
    HashNotInteger,
    #[error("ERR hash value is not a float")]
    HashNotFloat,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR index out of range")]
    IndexOutOfRange,
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpireTime(String),
    #[error("ERR timeout is not a float or out of range")]
    TimeoutNotFloat,
    #[error("ERR timeout is negative")]
    TimeoutNegative,
    #[error("ERR timeout is out of range")]
    TimeoutOutOfRange,
    #[error("ERR invalid cursor")]
    InvalidCursor,
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    #[error("ERR bit offset is not an integer or out of range")]
    BitOffset,
    #[error("ERR bit is not an integer or out of range")]
    BitValue,
    #[error("ERR The bit argument must be 1 or 0.")]
    BitArgument,
    #[error("ERR BITOP NOT must be called with a single source key.")]
    BitopNotArity,
    #[error("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")]
    BitfieldType,
    #[error("ERR Invalid OVERFLOW type specified")]
    BitfieldOverflow,
    #[error("ERR BITFIELD_RO only supports the GET subcommand")]
    BitfieldReadOnly,
    #[error("WRONGTYPE Key is not a valid HyperLogLog string value.")]
    NotHll,
    #[error("INVALIDOBJ Corrupted HLL object detected")]
    HllCorrupt,
    #[error("ERR One or more scores can't be converted into double")]
    SortNotDouble,
    #[error("ERR Background save already in progress")]
    BgsaveInProgress,
    /// BGSAVE CANCEL with nothing to cancel (Valkey 8.1's text).
    #[error("ERR Background saving is currently not in progress or scheduled")]
    BgsaveNothingToCancel,
    #[error("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.")]
    Misconf,
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    Oom,
    #[error("BUSYKEY Target key name already exists.")]
    BusyKey,
    #[error("ERR DUMP payload version or checksum are wrong")]
    DumpPayload,
    #[error("ERR Bad data format")]
    BadDataFormat,
    #[error("LOADING Redis is loading the dataset in memory")]
    Loading,
    #[error("READONLY You can't write against a read only replica.")]
    ReadOnlyReplica,
    #[error("NOREPLICAS Not enough good replicas to write.")]
    NoReplicas,
    #[error("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")]
    MasterDown,
    /// Any other message; the text is sent as is and must carry its own prefix
    /// (`ERR `, `NOPROTO `, ...).
    #[error("{0}")]
    Other(String),
}

impl CommandError {
    /// Shorthand for an `ERR`-prefixed message that has no variant of its own.
    pub fn err(msg: impl std::fmt::Display) -> Self {
        CommandError::Other(format!("ERR {msg}"))
    }

    /// Builds the "unknown command" error the way Redis quotes the first arguments.
    pub fn unknown_command(name: &[u8], args: &[bytes::Bytes]) -> Self {
        let mut quoted = String::new();
        for arg in args.iter().take(MAX_QUOTED_ARGS) {
            quoted.push('\'');
            quoted.push_str(&truncate_for_error(arg));
            quoted.push_str("' ");
        }
        CommandError::UnknownCommand {
            name: truncate_for_error(name),
            args: quoted,
        }
    }

    pub fn wrong_arity(name: &str) -> Self {
        CommandError::WrongArity(name.to_ascii_lowercase())
    }

    pub fn unknown_subcommand(cmd: &str, sub: &[u8]) -> Self {
        CommandError::UnknownSubcommand {
            cmd: cmd.to_ascii_uppercase(),
            sub: truncate_for_error(sub),
        }
    }

    pub fn to_reply(&self) -> Reply {
        Reply::Error(self.to_string())
    }

    /// The error code Redis counts in `errorstats` (the first word).
    pub fn code(&self) -> String {
        let text = self.to_string();
        text.split(' ').next().unwrap_or("ERR").to_string()
    }
}

/// Redis quotes at most this many arguments in an unknown-command error.
const MAX_QUOTED_ARGS: usize = 20;
/// Redis cuts quoted names and arguments at 128 bytes.
const MAX_QUOTED_LEN: usize = 128;

fn truncate_for_error(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_QUOTED_LEN)];
    // Redis sanitises newlines so the error stays one line.
    String::from_utf8_lossy(cut).replace(['\r', '\n'], " ")
}

pub type CmdResult = Result<Reply, CommandError>;

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn unknown_command_quotes_args_like_redis() {
        let e = CommandError::unknown_command(b"foo", &[Bytes::from("a"), Bytes::from("b")]);
        assert_eq!(
            e.to_string(),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
    }

    #[test]
    fn arity_error_is_lowercase() {
        assert_eq!(
            CommandError::wrong_arity("GET").to_string(),
            "ERR wrong number of arguments for 'get' command"
        );
    }

    #[test]
    fn code_is_first_word() {
        assert_eq!(CommandError::WrongType.code(), "WRONGTYPE");
        assert_eq!(CommandError::Syntax.code(), "ERR");
    }
}

/// Stream command error texts (Redis 7.0's `t_stream.c`), used with
/// [`CommandError::err`] (which adds `ERR `) unless they carry their own code.
pub mod stream {
    pub const INVALID_ID: &str = "Invalid stream ID specified as stream command argument";
    pub const XADD_ZERO: &str = "The ID specified in XADD must be greater than 0-0";
    pub const XADD_NOT_GREATER: &str =
        "The ID specified in XADD is equal or smaller than the target stream top item";
    pub const EXHAUSTED: &str =
        "The stream has exhausted the last possible ID, unable to add more items";
    pub const MAXLEN_AND_MINID: &str =
        "syntax error, MAXLEN and MINID options at the same time are not compatible";
    pub const MAXLEN_NEGATIVE: &str = "The MAXLEN argument must be >= 0.";
    pub const LIMIT_NEGATIVE: &str = "The LIMIT argument must be >= 0.";
    pub const LIMIT_WITHOUT_STRATEGY: &str =
        "syntax error, LIMIT cannot be used without specifying a trimming strategy";
    pub const XTRIM_WITHOUT_STRATEGY: &str =
        "syntax error, XTRIM must be called with a trimming strategy";
    pub const LIMIT_WITHOUT_APPROX: &str =
        "syntax error, LIMIT cannot be used without the special ~ option";
    pub const INVALID_START: &str = "invalid start ID for the interval";
    pub const INVALID_END: &str = "invalid end ID for the interval";
    pub const ENTRIES_ADDED_NEGATIVE: &str = "entries_added must be positive";
    pub const XSETID_BELOW_GIVEN_MAX_DELETED: &str =
        "The ID specified in XSETID is smaller than the provided max_deleted_entry_id";
    pub const XSETID_BELOW_MAX_DELETED: &str =
        "The ID specified in XSETID is smaller than current max_deleted_entry_id";
    pub const XSETID_BELOW_TOP: &str =
        "The ID specified in XSETID is smaller than the target stream top item";
    pub const ENTRIES_ADDED_BELOW_LENGTH: &str =
        "The entries_added specified in XSETID is smaller than the target stream length";
    pub const TIMEOUT_NOT_INTEGER: &str = "timeout is not an integer or out of range";
    pub const TIMEOUT_NEGATIVE: &str = "timeout is negative";
    pub const GROUP_ONLY_XREADGROUP: &str =
        "The GROUP option is only supported by XREADGROUP. You called XREAD instead.";
    pub const NOACK_ONLY_XREADGROUP: &str =
        "The NOACK option is only supported by XREADGROUP. You called XREAD instead.";
    pub const MISSING_GROUP: &str = "Missing GROUP option for XREADGROUP";
    pub const DOLLAR_IN_XREADGROUP: &str = "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.";
    pub const GT_IN_XREAD: &str = "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.";
    /// Sent as is (own code).
    pub const UNBLOCKED_KEY_GONE: &str = "UNBLOCKED the stream key no longer exists";
    /// Sent as is (own code).
    pub const NOGROUP_WHILE_BLOCKED: &str =
        "NOGROUP the consumer group this client was blocked on no longer exists";
    /// Sent as is (own code).
    pub const BUSYGROUP: &str = "BUSYGROUP Consumer Group name already exists";
    pub const XGROUP_NEEDS_KEY: &str = "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";
    pub const ENTRIES_READ_INVALID: &str = "value for ENTRIESREAD must be positive or -1";
    pub const COUNT_POSITIVE: &str = "COUNT must be > 0";
}

/// Geo command error texts (Redis 7.0's `geo.c`), used with
/// [`CommandError::err`] (which adds `ERR `).
pub mod geo {
    pub const UNKNOWN_MEMBER: &str = "could not decode requested zset member";
    pub const UNIT: &str = "unsupported unit provided. please use M, KM, FT, MI";
    pub const NEED_RADIUS: &str = "need numeric radius";
    pub const NEGATIVE_RADIUS: &str = "radius cannot be negative";
    pub const NEED_WIDTH: &str = "need numeric width";
    pub const NEED_HEIGHT: &str = "need numeric height";
    pub const NEGATIVE_BOX: &str = "height or width cannot be negative";
    pub const COUNT_POSITIVE: &str = "COUNT must be > 0";
    pub const ANY_WITHOUT_COUNT: &str = "the ANY argument requires COUNT argument";
    pub const STORE_WITH_OPTIONS: &str =
        "STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options";
    pub const SEARCHSTORE_WITH_OPTIONS: &str =
        "GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options";

    /// A coordinate pair outside the storable bounds, printed as C's `%f`.
    pub fn invalid_pair(lon: &str, lat: &str) -> String {
        format!("invalid longitude,latitude pair {lon},{lat}")
    }

    /// GEOSEARCH without a centre, naming the command as the client wrote it.
    pub fn missing_center(command: &str) -> String {
        format!("exactly one of FROMMEMBER or FROMLONLAT can be specified for {command}")
    }

    /// GEOSEARCH without a shape.
    pub fn missing_shape(command: &str) -> String {
        format!("exactly one of BYRADIUS and BYBOX can be specified for {command}")
    }
}

/// Replication error texts sent as they are (own codes).
pub mod replication {
    /// To clients blocked (BLPOP, WAIT, ...) when a primary becomes a
    /// replica; their connections close after it, as in Redis 7.0.
    pub const UNBLOCKED_ROLE_CHANGE: &str = "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";
}
