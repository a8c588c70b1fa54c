//! List commands, including the blocking pops and moves.

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
