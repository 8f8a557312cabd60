//! What the database pool reports, and how each pooled connection is tuned.
//!
//! Owns: the pool gauges (slots in use, calls waiting for a slot), the query latency histogram
//! by operation, the per-connection pragmas of [`DatabaseSettings`] ([`tune`]), and reading the
//! database and WAL file sizes ([`file_sizes`]). Never runs a query of its own and never
//! formats (see [`crate::observe::metrics`]).
//!
//! An *operation* is the function that issued the call: the closure's type name, without the
//! crate prefix and the `{{closure}}` segments (`directory::commands::create_server`, say). The
//! label set is therefore the set of call sites: fixed at compile time, bounded.
//!
//! `mmap_size` is deliberately not set: memory-mapped pages show up in resident memory as the
//! file grows, which is exactly the unbounded-looking growth the page-cache bound removes, and on
//! a small database the page cache already serves every read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::config::database::DatabaseSettings;

/// Upper bounds of the query latency histogram's buckets, in microseconds; `+Inf` follows.
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// Applies the settings' pragmas to one pooled connection.
pub fn tune(conn: &Connection, settings: &DatabaseSettings) -> rusqlite::Result<()> {
    // Negative: a size in KiB rather than in pages.
    conn.pragma_update(None, "cache_size", -i64::from(settings.cache_size_kib))
}

/// `(database file bytes, WAL file bytes)`; a missing file counts as 0.
pub fn file_sizes(db: &Path) -> (u64, u64) {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    (size(db), size(&PathBuf::from(wal)))
}

/// The operation label of a closure type name.
pub fn operation(type_name: &'static str) -> &'static str {
    let mut op = caller_in_generics(type_name).unwrap_or(type_name);
    while let Some(rest) = op.strip_suffix("::{{closure}}") {
        op = rest;
    }
    op.strip_prefix("signalbox::").unwrap_or(op)
}

/// A wrapper generic over its caller's closure (`routes::Req::write<T, routes::servers::create::
/// {{closure}}>::{{closure}}`) is named after that caller: the last of our closures among the
/// generic arguments.
fn caller_in_generics(type_name: &'static str) -> Option<&'static str> {
    const CLOSURE: &str = "{{closure}}";
    let args = &type_name[type_name.find('<')? + 1..type_name.rfind('>')?];
    let end = args.rfind(CLOSURE)? + CLOSURE.len();
    let upto = &args[..end];
    let start = upto.rfind(['<', ',', ' ']).map_or(0, |i| i + 1);
    let caller = &upto[start..];
    (caller.starts_with("signalbox::") && !caller.contains('>')).then_some(caller)
}

/// The pool's gauges and latency histograms.
#[derive(Debug)]
pub struct DbMetrics {
    pool_size: usize,
    in_use: AtomicU64,
    waiting: AtomicU64,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS_US.len() + 1],
    sum_us: u64,
}

/// One operation's latency histogram, cumulative as Prometheus wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationLatency {
    /// The operation label.
    pub operation: &'static str,
    /// `(upper bound in µs, calls at most that long)` for each of [`LATENCY_BUCKETS_US`].
    pub buckets: Vec<(u64, u64)>,
    /// Every call (the `+Inf` bucket).
    pub count: u64,
    /// Sum of the calls' durations, in microseconds.
    pub sum_us: u64,
}

impl DbMetrics {
    /// Metrics of a pool of `pool_size` connections.
    pub fn new(pool_size: usize) -> Self {
        Self {
            pool_size,
            in_use: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            latency: Mutex::new(BTreeMap::new()),
        }
    }

    /// Connections in the pool.
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// Calls holding a connection now.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Calls waiting for a connection now.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Starts timing one call of `operation` (see [`operation`]): it waits until
    /// [`CallTimer::acquired`], and is recorded when the timer drops.
    pub fn start(&self, operation: &'static str) -> CallTimer<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        CallTimer {
            metrics: self,
            operation,
            acquired: None,
        }
    }

    fn record(&self, operation: &'static str, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        let mut latency = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        let histogram = latency.entry(operation).or_default();
        histogram.buckets[bucket] += 1;
        histogram.sum_us = histogram.sum_us.saturating_add(us);
    }

    /// Every operation's histogram, sorted by operation.
    pub fn latency(&self) -> Vec<OperationLatency> {
        let latency = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        latency
            .iter()
            .map(|(operation, h)| {
                let mut cumulative = 0;
                let buckets = LATENCY_BUCKETS_US
                    .iter()
                    .zip(&h.buckets)
                    .map(|(bound, n)| {
                        cumulative += n;
                        (*bound, cumulative)
                    })
                    .collect();
                OperationLatency {
                    operation,
                    buckets,
                    count: cumulative + h.buckets[LATENCY_BUCKETS_US.len()],
                    sum_us: h.sum_us,
                }
            })
            .collect()
    }
}

/// One call through the pool, from asking for a connection to giving it back.
#[derive(Debug)]
pub struct CallTimer<'a> {
    metrics: &'a DbMetrics,
    operation: &'static str,
    acquired: Option<Instant>,
}

impl CallTimer<'_> {
    /// The call got its connection: it stops waiting and starts running.
    pub fn acquired(&mut self) {
        if self.acquired.is_none() {
            self.metrics.waiting.fetch_sub(1, Ordering::Relaxed);
            self.metrics.in_use.fetch_add(1, Ordering::Relaxed);
            self.acquired = Some(Instant::now());
        }
    }
}

impl Drop for CallTimer<'_> {
    fn drop(&mut self) {
        match self.acquired {
            Some(started) => {
                self.metrics.in_use.fetch_sub(1, Ordering::Relaxed);
                self.metrics.record(self.operation, started.elapsed());
            }
            None => {
                self.metrics.waiting.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_after_the_calling_function() {
        assert_eq!(
            operation("signalbox::directory::commands::create::{{closure}}::{{closure}}"),
            "directory::commands::create"
        );
        assert_eq!(operation("other::f"), "other::f");
        assert_eq!(
            operation(
                "signalbox::routes::Req::write<signalbox_protocol::http::servers::ServerSummary, \
                 signalbox::routes::servers::create::{{closure}}::{{closure}}>::{{closure}}"
            ),
            "routes::servers::create"
        );
        assert_eq!(
            operation("signalbox::telemetry::gauges::Scrape<'_>::take::{{closure}}"),
            "telemetry::gauges::Scrape<'_>::take"
        );
    }

    #[test]
    fn a_call_waits_then_runs_then_is_recorded() {
        let m = DbMetrics::new(2);
        let mut timer = m.start("op");
        assert_eq!((m.waiting(), m.in_use()), (1, 0));
        timer.acquired();
        assert_eq!((m.waiting(), m.in_use()), (0, 1));
        drop(timer);
        drop(m.start("never-acquired"));
        assert_eq!((m.waiting(), m.in_use()), (0, 0));
        let latency = m.latency();
        assert_eq!(latency.len(), 1, "only acquired calls are timed");
        assert_eq!(latency[0].operation, "op");
        assert_eq!(latency[0].count, 1);
    }

    #[test]
    fn the_cache_size_pragma_is_set_in_kib() {
        let conn = Connection::open_in_memory().expect("open");
        tune(
            &conn,
            &DatabaseSettings {
                cache_size_kib: 4096,
                ..DatabaseSettings::default()
            },
        )
        .expect("tune");
        let size: i64 = conn
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(size, -4096);
    }
}
