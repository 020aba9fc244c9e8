//! The CLI's only wall clock (how long a run took, for events per second) and its view of the
//! process (CPU time, resident memory). Simulations never read them; this is why the
//! workspace-wide ban on `Instant` is lifted here and only here.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

/// A running stopwatch.
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Stopwatch {
        Stopwatch(Instant::now())
    }

    /// Time since start.
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Events per second, or 0 when no time passed.
pub fn per_sec(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// CPU time this process has used, user and system (Linux; `None` elsewhere): with wall time it
/// tells how many cores a parallel run really got.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // The kernel reports in clock ticks of 1/100 s on every Linux simlab runs on (USER_HZ).
    Some(ticks / 100.0)
}

/// Memory this process holds in RAM now, in bytes (Linux; `None` elsewhere): for the bench's
/// memory figures, and so that a search can stop before it exhausts the machine.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
