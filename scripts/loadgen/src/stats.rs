//! Percentiles and process memory.

/// Sorted latency samples in microseconds.
pub struct Latencies(Vec<u64>);

impl Latencies {
    /// Sorts `samples`.
    pub fn new(mut samples: Vec<u64>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile (0..=100), 0 when there are no samples.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank.min(self.0.len() - 1)]
    }

    /// `p50=.. p90=.. p99=.. max=..` in milliseconds.
    pub fn summary_ms(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        format!(
            "p50={:.3}ms p90={:.3}ms p99={:.3}ms max={:.3}ms (n={})",
            ms(self.percentile(50.0)),
            ms(self.percentile(90.0)),
            ms(self.percentile(99.0)),
            ms(self.percentile(100.0)),
            self.len()
        )
    }
}

/// Resident memory of process `pid` in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// CPU time process `pid` has used (user + system, all threads) in clock ticks, from
/// `/proc/PID/stat` (fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat)
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time process `pid` has been running, in nanoseconds, summed over its threads' first
/// `/proc/PID/task/TID/schedstat` field (exact, unlike [`cpu_ticks`]' 10 ms ticks). Threads
/// that ended are not counted: call it on a server whose worker threads live for its life.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Share of one core below which the server counts as idle for [`wait_until_idle`].
const IDLE_SHARE: f64 = 0.05;
/// The window [`wait_until_idle`] samples the server's CPU time over.
const IDLE_WINDOW: std::time::Duration = std::time::Duration::from_millis(200);
/// The longest [`wait_until_idle`] waits.
const IDLE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// Waits until server `pid` used under 5% of a core over 200 ms (at most two minutes; without a
/// pid, the fixed `fallback`). A fan-out's set-up (every join sends `user_joined` to every
/// member: 12.5 M frames for 5,000 members) must be written before the measured window opens,
/// whatever the machine's speed; a fixed pause only assumed it. (On the idle 2-core machine it
/// made no difference: the server was idle within 0.4 s at 5,000 members.) Returns how long it
/// waited.
pub async fn wait_until_idle(
    pid: Option<u32>,
    fallback: std::time::Duration,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    let Some(pid) = pid else {
        tokio::time::sleep(fallback).await;
        return started.elapsed();
    };
    while started.elapsed() < IDLE_PATIENCE {
        let Some(before) = cpu_ns(pid) else { break };
        tokio::time::sleep(IDLE_WINDOW).await;
        let Some(after) = cpu_ns(pid) else { break };
        let busy = after.saturating_sub(before) as f64 / IDLE_WINDOW.as_nanos() as f64;
        if busy < IDLE_SHARE {
            break;
        }
    }
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_ranked_sample() {
        let l = Latencies::new((1..=100).rev().collect());
        assert_eq!(l.percentile(50.0), 51);
        assert_eq!(l.percentile(99.0), 99);
        assert_eq!(l.percentile(100.0), 100);
        assert_eq!(Latencies::new(vec![]).percentile(99.0), 0);
    }

    #[test]
    fn cpu_ticks_are_utime_plus_stime_after_the_command_name() {
        let stat = "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 120 0 0 0 731 96 0 0 20 0 3";
        assert_eq!(parse_cpu_ticks(stat), Some(827));
        assert_eq!(parse_cpu_ticks("4242 (truncated) S 1"), None);
        assert!(cpu_ticks(std::process::id()).is_some());
    }

    #[test]
    fn this_process_has_run_on_a_cpu() {
        let spin: u64 = (0..1_000_000u64).map(std::hint::black_box).sum();
        assert!(spin > 0 && cpu_ns(std::process::id()).unwrap_or(0) > 0);
    }

    #[test]
    fn this_process_has_resident_memory() {
        assert!(rss_kib(std::process::id()).unwrap_or(0) > 0);
    }
}
