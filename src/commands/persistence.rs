//! Persistence commands: SAVE, BGSAVE, LASTSAVE, SHUTDOWN.

use super::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];
