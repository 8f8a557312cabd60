//! The reading half of one socket, and the connection's life from upgrade to close.
//!
//! Order of events: refuse an unsupported `?v=` (close 4000); register with the hub and queue
//! `connected`; check a `?token=` (a bad one: `AUTH_INVALID`/`AUTH_EXPIRED`, close 4001); then
//! read frames until the client leaves, the heartbeat times out (4002), a frame is too large
//! (1009), the rate limit is abused (1008), a handler ends the connection (4001), the hub closes
//! it (4008 slow consumer, 1001 shutdown), or the writer loses the socket. The hub forgets the
//! connection last, which sends `user_left` where this was the user's last connection.
//!
//! Per frame: any frame refreshes liveness; a text frame costs one rate-limit token, is parsed
//! by the protocol crate and handed to [`handlers::dispatch`]. Binary frames are refused with
//! `INVALID_MESSAGE`; the connection stays open for every per-envelope error.
//!
//! Protocol violations close by the book (RFC 6455 §7.1.7): a frame tungstenite refuses (reserved
//! bits or opcodes, a fragmented or oversized control frame, a stray continuation, an unmasked
//! frame, a malformed close frame) closes with 1002, invalid UTF-8 with 1007, a frame over the
//! cap with 1009. The close frame goes out first; then, since the rest of the input can no longer
//! be parsed, the raw bytes are read and discarded ([`drain`], bounded in time and bytes) until
//! the client closes or goes quiet, so the client sees the close code instead of a reset.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use signalbox_protocol::ws::{Connected, parse_client_frame};
use signalbox_protocol::{CloseCode, ErrorCode, PROTOCOL_VERSION, ServerEnvelope, TimestampMs};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::{self, Message};

use super::UpgradeRequest;
use super::handshake::WsStream;
use super::writer::{self, WriterSettings};
use crate::app::AppState;
use crate::handlers::{self, Refusal, Session};
use crate::ice;
use crate::transport::connection_gate::ConnectionPermit;
use crate::transport::rate_limit::TokenBucket;

/// The writing half of a socket.
type WsSink = futures_util::stream::SplitSink<WsStream, Message>;

/// What ended the read loop.
enum ReadEnd {
    /// The server decided to close with this code.
    Close(CloseCode),
    /// The input broke the protocol (or a frame was over the cap): close with this code, then
    /// drain instead of reading frames.
    Violation(CloseCode),
    /// The client sent a close frame.
    ClientClosed,
    /// The writer stopped: it sent the close the hub asked for, or lost the socket.
    WriterEnded(Option<writer::WriterEnd>),
    /// The stream ended or failed.
    Gone,
}

/// Serves one upgraded socket until it closes. `_permit` holds the connection's slot.
pub async fn run(
    state: Arc<AppState>,
    socket: WsStream,
    _permit: ConnectionPermit,
    request: UpgradeRequest,
) {
    let realtime = state.config.variables.realtime.clone();
    let write_timeout = Duration::from_millis(realtime.write_timeout_ms);
    let (mut sink, mut stream) = socket.split();
    if let Some(reason) = request.unsupported_version {
        state.transport_metrics.close(CloseCode::UnsupportedVersion);
        writer::close_now(
            &mut sink,
            CloseCode::UnsupportedVersion,
            reason,
            write_timeout,
        )
        .await;
        return;
    }

    let (conn, outbound) = state.hub.connect();
    // An upgrade that passed the draining check just before `close_all` ran must still get 1001.
    if state.is_draining() {
        conn.close(CloseCode::GoingAway);
    }
    let connected = Connected {
        connection_id: conn.connection_id().clone(),
        server_time: TimestampMs::now(),
        protocol_version: PROTOCOL_VERSION.to_owned(),
        ice_servers: ice::ice_servers(
            &state.config.variables,
            conn.connection_id().as_str(),
            TimestampMs::now(),
        ),
    };
    let mut session = Session::new(Arc::clone(&state), conn, None);
    session.remote_ip = request.remote_ip;
    session.send(&ServerEnvelope::Connected(connected));
    let mut read_end = None;
    if let Some(token) = &request.token {
        match state.auth.check(token.expose()) {
            Ok(caller) => session.upgrade_caller = Some(caller),
            Err(e) => {
                let refusal = Refusal::auth(&e, "?token=: ");
                session.send(&refusal.to_event(None));
                read_end = refusal.close.map(ReadEnd::Close);
            }
        }
    }

    let settings = WriterSettings {
        ping_every: Duration::from_millis(realtime.heartbeat_interval_ms),
        write_timeout,
    };
    let writer_state = Arc::clone(&state);
    let mut writer = tokio::spawn(async move {
        writer::run(sink, outbound, settings, &writer_state.transport_metrics).await
    });

    let end = match read_end {
        Some(end) => end,
        None => read_loop(&mut session, &mut stream, &mut writer, &realtime).await,
    };
    match end {
        ReadEnd::Close(code) | ReadEnd::Violation(code) => {
            session.conn.close(code);
            // Leave the hub at once (`user_left` where due, forwards now `TARGET_NOT_FOUND`);
            // the writer keeps the queue and the close code it still has to send.
            drop(session);
            // Let the writer flush what is queued and the close frame, within its own bounds.
            let sent = tokio::time::timeout(write_timeout * 2, &mut writer).await;
            writer.abort();
            if let Ok(Ok((writer::WriterEnd::Closed(_), sink))) = sent {
                if matches!(end, ReadEnd::Violation(_)) {
                    if let Ok(socket) = sink.reunite(stream) {
                        drain(socket, write_timeout).await;
                    }
                } else {
                    await_close_reply(&mut stream, write_timeout).await;
                }
            }
        }
        ReadEnd::ClientClosed => {
            drop(session);
            writer.abort();
            // tungstenite queued the reply to the client's close frame; reading once more
            // flushes it, so the client sees a clean close instead of 1006.
            let _ = tokio::time::timeout(write_timeout, stream.next()).await;
        }
        ReadEnd::WriterEnded(ended) => {
            drop(session);
            // A close the hub asked for (4008, 1001) was sent: finish the closing handshake.
            if matches!(ended, Some(writer::WriterEnd::Closed(_))) {
                await_close_reply(&mut stream, write_timeout).await;
            }
        }
        ReadEnd::Gone => {
            drop(session);
            writer.abort();
        }
    }
}

/// The closing handshake: after our close frame, read (and discard) until the client's close
/// frame or the end of the stream, for at most `limit`. Dropping the socket at once would reset
/// a client that still had frames in flight, and it would never see our close code.
async fn await_close_reply(stream: &mut SplitStream<WsStream>, limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn read_loop(
    session: &mut Session,
    stream: &mut SplitStream<WsStream>,
    writer: &mut tokio::task::JoinHandle<(writer::WriterEnd, WsSink)>,
    realtime: &crate::config::Realtime,
) -> ReadEnd {
    let silence = Duration::from_millis(realtime.heartbeat_timeout_ms);
    let mut deadline = Instant::now() + silence;
    let mut bucket = TokenBucket::new(realtime.rate_limit(), std::time::Instant::now());
    let mut strikes = 0u32;
    let mut last_rate_limited: Option<std::time::Instant> = None;
    loop {
        let message = tokio::select! {
            ended = &mut *writer => return ReadEnd::WriterEnded(ended.ok().map(|(end, _)| end)),
            () = sleep_until(deadline) => return ReadEnd::Close(CloseCode::HeartbeatTimeout),
            next = stream.next() => match next {
                None => return ReadEnd::Gone,
                Some(Err(e)) => return read_error(&e),
                Some(Ok(message)) => message,
            },
        };
        deadline = Instant::now() + silence;
        let now = std::time::Instant::now();
        let counts = matches!(message, Message::Text(_) | Message::Binary(_));
        if counts && !bucket.try_take(now) {
            strikes += 1;
            if strikes >= realtime.rate_limit_strikes_before_close {
                return ReadEnd::Close(CloseCode::PolicyViolation);
            }
            // One `RATE_LIMITED` per second at most: a flood is not answered frame by frame.
            if last_rate_limited.is_none_or(|at: std::time::Instant| {
                now.duration_since(at) >= Duration::from_secs(1)
            }) {
                last_rate_limited = Some(now);
                let refusal = Refusal::new(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} envelopes per second; slow down or the connection closes",
                        realtime.rate_limit_refill_per_sec
                    ),
                );
                session.send(&refusal.to_event(None));
            }
            continue;
        }
        if counts {
            // Strikes decay instead of resetting, so a sender that gets one frame in now and
            // then through the bucket while flooding still reaches the close.
            strikes = strikes.saturating_sub(1);
        }
        let text = match &message {
            Message::Text(text) => text.as_str(),
            Message::Close(_) => return ReadEnd::ClientClosed,
            Message::Binary(_) => {
                let refusal =
                    Refusal::invalid("binary frames are not supported; send JSON text frames");
                session.send(&refusal.to_event(None));
                continue;
            }
            // Pings and pongs only refresh liveness (tungstenite answers pings itself).
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        if text.len() > realtime.max_frame_bytes {
            return ReadEnd::Violation(CloseCode::MessageTooBig);
        }
        let envelope = match parse_client_frame(text) {
            Ok(envelope) => envelope,
            Err(e) => {
                session.send(&ServerEnvelope::Error(e.to_event()));
                continue;
            }
        };
        session
            .state
            .transport_metrics
            .envelope_in(envelope.wire_type());
        session.received_at = now;
        if let Some(code) = handlers::dispatch(session, envelope).await {
            return ReadEnd::Close(code);
        }
    }
}

/// A read error: a frame over the size cap closes with 1009, a protocol violation with 1002,
/// invalid UTF-8 with 1007; anything else (I/O, a reset) means the socket is unusable.
fn read_error(e: &tungstenite::Error) -> ReadEnd {
    match violation_code(e) {
        Some(code) => ReadEnd::Violation(code),
        None => ReadEnd::Gone,
    }
}

/// The close code a read error calls for, if the client can still be told.
fn violation_code(e: &tungstenite::Error) -> Option<CloseCode> {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::Capacity(_) => Some(CloseCode::MessageTooBig),
        tungstenite::Error::Utf8(_) => Some(CloseCode::InvalidPayload),
        tungstenite::Error::Protocol(
            ProtocolError::ResetWithoutClosingHandshake | ProtocolError::SendAfterClosing,
        ) => None,
        tungstenite::Error::Protocol(_) => Some(CloseCode::ProtocolError),
        _ => None,
    }
}

/// Longest a drain after a violation reads, in bytes (the rest of an oversized upload).
pub const MAX_DRAIN_BYTES: usize = 64 * 1024 * 1024;
/// A drain ends once the client has sent nothing for this long.
const DRAIN_QUIET: Duration = Duration::from_millis(250);

/// After the close frame of a violation: tungstenite cannot parse the rest of the input (an
/// oversized frame's payload is still arriving), so read and discard raw bytes until the client
/// closes its side, goes quiet for [`DRAIN_QUIET`], `limit` passes or [`MAX_DRAIN_BYTES`] were
/// read; then close our side. Closing with unread input would send a reset, and the client would
/// never see the close code.
async fn drain(mut socket: WsStream, limit: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = socket.get_mut();
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0usize;
    loop {
        let until = deadline.min(Instant::now() + DRAIN_QUIET);
        match tokio::time::timeout_at(until, io.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                total += n;
                if total >= MAX_DRAIN_BYTES {
                    break;
                }
            }
            _ => break,
        }
    }
    let _ = tokio::time::timeout(DRAIN_QUIET, io.shutdown()).await;
}

/// The echo mode of the Autobahn compliance run (`SIGNALBOX_TEST_WS_ECHO`, see
/// [`super::routes`]): every text or binary message is sent back; violations close exactly as
/// on a real connection ([`read_error`], [`drain`]). Never touches the hub or the handlers.
pub async fn echo(socket: WsStream, write_timeout: Duration) {
    use futures_util::SinkExt;
    let (mut sink, mut stream) = socket.split();
    loop {
        let message = match stream.next().await {
            None => return,
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                if let ReadEnd::Violation(code) = read_error(&e) {
                    let reason = code.reason().to_owned();
                    writer::close_now(&mut sink, code, reason, write_timeout).await;
                    if let Ok(socket) = sink.reunite(stream) {
                        drain(socket, write_timeout).await;
                    }
                }
                return;
            }
        };
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            Message::Close(_) => {
                // tungstenite queued the close reply; one more read flushes it.
                let _ = tokio::time::timeout(write_timeout, stream.next()).await;
                return;
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        if tokio::time::timeout(write_timeout, sink.send(reply))
            .await
            .map_or(true, |r| r.is_err())
        {
            return;
        }
    }
}
