//! `GET /metrics`: Prometheus text exposition of the hub's and the transports' counters, every
//! bounded structure's gauge, the database's, and the process's.
//!
//! Mounted beside the REST table (it is not JSON and not under `/api`), public like health. Owns
//! formatting only; the numbers come from [`crate::hub::HubMetrics`],
//! [`crate::transport::metrics::TransportMetrics`], the SSE transport's counters, the gauge
//! registry [`crate::telemetry::gauges`], [`crate::directory::db_metrics`] and the `prometheus`
//! crate's process collector (`process_*`, unprefixed as the Prometheus conventions name them).

use std::fmt::Write as _;
use std::sync::LazyLock;

use prometheus::core::Collector as _;
use prometheus::process_collector::ProcessCollector;
use warp::http::header::CONTENT_TYPE;
use warp::reply::Reply as _;

use super::Observed;
use crate::telemetry::gauges::{self, Scrape};

/// The content type of the text exposition format.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every metric.
pub async fn render(observed: &Observed) -> warp::reply::Response {
    let scrape = Scrape::take(observed).await;
    let text = exposition(&scrape);
    warp::reply::with_header(text, CONTENT_TYPE, CONTENT_TYPE_TEXT).into_response()
}

/// The process collector: resident memory, open descriptors, CPU seconds, start time.
static PROCESS: LazyLock<ProcessCollector> = LazyLock::new(ProcessCollector::for_self);

/// The exposition text (separate from the reply for tests).
pub fn exposition(scrape: &Scrape<'_>) -> String {
    let observed = scrape.observed;
    let hub = observed.hub.metrics().snapshot();
    let transport = observed.transport_metrics.snapshot();
    let mut out = String::with_capacity(8 * 1024);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP signalbox_{name} {help}");
        let _ = writeln!(out, "# TYPE signalbox_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "signalbox_{name}{labels} {value}");
        }
    };
    let one = |value: u64| vec![(String::new(), value)];
    let labelled = |label: &str, pairs: Vec<(String, u64)>| {
        pairs
            .into_iter()
            .map(|(l, v)| (format!("{{{label}=\"{l}\"}}"), v))
            .collect::<Vec<_>>()
    };

    metric(
        "connections_open",
        "gauge",
        "Open realtime connections.",
        &one(hub.connections_open),
    );
    metric(
        "users_online",
        "gauge",
        "Users with at least one identified connection.",
        &one(hub.users_online),
    );
    metric(
        "ready",
        "gauge",
        "1 while the server accepts new work, 0 while it drains (as /api/ready).",
        &one(u64::from(!observed.lifecycle.is_draining())),
    );
    metric(
        "envelopes_in_total",
        "counter",
        "Client envelopes received, by type.",
        &labelled(
            "type",
            transport
                .envelopes_in
                .iter()
                .map(|(t, n)| ((*t).to_owned(), *n))
                .collect(),
        ),
    );
    metric(
        "envelopes_out_total",
        "counter",
        "Server envelopes queued for a connection, by type (one per recipient).",
        &labelled(
            "type",
            hub.deliveries_by_type
                .iter()
                .map(|(t, n)| ((*t).to_owned(), *n))
                .collect(),
        ),
    );
    metric(
        "errors_total",
        "counter",
        "error envelopes sent, by code.",
        &labelled(
            "code",
            transport
                .errors
                .iter()
                .map(|(c, n)| (c.as_str().to_owned(), *n))
                .collect(),
        ),
    );
    metric(
        "closes_total",
        "counter",
        "Connections closed by the server, by close code.",
        &labelled(
            "code",
            transport
                .closes
                .iter()
                .map(|(c, n)| (c.code().to_string(), *n))
                .collect(),
        ),
    );
    metric(
        "upgrades_refused_total",
        "counter",
        "WebSocket upgrades refused before a connection was made, by reason.",
        &labelled(
            "reason",
            transport
                .refused
                .iter()
                .map(|(r, n)| ((*r).to_owned(), *n))
                .collect(),
        ),
    );
    metric(
        "slow_consumer_closes_total",
        "counter",
        "Connections closed because their outbound queue filled up.",
        &one(hub.slow_consumer_closes),
    );
    metric(
        "envelopes_serialized_total",
        "counter",
        "Envelopes serialized (once per broadcast, forward or reply).",
        &one(hub.envelopes_serialized),
    );
    metric(
        "forwards_total",
        "counter",
        "Forwarded envelopes delivered.",
        &one(hub.forwards),
    );
    metric(
        "forwards_refused_total",
        "counter",
        "Forwarded envelopes refused, by reason.",
        &[
            (
                "{reason=\"target_not_found\"}".to_owned(),
                hub.forwards_target_not_found,
            ),
            ("{reason=\"forbidden\"}".to_owned(), hub.forwards_forbidden),
        ],
    );

    let sse = observed.sse.metrics();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    metric(
        "sse_sessions_created_total",
        "counter",
        "SSE sessions created.",
        &one(load(&sse.sessions_created)),
    );
    metric(
        "sse_sessions_resumed_total",
        "counter",
        "SSE sessions resumed with session_id and token.",
        &one(load(&sse.sessions_resumed)),
    );
    metric(
        "sse_sessions_pruned_total",
        "counter",
        "SSE sessions pruned after the idle timeout.",
        &one(load(&sse.sessions_pruned)),
    );
    metric(
        "sse_streams_dropped_slow_total",
        "counter",
        "SSE streams dropped because the client stopped reading.",
        &one(load(&sse.streams_dropped_slow)),
    );
    metric(
        "sse_events_dropped_total",
        "counter",
        "SSE events dropped for a session without room in its buffer.",
        &one(load(&sse.events_dropped)),
    );
    metric(
        "sse_rosters_serialized_total",
        "counter",
        "SSE roster events serialized (one per membership change of a room, shared by its full-roster streams).",
        &one(load(&sse.rosters_serialized)),
    );
    metric(
        "sse_delta_rosters_serialized_total",
        "counter",
        "SSE roster events serialized as the starting point of one roster=delta stream each.",
        &one(load(&sse.delta_rosters_serialized)),
    );
    metric(
        "sse_roster_changes_sent_total",
        "counter",
        "SSE roster_joined and roster_left events handed to roster=delta streams.",
        &one(load(&sse.roster_changes_sent)),
    );

    let mut histogram =
        |name: &str, help: &str, buckets: &[(String, u64)], count: u64, sum: String| {
            let _ = writeln!(out, "# HELP signalbox_{name} {help}");
            let _ = writeln!(out, "# TYPE signalbox_{name} histogram");
            for (le, n) in buckets {
                let _ = writeln!(out, "signalbox_{name}_bucket{{le=\"{le}\"}} {n}");
            }
            let _ = writeln!(out, "signalbox_{name}_bucket{{le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "signalbox_{name}_sum {sum}");
            let _ = writeln!(out, "signalbox_{name}_count {count}");
        };
    let latency: Vec<_> = transport
        .latency_buckets
        .iter()
        .map(|(us, n)| (seconds(*us), *n))
        .collect();
    histogram(
        "forward_latency_seconds",
        "Time from reading a forwarded envelope to its delivery being queued.",
        &latency,
        transport.latency_count,
        seconds(transport.latency_sum_us),
    );
    let fanout: Vec<_> = hub
        .fanout
        .buckets
        .iter()
        .map(|(size, n)| (size.to_string(), *n))
        .collect();
    histogram(
        "fanout_size",
        "Recipients of one fan-out (broadcast, status update, roster event).",
        &fanout,
        hub.fanout.count,
        hub.fanout.sum.to_string(),
    );

    gauge_lines(&mut out, scrape);
    db_latency(&mut out, observed);
    if let Some(cluster) = &observed.cluster {
        cluster_lines(&mut out, &cluster.backplane().metrics());
    }
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&PROCESS.collect(), &mut out) {
        tracing::error!(error = %e, "metrics: process gauges could not be encoded");
    }
    out
}

/// The cluster backplane's numbers (`signalbox_cluster_*`, redis mode only).
fn cluster_lines(out: &mut String, m: &crate::cluster::MetricsSnapshot) {
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    let lines: [(&str, &str, &str, u64); 13] = [
        (
            "cluster_redis_up",
            "gauge",
            "1 while the backplane's last pipeline reached Redis, else 0 (/api/ready says degraded).",
            u64::from(m.redis_up),
        ),
        (
            "cluster_publish_queue_depth",
            "gauge",
            "Operations waiting for Redis in the publish queue.",
            n(m.publish_queue_depth),
        ),
        (
            "cluster_publish_queue_limit",
            "gauge",
            "Limit of signalbox_cluster_publish_queue_depth (setting cluster.publishQueue).",
            n(m.publish_queue_limit),
        ),
        (
            "cluster_pending_relays",
            "gauge",
            "Relayed SSE requests awaiting an answer.",
            n(m.pending_relays),
        ),
        (
            "cluster_pending_relays_limit",
            "gauge",
            "Limit of signalbox_cluster_pending_relays (setting cluster.maxPendingRelays).",
            n(m.pending_relays_limit),
        ),
        (
            "cluster_publish_queue_full_total",
            "counter",
            "Operations refused because the publish queue was full.",
            m.publish_queue_full,
        ),
        (
            "cluster_pushes_dropped_total",
            "counter",
            "Pushes from Redis dropped because the subscriber's queue was full.",
            m.pushes_dropped,
        ),
        (
            "cluster_undecodable_total",
            "counter",
            "Messages on this node's channels that did not decode.",
            m.undecodable,
        ),
        (
            "cluster_roster_refetches_total",
            "counter",
            "Roster snapshots fetched after a version gap.",
            m.roster_refetches,
        ),
        (
            "cluster_relay_timeouts_total",
            "counter",
            "Relayed SSE requests that got no answer in time.",
            m.relay_timeouts,
        ),
        (
            "cluster_relays_refused_total",
            "counter",
            "Relayed SSE requests refused at the pending bound.",
            m.relays_refused,
        ),
        (
            "cluster_resyncs_total",
            "counter",
            "Resyncs of this node's state into Redis.",
            m.resyncs,
        ),
        (
            "cluster_reaped_total",
            "counter",
            "Dead nodes this node reaped.",
            m.reaped,
        ),
    ];
    for (name, kind, help, value) in lines {
        let _ = writeln!(out, "# HELP signalbox_{name} {help}");
        let _ = writeln!(out, "# TYPE signalbox_{name} {kind}");
        let _ = writeln!(out, "signalbox_{name} {value}");
    }
}

/// Every registered bound (size and `_limit`) and size.
fn gauge_lines(out: &mut String, scrape: &Scrape<'_>) {
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP signalbox_{name} {help}");
        let _ = writeln!(out, "# TYPE signalbox_{name} gauge");
        let _ = writeln!(out, "signalbox_{name} {value}");
    };
    for bound in gauges::BOUNDS {
        let by = match bound.source {
            gauges::Source::Setting(key) => format!("setting {key}"),
            gauges::Source::Constant(path) => format!("constant {path}"),
        };
        gauge(bound.gauge, bound.help, (bound.size)(scrape));
        gauge(
            &format!("{}_limit", bound.gauge),
            &format!("Limit of signalbox_{} ({by}).", bound.gauge),
            (bound.limit)(scrape),
        );
    }
    for (name, help, read) in gauges::SIZES {
        gauge(name, help, read(scrape));
    }
}

/// The database query latency histogram, by operation.
fn db_latency(out: &mut String, observed: &Observed) {
    let name = "signalbox_db_query_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time a database call held its pool connection, by operation (the \
         calling function)."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for op in observed.directory.metrics().latency() {
        let label = op.operation.replace(['\\', '"'], "_");
        for (le, n) in &op.buckets {
            let _ = writeln!(
                out,
                "{name}_bucket{{operation=\"{label}\",le=\"{}\"}} {n}",
                seconds(*le)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{operation=\"{label}\",le=\"+Inf\"}} {}",
            op.count
        );
        let _ = writeln!(
            out,
            "{name}_sum{{operation=\"{label}\"}} {}",
            seconds(op.sum_us)
        );
        let _ = writeln!(out, "{name}_count{{operation=\"{label}\"}} {}", op.count);
    }
}

/// Microseconds as a decimal number of seconds.
fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn microseconds_print_as_seconds() {
        assert_eq!(seconds(50), "0.000050");
        assert_eq!(seconds(2_500_000), "2.500000");
    }
}
