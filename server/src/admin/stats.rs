//! The dashboard's snapshot: [`AdminStats`] read from the counters `/metrics` exposes (the hub's,
//! the transports', the SSE transport's) plus two live views (largest servers, open streams).
//!
//! Reads only; never resets a counter.

use signalbox_protocol::http::{
    AdminStats, LatencySummary, NamedCount, ServerLoad, SseSummary, TransportConnections,
};

use crate::observe::Observed;

/// Servers listed in [`AdminStats::top_servers`].
pub const TOP_SERVERS: usize = 10;

fn clamp(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

fn named<N: Into<String>>(pairs: impl IntoIterator<Item = (N, u64)>) -> Vec<NamedCount> {
    pairs
        .into_iter()
        .map(|(name, count)| NamedCount {
            name: name.into(),
            count,
        })
        .collect()
}

/// Everything the dashboard shows, now.
pub fn snapshot(observed: &Observed) -> AdminStats {
    let hub = observed.hub.metrics().snapshot();
    let transport = observed.transport_metrics.snapshot();
    let sse = observed.sse.metrics();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    AdminStats {
        uptime_seconds: clamp(observed.lifecycle.uptime().as_secs()),
        connections: TransportConnections {
            websocket: observed
                .connection_gate
                .open_for(crate::transport::connection_gate::Transport::WebSocket),
            sse_streams: clamp(observed.sse.open_streams()),
        },
        users_online: clamp(hub.users_online),
        top_servers: observed
            .hub
            .largest_servers(TOP_SERVERS)
            .into_iter()
            .map(|(server_id, members)| ServerLoad {
                server_id,
                members: clamp(members),
            })
            .collect(),
        envelopes_in: named(transport.envelopes_in.iter().copied()),
        envelopes_out: named(hub.deliveries_by_type.iter().copied()),
        errors: named(transport.errors.iter().map(|(c, n)| (c.as_str(), *n))),
        closes: named(
            transport
                .closes
                .iter()
                .map(|(c, n)| (c.code().to_string(), *n)),
        ),
        upgrades_refused: named(transport.refused.iter().copied()),
        forward_latency: LatencySummary {
            count: transport.latency_count,
            p50_us: percentile(&transport.latency_buckets, transport.latency_count, 500),
            p90_us: percentile(&transport.latency_buckets, transport.latency_count, 900),
            p99_us: percentile(&transport.latency_buckets, transport.latency_count, 990),
        },
        sse: SseSummary {
            sessions: clamp(observed.sse.session_count()),
            sessions_created: load(&sse.sessions_created),
            sessions_resumed: load(&sse.sessions_resumed),
            sessions_pruned: load(&sse.sessions_pruned),
            streams_dropped_slow: load(&sse.streams_dropped_slow),
        },
    }
}

/// The upper bound of the cumulative bucket holding the `per_mille`-th quantile of `count`
/// observations; `None` with no observations or when it lies above the last bound.
pub fn percentile(cumulative: &[(u64, u64)], count: u64, per_mille: u64) -> Option<u64> {
    if count == 0 {
        return None;
    }
    let rank = (u128::from(count) * u128::from(per_mille)).div_ceil(1000);
    cumulative
        .iter()
        .find(|(_, seen)| u128::from(*seen) >= rank)
        .map(|(bound, _)| *bound)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_bucket_bounds() {
        let buckets = [(50, 10), (100, 90), (250, 99), (500, 99)];
        assert_eq!(percentile(&buckets, 0, 500), None);
        assert_eq!(percentile(&buckets, 100, 500), Some(100));
        assert_eq!(percentile(&buckets, 100, 900), Some(100));
        assert_eq!(percentile(&buckets, 100, 990), Some(250));
        assert_eq!(percentile(&buckets, 100, 1000), None, "one lies above 500");
        assert_eq!(percentile(&buckets, 100, 100), Some(50));
    }
}
