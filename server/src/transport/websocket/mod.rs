//! The WebSocket transport: the upgrade at `/` and `/ws` (the Toju client connects to a signal
//! URL), and one task per socket.
//!
//! Owns: the upgrade (`?token=`, `?v=MAJOR`, connection caps), the connection's one task
//! ([`connection`]: reading frames with their size cap, rate limit and parsing; writing the hub's
//! outbound queue), its timer ([`heartbeat`]: pings and the liveness deadline) and the writes
//! themselves ([`writer`]: batches flushed once, pings, close frames, bounded write time).
//! What an envelope *does* is the handlers' business ([`crate::handlers`]); who receives what
//! is the hub's ([`crate::hub`]).
//!
//! Never: parses JSON itself (it calls `signalbox_protocol::ws::parse_client_frame`), touches
//! the database, or holds an unbounded buffer (the outbound queue is the hub's bounded one, and
//! tungstenite's buffers are sized and capped by [`socket_config`]).

mod connection;
mod handshake;
mod heartbeat;
mod lazy_read;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;

use signalbox_protocol::PROTOCOL_MAJOR;
use signalbox_protocol::http::ApiErrorCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use warp::Filter;

use handshake::Handshake;

use super::metrics::UpgradeRefusal;
use crate::app::AppState;
use crate::http::ApiFailure;

/// What the client asked for in the upgrade's query string.
#[derive(Debug, Default)]
struct UpgradeRequest {
    /// `?token=`: a token proving the identity `identify` will claim (redacted in `Debug`).
    token: Option<signalbox_protocol::Secret>,
    /// Why the `?v=` major cannot be served (close 4000 with this reason).
    unsupported_version: Option<String>,
    /// The client's address.
    remote_ip: Option<std::net::IpAddr>,
}

impl UpgradeRequest {
    fn from_query(query: &[(String, String)]) -> Self {
        let mut request = Self::default();
        for (key, value) in query {
            match key.as_str() {
                "token" if !value.is_empty() => request.token = Some(value.as_str().into()),
                "v" => {
                    let wanted = value.split('.').next().unwrap_or_default();
                    if wanted.parse::<u32>().ok() != Some(PROTOCOL_MAJOR) {
                        let shown: String = value.chars().take(16).collect();
                        request.unsupported_version = Some(format!(
                            "protocol major {shown} is not supported; this server speaks {PROTOCOL_MAJOR}"
                        ));
                    }
                }
                _ => {}
            }
        }
        request
    }
}

/// The environment variable that turns on the test-only echo endpoint `GET /ws-echo` (the
/// Autobahn compliance run, `scripts/autobahn`). Unset, the path does not exist.
pub const ECHO_ENV: &str = "SIGNALBOX_TEST_WS_ECHO";

/// The upgrade routes, `GET /` and `GET /ws` with `Upgrade: websocket` (and `GET /ws-echo` when
/// [`ECHO_ENV`] is set). Requests without the upgrade headers fall through to the next filter.
pub fn routes(
    state: Arc<AppState>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let echo_on = std::env::var_os(ECHO_ENV).is_some_and(|v| v == "1");
    let echo_state = Arc::clone(&state);
    let echo = warp::path("ws-echo")
        .and(warp::path::end())
        .and(handshake::handshake())
        .and_then(move |ws: Handshake| {
            let state = Arc::clone(&echo_state);
            async move {
                if !echo_on {
                    return Err(warp::reject::not_found());
                }
                let realtime = &state.config.variables.realtime;
                let write_timeout = std::time::Duration::from_millis(realtime.write_timeout_ms);
                let config = socket_config(realtime.max_frame_bytes);
                Ok::<_, warp::Rejection>(ws.accept(config, move |socket| {
                    connection::echo(socket, write_timeout)
                }))
            }
        });
    let path = warp::path::end()
        .or(warp::path("ws").and(warp::path::end()))
        .unify();
    let query = warp::query::<Vec<(String, String)>>()
        .or(warp::any().map(Vec::new))
        .unify();
    path.and(handshake::handshake())
        .and(query)
        .and(crate::peer::remote())
        .map(
            move |ws: Handshake, query: Vec<(String, String)>, remote: Option<SocketAddr>| {
                upgrade(Arc::clone(&state), ws, &query, remote)
            },
        )
        .or(echo)
        .unify()
}

fn upgrade(
    state: Arc<AppState>,
    ws: Handshake,
    query: &[(String, String)],
    remote: Option<SocketAddr>,
) -> warp::reply::Response {
    let metrics = &state.transport_metrics;
    if state.is_draining() {
        metrics.refused(UpgradeRefusal::Draining);
        return ApiFailure::new(ApiErrorCode::Unavailable, "the server is shutting down")
            .into_response();
    }
    let permit = match state.connection_gate.admit(
        remote.map(|a| a.ip()),
        crate::transport::connection_gate::Transport::WebSocket,
    ) {
        Ok(permit) => permit,
        Err(why) => {
            metrics.refused(why);
            let failure = match why {
                UpgradeRefusal::IpFull => ApiFailure::new(
                    ApiErrorCode::RateLimited,
                    "too many open connections from this address",
                ),
                UpgradeRefusal::ServerFull | UpgradeRefusal::Draining => ApiFailure::new(
                    ApiErrorCode::Unavailable,
                    "the server has reached its connection limit",
                ),
            };
            return failure.into_response();
        }
    };
    let mut request = UpgradeRequest::from_query(query);
    request.remote_ip = remote.map(|a| a.ip());
    let config = socket_config(state.config.variables.realtime.max_frame_bytes);
    ws.accept(config, move |socket| {
        connection::run(state, socket, permit, request)
    })
}

/// Bytes tungstenite reads at a time, and the read buffer an idle connection keeps; the buffer
/// grows only for larger frames. Small, because the socket underneath reads whole bursts
/// ([`lazy_read`]): tungstenite's reads are then copies, not system calls.
pub const READ_BUFFER_BYTES: usize = 512;
/// Bytes a batch of outgoing frames gathers before a socket write ([`writer::write_frames`],
/// which frees the buffer when the batch is written; tungstenite's own write buffer only ever
/// holds pings, pongs and close frames).
pub const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// The tungstenite settings of every socket: incoming messages and frames capped at
/// `max_frame_bytes` (1009 beyond) and small initial buffers (an idle connection costs little).
/// The write buffer has no cap of its own: tungstenite refuses any single frame larger than the
/// cap, and an outgoing frame (a large server's `server_users`) may exceed any fixed size. What a
/// connection may hold is bounded before that, by the hub's outbound queue (frames and bytes)
/// and by every batch being flushed.
pub fn socket_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> UpgradeRequest {
        let query: Vec<_> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        UpgradeRequest::from_query(&query)
    }

    #[test]
    fn the_current_major_is_accepted_in_any_spelling() {
        assert!(parse(&[]).unsupported_version.is_none());
        let current = PROTOCOL_MAJOR.to_string();
        assert!(parse(&[("v", &current)]).unsupported_version.is_none());
        let full = format!("{PROTOCOL_MAJOR}.3.1");
        assert!(parse(&[("v", &full)]).unsupported_version.is_none());
    }

    #[test]
    fn other_majors_and_garbage_are_refused_with_a_bounded_reason() {
        let next = (PROTOCOL_MAJOR + 1).to_string();
        let refused = parse(&[("v", &next)]).unsupported_version.expect("refused");
        assert!(refused.contains(&next));
        let garbage = "x".repeat(1000);
        let refused = parse(&[("v", &garbage)])
            .unsupported_version
            .expect("refused");
        assert!(
            refused.len() < 123,
            "a close reason fits in 123 bytes: {refused}"
        );
    }

    #[test]
    fn an_empty_token_is_no_token() {
        assert!(parse(&[("token", "")]).token.is_none());
        let parsed = parse(&[("token", "abc")]);
        assert_eq!(
            parsed
                .token
                .as_ref()
                .map(signalbox_protocol::Secret::expose),
            Some("abc")
        );
        assert!(
            !format!("{parsed:?}").contains("abc"),
            "the upgrade's ?token= never prints"
        );
    }
}
