//! The SSE transport's routes, listed here so the OpenAPI document covers them. They are served
//! by `transport::sse::http`, mounted in front of the REST router (a stream is not a JSON
//! reply); the handlers below only answer if that filter is not mounted.

use std::sync::Arc;

use signalbox_protocol::catalog::schema_for;
use signalbox_protocol::sse;
use warp::http::Method;

use super::{AuthRule, BodyType, Reply, Req, Route, handler};
use crate::http::ApiFailure;

/// The SSE routes need no service here (`transport::sse::http` serves them).
#[derive(Debug)]
pub struct SseApi;

/// This family's routes.
pub fn routes() -> Vec<Route<SseApi>> {
    let body = |name, schema| BodyType { name, schema };
    vec![
        Route::new(
            Method::GET,
            "/api/connect",
            AuthRule::Public,
            "SSE: joins `room` (query; trimmed, upper-cased), or resumes `session_id` with `token`; streams `joined`, `roster`, `signal` events (`roster=delta`: one `roster`, then `roster_joined`/`roster_left` per change). Errors are `{\"error\": MESSAGE}` (400, 403, 503).",
            handler!(not_mounted),
        ),
        Route::new(
            Method::POST,
            "/api/signal",
            AuthRule::Public,
            "SSE: sends `signal` to `to` in `room` (query). Errors are `{\"error\": MESSAGE}` (400, 403, 404, 413, 422, 429).",
            handler!(not_mounted),
        )
        .takes(body("SignalRequest", schema_for::<sse::SignalRequest>))
        .answers(body("SseSuccess", schema_for::<sse::SseSuccess>)),
        Route::new(
            Method::POST,
            "/api/leave",
            AuthRule::Public,
            "SSE: ends the session in `room` (query). Errors are `{\"error\": MESSAGE}` (400, 403, 413).",
            handler!(not_mounted),
        )
        .takes(body("LeaveRequest", schema_for::<sse::LeaveRequest>))
        .answers(body("SseSuccess", schema_for::<sse::SseSuccess>)),
    ]
}

/// Answers when the SSE filter is not mounted in front of the router (a wiring bug).
pub async fn not_mounted(_api: Arc<SseApi>, _req: Req) -> Result<Reply, ApiFailure> {
    Err(ApiFailure::internal(&"the SSE transport is not mounted"))
}
