//! What the read-only views of the server look at, and `/metrics`.
//!
//! Owns [`Observed`], the set of handles the views read (sizes, counters, limits), built once
//! by the application, and the Prometheus exposition ([`metrics`]). The gauge table stays in
//! [`crate::telemetry::gauges`] (its public path is what `tests/gauges.rs` imports) and the
//! dashboard in [`crate::admin`]; both read [`Observed`] instead of the application state.
//! Never changes anything it holds.

pub mod metrics;

use std::sync::Arc;

use crate::auth::attempts::PasswordAttempts;
use crate::auth::password::PasswordWork;
use crate::config::Variables;
use crate::directory::Directory;
use crate::http::address_limits::AddressLimits;
use crate::hub::Hub;
use crate::lifecycle::Lifecycle;
use crate::outbound::Outbound;
use crate::routes::link_metadata::PreviewCache;
use crate::transport::connection_gate::ConnectionGate;
use crate::transport::metrics::TransportMetrics;
use crate::transport::sse::SseTransport;

/// The handles the gauges, `/metrics` and `/admin/stats` read; nothing here is written by them.
#[derive(Clone)]
pub struct Observed {
    /// The settings (every gauge's limit comes from here or from a constant).
    pub variables: Arc<Variables>,
    /// Pool gauges, query latency, facts (`Directory::stats`).
    pub directory: Arc<dyn Directory>,
    /// The hub's counters and index sizes.
    pub hub: Hub,
    /// The SSE transport's counters and registry sizes.
    pub sse: SseTransport,
    /// Open realtime connections, per transport and per address.
    pub connection_gate: Arc<ConnectionGate>,
    /// Addresses with wrong server passwords counted.
    pub password_attempts: Arc<PasswordAttempts>,
    /// Argon2 work in flight.
    pub passwords: PasswordWork,
    /// Link previews cached.
    pub previews: Arc<PreviewCache>,
    /// Outbound fetches in flight.
    pub outbound: Outbound,
    /// Addresses with a REST token bucket.
    pub address_limits: Arc<AddressLimits>,
    /// The transports' counters.
    pub transport_metrics: Arc<TransportMetrics>,
    /// Uptime and draining.
    pub lifecycle: Arc<Lifecycle>,
    /// The cluster backplane's numbers, in `cluster.mode: "redis"`.
    pub cluster: Option<Arc<crate::cluster::glue::ClusterNode>>,
}

impl std::fmt::Debug for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed").finish_non_exhaustive()
    }
}
