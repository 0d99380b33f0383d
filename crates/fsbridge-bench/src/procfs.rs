//! What `/proc` says about a watcher process: CPU time used and peak resident memory.

use std::fs;

use anyhow::Context as _;

/// User plus system CPU seconds used so far by process `pid`, all threads together.
///
/// # Errors
///
/// When `/proc/PID/stat` cannot be read or parsed (the process is gone).
pub(crate) fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;

    // The command name (field 2) may hold spaces and parentheses: count fields after the last
    // `)`. There, field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("malformed /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .with_context(|| format!("malformed /proc/{pid}/stat"))
    };
    let used = ticks(11)? + ticks(12)?;

    Ok(
        crate::report::to_f64(used)
            / crate::report::to_f64(rustix::param::clock_ticks_per_second()),
    )
}

/// Whether process `pid` is stopped by a signal (state `T`).
pub(crate) fn is_stopped(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
    })
}

/// Peak resident set size of process `pid` so far (`VmHWM`), in MB (10^6 bytes, the unit the
/// issue's targets use).
///
/// # Errors
///
/// When `/proc/PID/status` cannot be read or has no `VmHWM` line.
pub(crate) fn peak_rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmHWM in /proc/{pid}/status"))?;
    Ok(crate::report::to_f64(kib) * 1024.0 / 1e6)
}
