//! `GET /api/health` and `GET /api/ready`.
//!
//! Never touches anything but a `SELECT 1` (ready) and counters.

use std::sync::Arc;

use signalbox_protocol::PROTOCOL_VERSION;
use signalbox_protocol::http::{ApiErrorCode, HealthResponse, HealthStatus};
use warp::http::Method;

use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::app::AppState;
use crate::http::ApiFailure;

/// This family's routes.
pub fn routes() -> Vec<Route> {
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
            "200 when ready; 503 UNAVAILABLE while draining or when the database is unreachable.",
            handler!(ready),
        )
        .answers(body!(HealthResponse)),
    ]
}

fn snapshot(state: &AppState) -> HealthResponse {
    HealthResponse {
        status: if state.is_draining() {
            HealthStatus::Draining
        } else {
            HealthStatus::Ok
        },
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_version: PROTOCOL_VERSION.to_owned(),
        uptime_seconds: u32::try_from(state.started.elapsed().as_secs()).unwrap_or(u32::MAX),
        connections: state.connections(),
    }
}

/// `GET /api/health`.
pub async fn health(state: Arc<AppState>, _req: Req) -> Result<Reply, ApiFailure> {
    Reply::ok(&snapshot(&state))
}

/// `GET /api/ready`.
pub async fn ready(state: Arc<AppState>, _req: Req) -> Result<Reply, ApiFailure> {
    if state.is_draining() {
        return Err(ApiFailure::new(
            ApiErrorCode::Unavailable,
            "the server is draining",
        ));
    }
    if !state.directory.ping().await {
        return Err(ApiFailure::new(
            ApiErrorCode::Unavailable,
            "the database is unreachable",
        ));
    }
    Reply::ok(&snapshot(&state))
}
