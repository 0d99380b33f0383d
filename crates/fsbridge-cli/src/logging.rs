//! Diagnostics on stderr through `tracing`.
//!
//! The default level is `warn`; each `-v` raises it (info, debug, trace). `FSBRIDGE_LOG`, when
//! set, overrides both with a full filter such as `fsbridge=debug`.

use std::io::IsTerminal as _;

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
    let mut refused = None;
    let filter = match std::env::var("FSBRIDGE_LOG") {
        Ok(spec) => EnvFilter::try_new(&spec).unwrap_or_else(|error| {
            refused = Some((spec, error));
            EnvFilter::new(level)
        }),
        Err(_) => EnvFilter::new(level),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
    if let Some((spec, error)) = refused {
        tracing::warn!("FSBRIDGE_LOG={spec:?} is not a log filter ({error}); using the default");
    }
}
