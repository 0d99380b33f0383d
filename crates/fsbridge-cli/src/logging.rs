//! Diagnostics on stderr through `tracing`.
//!
//! The default level is `warn`; each `-v` raises it (info, debug, trace). `FSBRIDGE_LOG`, when
//! set, overrides both with a full filter such as `fsbridge=debug`.

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber for the given `-v` count.
pub(crate) fn init(verbose: u8) {
    // notify warns about watches of deleted directories that fsbridge removed already: noise
    // unless debugging.
    let level = match verbose {
        0 => "warn,notify=error",
        1 => "info,notify=error",
        2 => "debug",
        _ => "trace",
    };
    let filter = std::env::var("FSBRIDGE_LOG")
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
