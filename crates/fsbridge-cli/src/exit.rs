//! Exit codes, in one place.
//!
//! 0: success. 1: the command ran but some commands it applied failed. 2: usage error or fatal
//! error. 130: interrupted by Ctrl-C. A closed stdout (the reader went away) ends with 0.

/// Everything went as asked.
pub(crate) const SUCCESS: u8 = 0;
/// The command ran, but some of the commands it applied failed.
pub(crate) const SOME_FAILED: u8 = 1;
/// Bad usage or a fatal error.
pub(crate) const USAGE: u8 = 2;
/// Interrupted by Ctrl-C (SIGINT).
pub(crate) const INTERRUPTED: u8 = 130;
