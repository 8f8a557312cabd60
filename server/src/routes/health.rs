//! `GET /api/health` and `GET /api/ready`.
//!
//! Never touches anything but a `SELECT 1` (ready) and counters.

use std::sync::Arc;

use signalbox_protocol::PROTOCOL_VERSION;
use signalbox_protocol::http::{ApiErrorCode, HealthResponse, HealthStatus};
use warp::http::Method;

use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::directory::Directory;
use crate::http::ApiFailure;
use crate::hub::Hub;
use crate::lifecycle::Lifecycle;

/// The services of `/api/health` and `/api/ready`.
#[derive(Debug)]
pub struct HealthApi {
    /// Started when, draining or not.
    pub lifecycle: Arc<Lifecycle>,
    /// Pinged by `ready`.
    pub directory: Arc<dyn Directory>,
    /// Counts the open realtime connections.
    pub hub: Hub,
}

/// This family's routes.
pub fn routes() -> Vec<Route<HealthApi>> {
    vec![
        Route::new(
            Method::GET,
            "/api/health",
            AuthRule::Public,
            "Status, version, protocol version, uptime and open realtime connections.",
            handler!(health),
        )
        .answers(body!(HealthResponse)),
        Route::new(
            Method::GET,
            "/api/ready",
            AuthRule::Public,
            "200 when ready (status `degraded` in cluster mode while Redis is unreachable); 503 UNAVAILABLE while draining or when the database is unreachable.",
            handler!(ready),
        )
        .answers(body!(HealthResponse)),
    ]
}

fn snapshot(api: &HealthApi) -> HealthResponse {
    HealthResponse {
        status: if api.lifecycle.is_draining() {
            HealthStatus::Draining
        } else {
            HealthStatus::Ok
        },
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_version: PROTOCOL_VERSION.to_owned(),
        uptime_seconds: u32::try_from(api.lifecycle.uptime().as_secs()).unwrap_or(u32::MAX),
        connections: u32::try_from(api.hub.stats().connections).unwrap_or(u32::MAX),
        reason: None,
    }
}

/// `GET /api/health`.
pub async fn health(api: Arc<HealthApi>, _req: Req) -> Result<Reply, ApiFailure> {
    Reply::ok(&snapshot(&api))
}

/// `GET /api/ready`.
pub async fn ready(api: Arc<HealthApi>, _req: Req) -> Result<Reply, ApiFailure> {
    if api.lifecycle.is_draining() {
        return Err(ApiFailure::new(
            ApiErrorCode::Unavailable,
            "the server is draining",
        ));
    }
    if !api.directory.ping().await {
        return Err(ApiFailure::new(
            ApiErrorCode::Unavailable,
            "the database is unreachable",
        ));
    }
    let mut body = snapshot(&api);
    // Cluster mode with Redis out: still ready (local delivery works, and a dead Redis must not
    // take every node out of rotation), but said so. `/api/health` never looks.
    if api.hub.remote().is_some_and(|remote| !remote.is_up()) {
        body.status = HealthStatus::Degraded;
        body.reason = Some("the cluster backplane (Redis) is unreachable".to_owned());
    }
    Reply::ok(&body)
}
