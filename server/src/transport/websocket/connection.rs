//! One socket's life from upgrade to close, in one task: reading frames, writing what the hub
//! queues for the connection, pings and the liveness deadline.
//!
//! Order of events: refuse an unsupported `?v=` (close 4000); register with the hub and queue
//! `connected`; check a `?token=` (a bad one: `AUTH_INVALID`/`AUTH_EXPIRED`, close 4001); then
//! serve until the client leaves, the heartbeat times out (4002), a frame is too large (1009),
//! the rate limit is abused (1008), a handler ends the connection (4001), the hub closes it
//! (4008 slow consumer, 1001 shutdown), or a write fails or times out. The hub forgets the
//! connection last, which sends `user_left` where this was the user's last connection.
//!
//! One task does everything ([`serve`] selects over the socket, the hub's outbound queue and
//! one timer): a second task per connection would cost its own allocation, a lock around the
//! split socket and a cross-task wake-up, and an idle connection would hold two futures. While
//! a handler waits (on the database, say), frames queued for the connection are still written
//! ([`dispatch`]).
//!
//! Per frame: any frame refreshes liveness ([`Heartbeat`]); a text frame costs one rate-limit
//! token, is parsed by the protocol crate and handed to [`handlers::dispatch`]. Binary frames
//! are refused with `INVALID_MESSAGE`; the connection stays open for every per-envelope error.
//! Outgoing frames are written in batches: everything queued (up to [`writer::BATCH`]) is
//! encoded by [`writer::write_frames`] into a buffer of its own and flushed once.
//!
//! Protocol violations close by the book (RFC 6455 §7.1.7): a frame tungstenite refuses (reserved
//! bits or opcodes, a fragmented or oversized control frame, a stray continuation, an unmasked
//! frame, a malformed close frame) closes with 1002, invalid UTF-8 with 1007, a frame over the
//! cap with 1009. The close frame goes out first; then, since the rest of the input can no longer
//! be parsed, the raw bytes are read and discarded ([`drain`], bounded in time and bytes) until
//! the client closes or goes quiet, so the client sees the close code instead of a reset.
//!
//! Never: parses JSON itself, holds a frame beyond the batch being written, or waits on a write
//! for longer than `realtime.writeTimeoutMs`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::Either;
use futures_util::future::FutureExt;
use signalbox_protocol::ws::{Connected, parse_client_frame};
use signalbox_protocol::{
    ClientEnvelope, CloseCode, ErrorCode, PROTOCOL_VERSION, ServerEnvelope, TimestampMs,
};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::{self, Message};

use super::UpgradeRequest;
use super::handshake::WsStream;
use super::heartbeat::{Due, Heartbeat};
use super::writer::{self, BATCH};
use crate::app::AppState;
use crate::config::Realtime;
use crate::handlers::{self, Immediate, Refusal, Session};
use crate::hub::OutboundReceiver;
use crate::ice;
use crate::transport::connection_gate::ConnectionPermit;
use crate::transport::metrics::TransportMetrics;
use crate::transport::rate_limit::TokenBucket;

/// What ended the connection's loop.
enum End {
    /// The server decided to close with this code; what is queued goes out first.
    Close(CloseCode),
    /// The input broke the protocol (or a frame was over the cap): close with this code, then
    /// drain instead of reading frames.
    Violation(CloseCode),
    /// The client sent a close frame.
    ClientClosed,
    /// The hub asked for a close (4008, 1001) and the close frame was sent.
    HubClosed,
    /// The stream ended or failed, or a write failed or timed out.
    Gone,
}

/// Serves one upgraded socket until it closes. `permit` holds the connection's slot.
///
/// Not an `async fn`, on purpose: an `async fn` keeps each argument twice in its future (the
/// argument and the local it is moved into), and this future is most of what an idle
/// connection costs. Everything before the first wait (the version check, registering with the
/// hub, `connected`, the `?token=` check) runs here, synchronously; the futures returned keep
/// only what the connection's life needs, each once ([`serve_connection`]).
pub fn run(
    state: Arc<AppState>,
    socket: WsStream,
    permit: ConnectionPermit,
    request: UpgradeRequest,
) -> impl Future<Output = ()> + Send + 'static {
    let UpgradeRequest {
        token,
        unsupported_version,
        remote_ip,
    } = request;
    let write_timeout = Duration::from_millis(state.config.variables.realtime.write_timeout_ms);
    if let Some(reason) = unsupported_version {
        state.transport_metrics.close(CloseCode::UnsupportedVersion);
        return Either::Left(refuse_version(socket, reason, write_timeout, permit));
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
    session.remote_ip = remote_ip;
    session.send(&ServerEnvelope::Connected(connected));
    let mut end = None;
    if let Some(token) = &token {
        match state.auth.check(token.expose()) {
            Ok(caller) => session.upgrade_caller = Some(caller),
            Err(e) => {
                let refusal = Refusal::auth(&e, "?token=: ");
                session.send(&refusal.to_event(None));
                end = refusal.close.map(End::Close);
            }
        }
    }
    Either::Right(serve_connection(session, socket, outbound, end, permit))
}

/// Closes a socket that asked for a protocol major this server does not speak (4000).
async fn refuse_version(
    mut socket: WsStream,
    reason: String,
    write_timeout: Duration,
    permit: ConnectionPermit,
) {
    writer::close_now(
        &mut socket,
        CloseCode::UnsupportedVersion,
        reason,
        write_timeout,
    )
    .await;
    drop(permit);
}

/// The connection's life after the opening (see [`run`]): [`serve`] unless the opening already
/// decided to close (`end`), then the close. Written as an `async move` block over its
/// captures, so each is stored once. What only the close needs (flushing the queue, draining a
/// violation) is boxed when it runs, so an idle connection does not carry room for it.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store every argument twice in the connection's future"
)]
fn serve_connection(
    mut session: Session,
    mut socket: WsStream,
    mut outbound: OutboundReceiver,
    end: Option<End>,
    permit: ConnectionPermit,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let end = match end {
            Some(end) => end,
            None => serve(&mut session, &mut socket, &mut outbound).await,
        };
        let state = Arc::clone(&session.state);
        let write_timeout = Duration::from_millis(state.config.variables.realtime.write_timeout_ms);
        let metrics = &state.transport_metrics;
        match end {
            End::Close(code) | End::Violation(code) => {
                session.conn.close(code);
                // Leave the hub at once (`user_left` where due, forwards now
                // `TARGET_NOT_FOUND`); the queue keeps its frames and the close code still to be
                // sent.
                drop(session);
                let closed = Box::pin(tokio::time::timeout(
                    write_timeout * 2,
                    flush_and_close(&mut socket, &mut outbound, metrics, write_timeout),
                ))
                .await;
                drop(outbound);
                if closed == Ok(true) {
                    if matches!(end, End::Violation(_)) {
                        Box::pin(drain(socket, write_timeout)).await;
                    } else {
                        await_close_reply(&mut socket, write_timeout).await;
                    }
                }
            }
            End::ClientClosed => {
                drop(session);
                drop(outbound);
                // tungstenite queued the reply to the client's close frame; reading once more
                // flushes it, so the client sees a clean close instead of 1006.
                let _ = tokio::time::timeout(write_timeout, socket.next()).await;
            }
            End::HubClosed => {
                drop(session);
                drop(outbound);
                // The close the hub asked for (4008, 1001) was sent: finish the closing
                // handshake.
                await_close_reply(&mut socket, write_timeout).await;
            }
            End::Gone => drop(session),
        }
        drop(permit);
    }
}

/// The connection's loop: whichever comes first of a frame from the client, frames queued by
/// the hub, or the heartbeat timer.
///
/// Only what every connection needs between frames lives in this future (the heartbeat and its
/// one timer, the rate limiter, the select over the three sources, and the batch write, whose
/// rare slow path is boxed: [`writer`]). A frame is taken apart synchronously
/// ([`read_frame`]), and the rare waits (a handler that waits, a ping, the close frame) are
/// boxed when they happen: sized in here they would be part of every idle connection.
async fn serve(
    session: &mut Session,
    socket: &mut WsStream,
    outbound: &mut OutboundReceiver,
) -> End {
    let state = Arc::clone(&session.state);
    let realtime = &state.config.variables.realtime;
    let metrics = &state.transport_metrics;
    let write_timeout = Duration::from_millis(realtime.write_timeout_ms);
    let mut heartbeat = Heartbeat::new(
        Instant::now(),
        Duration::from_millis(realtime.heartbeat_interval_ms),
        Duration::from_millis(realtime.heartbeat_timeout_ms),
    );
    let timer = sleep_until(heartbeat.next_wake());
    tokio::pin!(timer);
    let mut limiter = FrameLimiter::new(realtime, std::time::Instant::now());
    let mut batch = Vec::new();
    loop {
        let message = tokio::select! {
            close = outbound.recv_many(&mut batch, BATCH) => {
                if let Some(code) = close {
                    Box::pin(send_close(socket, code, metrics, write_timeout)).await;
                    return End::HubClosed;
                }
                if !writer::write_frames(socket, &mut batch, write_timeout).await {
                    return End::Gone;
                }
                continue;
            }
            () = &mut timer => {
                match heartbeat.due(Instant::now()) {
                    Due::TimedOut => return End::Close(CloseCode::HeartbeatTimeout),
                    Due::Ping => {
                        if !Box::pin(writer::ping(socket, write_timeout)).await {
                            return End::Gone;
                        }
                    }
                    Due::Nothing => {}
                }
                timer.as_mut().reset(heartbeat.next_wake());
                continue;
            }
            next = socket.next() => match next {
                None => return End::Gone,
                Some(Err(e)) => return read_error(&e),
                Some(Ok(message)) => message,
            },
        };
        // One clock read per read batch: the frames the socket already has (up to
        // `READ_BATCH`) are taken without going back to the select, all stamped with the
        // batch's `now` (they arrived together; the limiter and the heartbeat see the same
        // instants they would have, give or take the microseconds the batch takes).
        let now = Instant::now();
        heartbeat.seen(now);
        let mut message = message;
        let mut taken = 1;
        loop {
            match read_frame(session, &mut limiter, realtime, message, now.into_std()) {
                Read::Next => {}
                Read::End(end) => return end,
                Read::Wait(envelope) => {
                    let dispatched =
                        Box::pin(dispatch(session, envelope, socket, outbound, write_timeout))
                            .await;
                    match dispatched {
                        Dispatched::Continue => break,
                        Dispatched::Close(code) => return End::Close(code),
                        Dispatched::SocketGone => return End::Gone,
                    }
                }
            }
            if taken == READ_BATCH {
                break;
            }
            message = match socket.next().now_or_never() {
                None => break,
                Some(None) => return End::Gone,
                Some(Some(Err(e))) => return read_error(&e),
                Some(Some(Ok(message))) => message,
            };
            taken += 1;
        }
    }
}

/// Frames read back to back (see [`serve`]) before the connection's queue and timer get their
/// turn again.
const READ_BATCH: usize = 32;

/// What became of one frame read from the client.
enum Read {
    /// Handled (or refused, or ignored): read the next one.
    Next,
    /// The connection ends.
    End(End),
    /// An envelope whose handler may wait: run it with [`dispatch`].
    Wait(ClientEnvelope),
}

/// One frame from the client, up to its handler, without waiting: the rate limit (a token per
/// text or binary frame), binary frames refused, the size cap, parsing, and the handlers that
/// never wait ([`handlers::dispatch_now`]).
fn read_frame(
    session: &mut Session,
    limiter: &mut FrameLimiter,
    realtime: &Realtime,
    message: Message,
    now: std::time::Instant,
) -> Read {
    let text = match &message {
        Message::Text(text) => text.as_str(),
        Message::Binary(_) => "",
        Message::Close(_) => return Read::End(End::ClientClosed),
        // Pings and pongs only refresh liveness (tungstenite answers pings itself).
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Read::Next,
    };
    match limiter.admit(now) {
        Admit::Yes => {}
        Admit::RefuseQuietly => return Read::Next,
        Admit::Refuse => {
            let refusal = Refusal::new(
                ErrorCode::RateLimited,
                format!(
                    "more than {} envelopes per second; slow down or the connection closes",
                    realtime.rate_limit_refill_per_sec
                ),
            );
            session.send(&refusal.to_event(None));
            return Read::Next;
        }
        Admit::Close => return Read::End(End::Close(CloseCode::PolicyViolation)),
    }
    if matches!(message, Message::Binary(_)) {
        let refusal = Refusal::invalid("binary frames are not supported; send JSON text frames");
        session.send(&refusal.to_event(None));
        return Read::Next;
    }
    if text.len() > realtime.max_frame_bytes {
        return Read::End(End::Violation(CloseCode::MessageTooBig));
    }
    let envelope = match parse_client_frame(text) {
        Ok(envelope) => envelope,
        Err(e) => {
            session.send(&ServerEnvelope::Error(e.to_event()));
            return Read::Next;
        }
    };
    drop(message);
    session
        .state
        .transport_metrics
        .envelope_in(envelope.wire_type());
    session.received_at = now;
    match handlers::dispatch_now(session, envelope) {
        Immediate::Done(None) => Read::Next,
        Immediate::Done(Some(code)) => Read::End(End::Close(code)),
        Immediate::Wait(envelope) => Read::Wait(envelope),
    }
}

/// What became of one envelope handed to the handlers.
enum Dispatched {
    /// Keep serving.
    Continue,
    /// The handler ends the connection with this code.
    Close(CloseCode),
    /// A write failed while the handler ran.
    SocketGone,
}

/// Runs the handler for `envelope` while still writing what the hub queues for this connection:
/// a handler that waits (on the database, say) must not let the connection's own queue fill up
/// and close it as a slow consumer. A close requested meanwhile is left in the queue for
/// [`serve`] to send once the handler is done. Only envelopes whose handlers may wait come here
/// ([`handlers::dispatch_now`] ran the rest), and [`serve`] boxes this future while it runs.
async fn dispatch(
    session: &mut Session,
    envelope: ClientEnvelope,
    socket: &mut WsStream,
    outbound: &mut OutboundReceiver,
    write_timeout: Duration,
) -> Dispatched {
    let handled = handlers::dispatch(session, envelope);
    tokio::pin!(handled);
    let mut writing = true;
    let mut socket_ok = true;
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            biased;
            close = &mut handled => {
                return match close {
                    _ if !socket_ok => Dispatched::SocketGone,
                    Some(code) => Dispatched::Close(code),
                    None => Dispatched::Continue,
                };
            }
            close = outbound.recv_many(&mut batch, BATCH), if writing => {
                if close.is_some() {
                    writing = false;
                } else if !writer::write_frames(socket, &mut batch, write_timeout).await {
                    writing = false;
                    socket_ok = false;
                }
            }
        }
    }
}

/// After the server decided to close: writes what is still queued, then the close frame the
/// queue ends with. `false` when the socket failed before the close frame could be attempted.
async fn flush_and_close(
    socket: &mut WsStream,
    outbound: &mut OutboundReceiver,
    metrics: &TransportMetrics,
    write_timeout: Duration,
) -> bool {
    let mut batch = Vec::new();
    loop {
        if let Some(code) = outbound.recv_many(&mut batch, BATCH).await {
            send_close(socket, code, metrics, write_timeout).await;
            return true;
        }
        if !writer::write_frames(socket, &mut batch, write_timeout).await {
            return false;
        }
    }
}

/// Counts and sends the close frame for `code`.
async fn send_close(
    socket: &mut WsStream,
    code: CloseCode,
    metrics: &TransportMetrics,
    write_timeout: Duration,
) {
    metrics.close(code);
    writer::close_now(socket, code, code.reason().to_owned(), write_timeout).await;
}

/// Whether a frame from the client may be handled under its rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admit {
    /// Handle it.
    Yes,
    /// Drop it and answer `RATE_LIMITED`.
    Refuse,
    /// Drop it; `RATE_LIMITED` was answered less than a second ago.
    RefuseQuietly,
    /// Too many strikes: close with 1008.
    Close,
}

/// One connection's rate limit: a token per text or binary frame, strikes for frames over the
/// limit, and at most one `RATE_LIMITED` answer per second.
struct FrameLimiter {
    bucket: TokenBucket,
    strikes: u32,
    strikes_before_close: u32,
    last_refusal: Option<std::time::Instant>,
}

impl FrameLimiter {
    fn new(realtime: &Realtime, now: std::time::Instant) -> Self {
        Self {
            bucket: TokenBucket::new(realtime.rate_limit(), now),
            strikes: 0,
            strikes_before_close: realtime.rate_limit_strikes_before_close,
            last_refusal: None,
        }
    }

    fn admit(&mut self, now: std::time::Instant) -> Admit {
        if self.bucket.try_take(now) {
            // Strikes decay instead of resetting, so a sender that gets one frame in now and
            // then through the bucket while flooding still reaches the close.
            self.strikes = self.strikes.saturating_sub(1);
            return Admit::Yes;
        }
        self.strikes += 1;
        if self.strikes >= self.strikes_before_close {
            return Admit::Close;
        }
        // One `RATE_LIMITED` per second at most: a flood is not answered frame by frame.
        if self
            .last_refusal
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            self.last_refusal = Some(now);
            Admit::Refuse
        } else {
            Admit::RefuseQuietly
        }
    }
}

/// The closing handshake: after our close frame, read (and discard) until the client's close
/// frame or the end of the stream, for at most `limit`. Dropping the socket at once would reset
/// a client that still had frames in flight, and it would never see our close code.
async fn await_close_reply(socket: &mut WsStream, limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        while let Some(Ok(message)) = socket.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// A read error: a frame over the size cap closes with 1009, a protocol violation with 1002,
/// invalid UTF-8 with 1007; anything else (I/O, a reset) means the socket is unusable.
fn read_error(e: &tungstenite::Error) -> End {
    match violation_code(e) {
        Some(code) => End::Violation(code),
        None => End::Gone,
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
pub async fn echo(mut socket: WsStream, write_timeout: Duration) {
    use futures_util::SinkExt;
    loop {
        let message = match socket.next().await {
            None => return,
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                if let End::Violation(code) = read_error(&e) {
                    let reason = code.reason().to_owned();
                    writer::close_now(&mut socket, code, reason, write_timeout).await;
                    drain(socket, write_timeout).await;
                }
                return;
            }
        };
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            Message::Close(_) => {
                // tungstenite queued the close reply; one more read flushes it.
                let _ = tokio::time::timeout(write_timeout, socket.next()).await;
                return;
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        if tokio::time::timeout(write_timeout, socket.send(reply))
            .await
            .map_or(true, |r| r.is_err())
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realtime(burst: u32, strikes: u32) -> Realtime {
        Realtime {
            rate_limit_burst: burst,
            rate_limit_refill_per_sec: 1,
            rate_limit_strikes_before_close: strikes,
            ..Realtime::default()
        }
    }

    /// Size of the future `f` returns, without calling it.
    fn returned_size<F, A, B, C, D, R>(_f: F) -> usize
    where
        F: FnOnce(A, B, C, D) -> R,
    {
        std::mem::size_of::<R>()
    }

    #[test]
    fn a_connection_future_stays_small() {
        // Most of an idle connection's memory is this future (BENCHMARKS.md, issue 14): it was
        // 2,728 bytes in a release build before its waits were boxed and its captures stored
        // once. Debug builds lay it out less tightly, hence the margin.
        let size = returned_size(run);
        eprintln!("connection future: {size} bytes");
        assert!(size <= 1600, "the connection future grew to {size} bytes");
    }

    #[test]
    fn the_limiter_answers_once_a_second_then_closes_after_the_strikes() {
        let start = std::time::Instant::now();
        let mut limiter = FrameLimiter::new(&realtime(2, 4), start);
        assert_eq!(limiter.admit(start), Admit::Yes);
        assert_eq!(limiter.admit(start), Admit::Yes);
        assert_eq!(limiter.admit(start), Admit::Refuse);
        assert_eq!(limiter.admit(start), Admit::RefuseQuietly);
        assert_eq!(limiter.admit(start), Admit::RefuseQuietly);
        assert_eq!(limiter.admit(start), Admit::Close);
    }

    #[test]
    fn strikes_decay_with_every_admitted_frame() {
        let start = std::time::Instant::now();
        let mut limiter = FrameLimiter::new(&realtime(1, 3), start);
        assert_eq!(limiter.admit(start), Admit::Yes);
        assert_eq!(limiter.admit(start), Admit::Refuse);
        let later = start + Duration::from_millis(1500);
        assert_eq!(limiter.admit(later), Admit::Yes, "one token refilled");
        assert_eq!(
            limiter.admit(later),
            Admit::Refuse,
            "a second since the last answer"
        );
        assert_eq!(limiter.admit(later), Admit::RefuseQuietly);
        assert_eq!(limiter.admit(later), Admit::Close);
    }
}
