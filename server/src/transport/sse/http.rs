//! The warp filters of the SSE routes: `GET /api/connect`, `POST /api/signal`,
//! `POST /api/leave`. They are listed in the route table (`routes::sse`) for the OpenAPI
//! document and mounted in front of it by `app::filters`, because a stream is not a JSON reply.
//!
//! `GET /api/connect` is where an SSE session is admitted (see the parent module's
//! "Admission"): a resumed session (its id and secret) needs nothing more; a new one needs a
//! token in `auth: required` (401 otherwise), passes the directory's access rules through
//! [`access::admit`] when its room names a directory server (403 with the reason otherwise),
//! and takes a slot of the shared connection gate (503 past it). The token is `?token=` (on a
//! new session only: with `session_id`, `token` is the session's secret) or
//! `Authorization: Bearer`; a room password is `?password=` or the `X-Room-Password` header,
//! an invite `?invite=`. Never logs any of them.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::Stream;
use signalbox_protocol::sse::{RosterMode, SseError, SseSuccess};
use signalbox_protocol::{AccessDeniedReason, UserId};
use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use super::{Admitted, ConnectParams, room_of};
use crate::app::AppState;
use crate::auth::Caller;
use crate::config::AuthMode;
use crate::directory::access::{self, AdmissionRequest, Entry};
use crate::http::read_capped;

/// The header a room password may ride in (instead of `?password=`).
pub const ROOM_PASSWORD_HEADER: &str = "x-room-password";

/// The answer to an SSE route that failed: its status and `{"error": MESSAGE}`.
pub fn error_response(error: SseError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    crate::telemetry::levels::refusal(error, status.as_u16());
    warp::reply::with_status(warp::reply::json(&error.body()), status).into_response()
}

fn success_response() -> Response {
    warp::reply::json(&SseSuccess::OK).into_response()
}

fn first(query: &[(String, String)], key: &str) -> Option<String> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// Reads a body of at most `cap` bytes (the REST routes' reader), with this transport's errors:
/// `BodyTooLarge` past the cap, `MissingParameters` when it cannot be read.
async fn read_body<S, B>(body: S, cap: usize) -> Result<Bytes, SseError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    read_capped(body, cap).await.map_err(|failure| {
        if failure.status() == StatusCode::PAYLOAD_TOO_LARGE {
            SseError::BodyTooLarge
        } else {
            SseError::MissingParameters
        }
    })
}

fn stream_response(stream: super::SseStream) -> Response {
    let mut response = warp::reply::stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    response
}

/// The bearer token of an `Authorization` header; a malformed header counts as a bad token.
fn bearer(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(header::AUTHORIZATION)?;
    Some(match value.to_str().ok().and_then(|v| v.split_once(' ')) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(()),
    })
}

/// `GET /api/connect`: admits (or resumes) a session and answers with its stream.
async fn connect(
    state: Arc<AppState>,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    remote: Option<SocketAddr>,
) -> Result<super::SseStream, SseError> {
    let sse = &state.sse;
    let params = ConnectParams {
        room: first(&query, "room"),
        session_id: first(&query, "session_id"),
        token: first(&query, "token").map(signalbox_protocol::Secret::from),
        roster: match first(&query, RosterMode::PARAMETER) {
            None => RosterMode::default(),
            Some(value) => RosterMode::from_wire(&value).ok_or(SseError::MissingParameters)?,
        },
    };
    let room = room_of(params.room.as_deref())?;
    if sse.resumes(&params, &room) {
        return sse.connect(params, None);
    }
    // Cluster mode: the session may be held by another node, which gives it up to this one.
    if let Some(taken) = sse.take_over(&params, &room).await? {
        let permit = state
            .connection_gate
            .admit(
                remote.map(|a| a.ip()),
                crate::transport::connection_gate::Transport::Sse,
            )
            .map_err(|_| SseError::Full)?;
        let admitted = Admitted {
            principal: None,
            permit: Some(permit),
        };
        let stream = sse.adopt(params, admitted, taken)?;
        sse.settled().await;
        return Ok(stream);
    }
    if state.is_draining() {
        return Err(SseError::Full);
    }
    let token = match bearer(&headers) {
        Some(Ok(token)) => Some(token.to_owned()),
        Some(Err(())) => return Err(SseError::TokenRequired),
        // With `session_id`, `token` is the session's secret, not an auth token.
        None if params.session_id.is_none() => params
            .token
            .as_ref()
            .map(|t| t.expose().to_owned())
            .filter(|t| !t.is_empty()),
        None => None,
    };
    let caller: Option<Caller> = match token {
        Some(token) => Some(
            state
                .auth
                .check(&token)
                .map_err(|_| SseError::TokenRequired)?,
        ),
        None => None,
    };
    if state.auth.mode == AuthMode::Required && caller.is_none() {
        return Err(SseError::TokenRequired);
    }
    let ip = remote.map(|a| a.ip());
    let server = signalbox_protocol::sse::room_server_id(&room);
    let directory = state
        .directory
        .server(&crate::op!("connect"), &server)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not look up an SSE room in the directory");
            SseError::Full
        })?
        .is_some();
    if directory {
        let password = first(&query, "password")
            .or_else(|| {
                headers
                    .get(ROOM_PASSWORD_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .map(signalbox_protocol::Secret::from);
        let guessing = password.is_some();
        if guessing
            && state
                .password_attempts
                .check(ip, std::time::Instant::now())
                .is_err()
        {
            return Err(SseError::RateLimited);
        }
        let request = AdmissionRequest {
            entry: Entry::Join,
            server,
            // An anonymous applicant is nobody in the directory: a fresh id no rule names.
            user: caller.as_ref().map_or_else(
                || UserId(uuid::Uuid::new_v4().to_string()),
                |c| c.user_id.clone(),
            ),
            authenticated: caller.is_some(),
            durable: caller.is_some(),
            password,
            invite_code: first(&query, "invite"),
            display_name: caller.as_ref().and_then(|c| c.display_name.clone()),
            mode: state.auth.mode,
        };
        let decision = access::admit(&*state.directory, &state.passwords, request)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "could not check an SSE admission");
                SseError::Full
            })?;
        match decision {
            Ok(_) => {}
            Err(AccessDeniedReason::NotAuthenticated) if caller.is_none() => {
                return Err(SseError::TokenRequired);
            }
            Err(reason) => {
                if reason == AccessDeniedReason::WrongPassword {
                    state
                        .password_attempts
                        .record_failure(ip, std::time::Instant::now());
                }
                return Err(SseError::Denied(reason));
            }
        }
    }
    let permit = state
        .connection_gate
        .admit(ip, crate::transport::connection_gate::Transport::Sse)
        .map_err(|_| SseError::Full)?;
    let stream = sse.connect(
        params,
        Some(Admitted {
            principal: caller.map(|c| c.user_id),
            permit: Some(permit),
        }),
    )?;
    // Cluster mode: `joined` reaches the client only once the session is in the cluster
    // registry, so a POST landing on another node finds it.
    sse.settled().await;
    Ok(stream)
}

/// The three SSE routes. Rejects (so the REST router answers) anything else.
pub fn filters(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let sse = state.sse.clone();
    let query = warp::query::<Vec<(String, String)>>()
        .or(warp::any().map(Vec::new))
        .unify();
    let connect = warp::path!("api" / "connect")
        .and(warp::get())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .then(move |query, headers, remote| {
            let state = Arc::clone(&state);
            async move {
                match connect(state, query, headers, remote).await {
                    Ok(stream) => stream_response(stream),
                    Err(error) => error_response(error),
                }
            }
        });
    let post = |name: &'static str, signal: bool| {
        let sse = sse.clone();
        warp::path("api")
            .and(warp::path(name))
            .and(warp::path::end())
            .and(warp::post())
            .and(query)
            .and(warp::body::stream())
            .then(move |query: Vec<(String, String)>, body| {
                let sse = sse.clone();
                async move {
                    let cap = sse.settings().max_body_bytes;
                    let body = match read_body(body, cap).await {
                        Ok(body) => body,
                        Err(error) => return error_response(error),
                    };
                    let room = first(&query, "room");
                    let done = if signal {
                        sse.signal(room.as_deref(), &body).await
                    } else {
                        sse.leave(room.as_deref(), &body).await
                    };
                    match done {
                        Ok(()) => success_response(),
                        Err(error) => error_response(error),
                    }
                }
            })
    };
    connect
        .or(post("signal", true))
        .unify()
        .or(post("leave", false))
        .unify()
}
