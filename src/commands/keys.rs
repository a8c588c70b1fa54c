//! Key-space commands: DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, COPY, MOVE, EXPIRE and TTL families.

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
