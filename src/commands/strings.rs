//! String commands: GET, SET and its options, counters, ranges.

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
