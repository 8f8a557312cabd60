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
    fn this_process_has_resident_memory() {
        assert!(rss_kib(std::process::id()).unwrap_or(0) > 0);
    }
}
