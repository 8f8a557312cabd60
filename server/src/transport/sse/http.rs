//! The warp filters of the SSE routes: `GET /api/connect`, `POST /api/signal`,
//! `POST /api/leave`. They are listed in the route table (`routes::sse`) for the OpenAPI
//! document and mounted in front of it by `app::filters`, because a stream is not a JSON reply.

use bytes::{Buf, Bytes};
use futures_util::Stream;
use signalbox_protocol::sse::{SseError, SseSuccess};
use warp::Filter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use super::{ConnectParams, SseTransport};
use crate::http::read_capped;

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

/// The three SSE routes. Rejects (so the REST router answers) anything else.
pub fn filters(
    sse: SseTransport,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let query = warp::query::<Vec<(String, String)>>()
        .or(warp::any().map(Vec::new))
        .unify();
    let connect = {
        let sse = sse.clone();
        warp::path!("api" / "connect")
            .and(warp::get())
            .and(query)
            .map(move |query: Vec<(String, String)>| {
                let params = ConnectParams {
                    room: first(&query, "room"),
                    session_id: first(&query, "session_id"),
                    token: first(&query, "token"),
                };
                match sse.connect(params) {
                    Ok(stream) => stream_response(stream),
                    Err(error) => error_response(error),
                }
            })
    };
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
                        sse.signal(room.as_deref(), &body)
                    } else {
                        sse.leave(room.as_deref(), &body)
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
