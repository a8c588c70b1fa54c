//! Server commands: COMMAND, CONFIG, INFO, CLIENT, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, TIME.

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
