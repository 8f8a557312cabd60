//! Every bounded structure's gauge, registered in one table.
//!
//! Owns the registry [`BOUNDS`] (a map, queue, cache or pool, the setting or constant bounding
//! it, how to read its size and its limit) and [`SIZES`] (sizes worth watching that have no
//! limit of their own), and the list [`NOT_BOUNDS`] of settings that bound nothing a gauge could
//! show, each with the reason (rendered into the variables reference by
//! [`reference_section`]). Never renders the exposition (see [`crate::observe::metrics`]) and
//! never holds a lock across reads: each reader takes the structure's own lock briefly.
//!
//! # Adding a bound
//! One line in [`BOUNDS`]: `Bound::setting("key.inReference", "gauge_name", "Help.", size,
//! limit)` (or [`Bound::constant`] for a compile-time limit). `/metrics` then exports
//! `signalbox_gauge_name` and `signalbox_gauge_name_limit`. A new setting that is not listed
//! here nor in [`NOT_BOUNDS`] fails `every_setting_is_a_gauged_bound_or_says_why_not`, and the
//! integration test `tests/gauges.rs` scrapes a real server for every gauge listed.

use crate::hub::HubStats;
use crate::observe::Observed;
use crate::transport::sse::SseGauges;

/// What one scrape reads once and every gauge shares (the hub's and SSE's indexes are walked
/// once per scrape, the database is asked once).
#[derive(Debug)]
pub struct Scrape<'a> {
    /// What the gauges read.
    pub observed: &'a Observed,
    /// The hub's index sizes.
    pub hub: HubStats,
    /// The fullest outbound queue: `(frames, bytes)`.
    pub queue_peaks: (usize, usize),
    /// The SSE registry's sizes.
    pub sse: SseGauges,
    /// Facts read from the database.
    pub db: DbFacts,
}

/// Facts read from the database for one scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbFacts {
    /// Rows of `idempotency_records`.
    pub idempotency_records: u64,
    /// Size of the database file.
    pub db_bytes: u64,
    /// Size of the write-ahead log.
    pub wal_bytes: u64,
    /// Servers owned by the owner with the most.
    pub most_servers_per_owner: u64,
}

impl<'a> Scrape<'a> {
    /// Reads everything the gauges need (the database on its pool).
    pub async fn take(observed: &'a Observed) -> Scrape<'a> {
        let db = match observed.directory.stats(&crate::op!("take")).await {
            Ok(stats) => DbFacts {
                idempotency_records: stats.idempotency_records,
                db_bytes: stats.db_bytes,
                wal_bytes: stats.wal_bytes,
                most_servers_per_owner: stats.most_servers_per_owner,
            },
            Err(e) => {
                tracing::error!(error = %e, "metrics: the database could not be read");
                DbFacts::default()
            }
        };
        Scrape {
            observed,
            hub: observed.hub.stats(),
            queue_peaks: observed.hub.queue_peaks(),
            sse: observed.sse.gauges(),
            db,
        }
    }
}

/// Reads one number from a scrape.
pub type Read = fn(&Scrape<'_>) -> u64;

/// Where a bound's limit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A key of the variables reference (`docs/configuration.md`), e.g. `sse.maxSessions`.
    Setting(&'static str),
    /// A constant in the code, by path (not operator-tunable).
    Constant(&'static str),
}

/// A bounded structure: its gauge and its limit's gauge.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// What bounds it.
    pub source: Source,
    /// Gauge name without the `signalbox_` prefix; the limit is `<gauge>_limit`.
    pub gauge: &'static str,
    /// The gauge's HELP text.
    pub help: &'static str,
    /// The current size.
    pub size: Read,
    /// The limit.
    pub limit: Read,
}

impl Bound {
    /// A bound set by the setting `key`.
    pub const fn setting(
        key: &'static str,
        gauge: &'static str,
        help: &'static str,
        size: Read,
        limit: Read,
    ) -> Self {
        Self {
            source: Source::Setting(key),
            gauge,
            help,
            size,
            limit,
        }
    }

    /// A bound set by the constant at `path`.
    pub const fn constant(
        path: &'static str,
        gauge: &'static str,
        help: &'static str,
        size: Read,
        limit: Read,
    ) -> Self {
        Self {
            source: Source::Constant(path),
            gauge,
            help,
            size,
            limit,
        }
    }
}

/// A size without a limit of its own: `(gauge name, HELP, read)`.
pub type Size = (&'static str, &'static str, Read);

fn n(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// Every bounded structure. One line per bound; see the module docs.
#[rustfmt::skip]
pub static BOUNDS: &[Bound] = &[
    Bound::setting("realtime.maxConnections", "realtime_connections", "Open realtime connections, WebSocket and SSE sessions together (the caps count both).", |s| u64::from(s.observed.connection_gate.open()), |s| u64::from(s.observed.variables.realtime.max_connections)),
    Bound::setting("realtime.maxConnectionsPerIp", "realtime_connections_busiest_ip", "Open realtime connections (WebSocket and SSE) from the busiest client address.", |s| u64::from(s.observed.connection_gate.per_ip().1), |s| u64::from(s.observed.variables.realtime.max_connections_per_ip)),
    Bound::setting("realtime.outboundQueueEnvelopes", "outbound_queue_frames_max", "Frames waiting in the fullest outbound queue of any connection.", |s| n(s.queue_peaks.0), |s| n(s.observed.variables.realtime.outbound_queue_envelopes)),
    Bound::setting("realtime.outboundQueueBytes", "outbound_queue_bytes_max", "Bytes waiting in the fullest outbound queue of any connection.", |s| n(s.queue_peaks.1), |s| n(s.observed.variables.realtime.outbound_queue_bytes)),
    Bound::setting("sse.maxSessions", "sse_sessions", "SSE sessions held (with or without an open stream).", |s| n(s.sse.sessions), |s| n(s.observed.variables.sse.max_sessions)),
    Bound::setting("sse.maxSessionsPerRoom", "sse_room_sessions_max", "SSE sessions in the fullest room.", |s| n(s.sse.largest_room), |s| n(s.observed.variables.sse.max_sessions_per_room)),
    Bound::setting("sse.streamBufferEvents", "sse_buffered_events_max", "Events waiting for the furthest-behind SSE session.", |s| n(s.sse.largest_buffer), |s| n(s.observed.variables.sse.stream_buffer_events)),
    Bound::constant("app::DB_POOL_SIZE", "db_pool_in_use", "Database pool connections running a query.", |s| s.observed.directory.metrics().in_use(), |s| n(s.observed.directory.metrics().pool_size())),
    Bound::constant("auth::attempts::MAX_TRACKED", "password_attempt_addresses", "Client addresses with wrong server passwords counted.", |s| n(s.observed.password_attempts.tracked()), |_| n(crate::auth::attempts::MAX_TRACKED)),
    Bound::constant("routes::link_metadata::CACHE_ENTRIES", "preview_cache_entries", "Link previews cached.", |s| n(s.observed.previews.len()), |s| n(s.observed.previews.capacity())),
    Bound::constant("outbound::MAX_IN_FLIGHT", "outbound_fetches_in_flight", "Outbound fetches (previews, proxy, GIF search) running.", |s| n(s.observed.outbound.in_flight().0), |s| n(s.observed.outbound.in_flight().1)),
    Bound::constant("hub::HubConfig::max_icon_records_per_user", "icon_records", "Server icon version records in the hub; the limit is per user times users online.", |s| n(s.hub.icon_records), |s| n(crate::hub::HubConfig::default().max_icon_records_per_user) * n(s.hub.users)),
    Bound::setting("security.restRateLimitTrackedAddresses", "rest_rate_limit_addresses", "Client addresses with a REST token bucket.", |s| n(s.observed.address_limits.tracked()), |s| n(s.observed.variables.security.rest_rate_limit_tracked_addresses)),
    Bound::setting("security.passwordHashConcurrency", "password_hashes_in_flight", "Argon2 hashes and checks running on the blocking pool.", |s| n(s.observed.passwords.in_flight(s.observed.variables.security.password_hash_concurrency)), |s| n(s.observed.variables.security.password_hash_concurrency)),
    Bound::setting("security.maxJoinedServersPerConnection", "joined_servers_per_connection_max", "Servers joined by the connection that has joined the most.", |s| n(s.hub.most_joined_per_connection), |s| n(s.observed.variables.security.max_joined_servers_per_connection)),
    Bound::setting("security.maxViewedServersPerConnection", "viewed_servers_per_connection_max", "Servers viewed by the connection that views the most.", |s| n(s.hub.most_viewed_per_connection), |s| n(s.observed.variables.security.max_viewed_servers_per_connection)),
    Bound::setting("security.maxServersPerOwner", "servers_per_owner_max", "Servers owned by the owner with the most.", |s| s.db.most_servers_per_owner, |s| u64::from(s.observed.variables.security.max_servers_per_owner)),
];

/// Sizes worth watching whose bound is another gauge's (a user exists while a connection does).
#[rustfmt::skip]
pub static SIZES: &[Size] = &[
    ("websocket_connections", "Open WebSocket connections (their slots count in signalbox_realtime_connections).", |s| u64::from(s.observed.connection_gate.open_for(crate::transport::connection_gate::Transport::WebSocket))),
    ("hub_connections", "Connections registered with the hub, every transport (WebSocket and SSE sessions).", |s| n(s.hub.connections)),
    ("hub_users", "Users with at least one identified connection.", |s| n(s.hub.users)),
    ("hub_servers", "Servers with at least one joined or viewing connection.", |s| n(s.hub.servers)),
    ("hub_memberships", "Joined connections, summed over servers.", |s| n(s.hub.memberships)),
    ("hub_viewers", "Viewing connections, summed over servers.", |s| n(s.hub.viewers)),
    ("hub_user_scopes", "(user, server) scope records, summed over users.", |s| n(s.hub.user_scopes)),
    ("realtime_client_addresses", "Client addresses with an open realtime connection (WebSocket or SSE session).", |s| n(s.observed.connection_gate.per_ip().0)),
    ("sse_streams_open", "SSE sessions with an open stream.", |s| n(s.sse.streams)),
    ("sse_rooms", "SSE rooms with at least one session.", |s| n(s.sse.rooms)),
    ("db_pool_waiting", "Database calls waiting for a pool connection.", |s| s.observed.directory.metrics().waiting()),
    ("idempotency_records", "Idempotency-Key records stored (each kept for 24 h).", |s| s.db.idempotency_records),
    ("db_file_bytes", "Size of the SQLite database file.", |s| s.db.db_bytes),
    ("db_wal_bytes", "Size of the SQLite write-ahead log.", |s| s.db.wal_bytes),
    ("db_cache_limit_bytes", "Page cache the pool may hold: connections x database.cacheSizeKib.", |s| n(s.observed.directory.metrics().pool_size()) * u64::from(s.observed.variables.database.cache_size_kib) * 1024),
];

/// Settings that bound nothing a gauge could show, with the reason.
pub static NOT_BOUNDS: &[(&str, &str)] = &[
    (
        "security.maxSearchQueryChars",
        "one request's size, refused at once",
    ),
    ("security.purgeIntervalSeconds", "an interval"),
    (
        "security.restRateLimits.auth.burst",
        "a per-address rate; the addresses tracked are signalbox_rest_rate_limit_addresses",
    ),
    (
        "security.restRateLimits.auth.refillPerSec",
        "a per-address rate; the addresses tracked are signalbox_rest_rate_limit_addresses",
    ),
    (
        "security.restRateLimits.reads.burst",
        "a per-address rate; the addresses tracked are signalbox_rest_rate_limit_addresses",
    ),
    (
        "security.restRateLimits.reads.refillPerSec",
        "a per-address rate; the addresses tracked are signalbox_rest_rate_limit_addresses",
    ),
    (
        "security.restRateLimits.writes.burst",
        "a per-address rate; the addresses tracked are signalbox_rest_rate_limit_addresses",
    ),
    (
        "security.restRateLimits.writes.refillPerSec",
        "a per-address rate; the addresses tracked are signalbox_rest_rate_limit_addresses",
    ),
    ("tls.certFile", "a path"),
    ("tls.keyFile", "a path"),
    ("tls.reloadPollMs", "a polling interval"),
    (
        "tls.handshakeTimeoutMs",
        "a lifetime of a connection still in its handshake; such sockets count in process_open_fds",
    ),
    (
        "database.busyTimeoutMs",
        "a wait, not a size; calls waiting for a connection are signalbox_db_pool_waiting",
    ),
    (
        "database.idempotencyTtlSeconds",
        "a lifetime of database rows; their count is signalbox_idempotency_records",
    ),
    (
        "database.cacheSizeKib",
        "SQLite reports its page cache only through unsafe FFI; the bound is signalbox_db_cache_limit_bytes, the file it caches signalbox_db_file_bytes",
    ),
    ("directory.backend", "a choice of backend"),
    ("cluster.mode", "a mode"),
    ("cluster.nodeId", "a name"),
    ("cluster.redisUrl", "an address"),
    ("cluster.keyPrefix", "a name"),
    ("cluster.heartbeatMs", "a timing"),
    ("cluster.nodeTtlMs", "a timing"),
    ("cluster.relayTimeoutMs", "a wait, not a size"),
    (
        "cluster.publishQueue",
        "a queue of the backplane, present in redis mode only; its depth and bound are signalbox_cluster_publish_queue_depth and signalbox_cluster_publish_queue_limit",
    ),
    (
        "cluster.maxPendingRelays",
        "a table of the backplane, present in redis mode only; its size and bound are signalbox_cluster_pending_relays and signalbox_cluster_pending_relays_limit",
    ),
    (
        "cluster.maxPendingForwardsPerConnection",
        "a per-connection bound that makes the sender wait, never drops; the forwards it holds are queued in signalbox_cluster_publish_queue_depth",
    ),
    ("directory.postgresUrl", "an address"),
    (
        "directory.postgresPoolSize",
        "on the postgres backend it is the limit of signalbox_db_pool_in_use (the pool's size)",
    ),
    (
        "directory.postgresStatementTimeoutMs",
        "a wait, not a size; a call it cuts is answered 503 and timed in signalbox_db_call_seconds",
    ),
    ("auth", "a mode"),
    ("bind", "an address"),
    ("port", "an address"),
    ("logFormat", "a format"),
    ("publicHost", "a name"),
    ("publicProtocol", "a name"),
    ("releaseManifestUrl", "a URL"),
    ("klipyApiKey", "a secret"),
    ("klipyBaseUrl", "a URL"),
    ("linkPreviews", "a switch"),
    ("stunUrls", "configuration handed out"),
    ("turnUrls", "configuration handed out"),
    ("turnUsername", "configuration handed out"),
    ("turnCredential", "a secret"),
    ("turnSecret", "a secret"),
    ("operatorUserIds", "a list of operators"),
    ("outboundAllowlist", "a list of hosts"),
    ("realtime.forwarding", "a policy"),
    ("tokenTtlSeconds", "a lifetime; tokens are not stored"),
    ("guestTokenTtlSeconds", "a lifetime; tokens are not stored"),
    (
        "turnCredentialTtlSeconds",
        "a lifetime; credentials are not stored",
    ),
    (
        "challengeTtlSeconds",
        "a lifetime of database rows (see signalbox_db_file_bytes)",
    ),
    ("maxBodyBytes", "one request's size, refused at once"),
    ("sse.maxBodyBytes", "one request's size, refused at once"),
    (
        "realtime.maxFrameBytes",
        "one frame's size, refused at once",
    ),
    (
        "outboundTimeoutMs",
        "a timing (fetches in flight are gauged)",
    ),
    ("realtime.heartbeatIntervalMs", "a timing"),
    ("realtime.heartbeatTimeoutMs", "a timing"),
    ("realtime.writeTimeoutMs", "a timing"),
    ("sse.keepaliveIntervalMs", "a timing"),
    ("sse.pruneScanIntervalMs", "a timing"),
    (
        "sse.sessionIdleTimeoutMs",
        "a timing (the sessions it prunes are gauged)",
    ),
    (
        "realtime.rateLimitBurst",
        "a rate; its bucket lives and dies with the connection",
    ),
    (
        "realtime.rateLimitRefillPerSec",
        "a rate; its bucket lives and dies with the connection",
    ),
    (
        "realtime.rateLimitStrikesBeforeClose",
        "a count per connection",
    ),
    (
        "sse.rateLimitBurst",
        "a rate; its bucket lives and dies with the session",
    ),
    (
        "sse.rateLimitRefillPerSec",
        "a rate; its bucket lives and dies with the session",
    ),
];

/// The Markdown section of the variables reference listing each bound's gauges.
pub fn reference_section() -> String {
    let mut out = String::from(
        "\n## Gauges of bounded structures\n\n\
         Every map, queue, cache and pool a setting or constant bounds is exported by `GET \
         /metrics` as a gauge and its limit (`<gauge>_limit`).\n\n\
         | bounded by | gauge | limit gauge | meaning |\n|---|---|---|---|\n",
    );
    for bound in BOUNDS {
        let source = match bound.source {
            Source::Setting(key) => format!("`{key}`"),
            Source::Constant(path) => format!("constant `{path}`"),
        };
        out.push_str(&format!(
            "| {source} | `signalbox_{g}` | `signalbox_{g}_limit` | {} |\n",
            bound.help,
            g = bound.gauge
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_a_gauged_bound_or_says_why_not() {
        let keys = crate::config::reference::keys();
        assert!(keys.len() > 30, "the reference lists its keys: {keys:?}");
        let bounded: Vec<&str> = BOUNDS
            .iter()
            .filter_map(|b| match b.source {
                Source::Setting(key) => Some(key),
                Source::Constant(_) => None,
            })
            .collect();
        let mut missing = Vec::new();
        for key in &keys {
            let gauged = bounded.contains(&key.as_str());
            let excused = NOT_BOUNDS.iter().any(|(k, _)| k == key);
            assert!(!(gauged && excused), "{key} is both a bound and not one");
            if !gauged && !excused {
                missing.push(key.clone());
            }
        }
        assert!(
            missing.is_empty(),
            "settings with no gauge: {missing:?}; register each in telemetry::gauges::BOUNDS \
             (or, when it bounds nothing a gauge can show, in NOT_BOUNDS with the reason)"
        );
        for key in bounded.iter().chain(NOT_BOUNDS.iter().map(|(k, _)| k)) {
            assert!(keys.iter().any(|k| k == key), "{key} is not a setting");
        }
    }

    #[test]
    fn gauge_names_are_unique() {
        let mut names: Vec<String> = BOUNDS
            .iter()
            .flat_map(|b| [b.gauge.to_owned(), format!("{}_limit", b.gauge)])
            .chain(SIZES.iter().map(|(g, _, _)| (*g).to_owned()))
            .collect();
        let all = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all, "a gauge name is used twice");
    }
}
