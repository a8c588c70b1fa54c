//! FUNCTION, FCALL and FCALL_RO.

use bytes::Bytes;

use crate::commands::Ctx;
use crate::errors::{CmdResult, CommandError};

pub fn function(_ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Err(CommandError::unknown_subcommand("function", &args[1]))
}

pub fn fcall(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Err(CommandError::err("Function not found"))
}

pub fn fcall_ro(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    Err(CommandError::err("Function not found"))
}
