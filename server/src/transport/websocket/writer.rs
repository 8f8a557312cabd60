//! Writing to one socket: a batch of the hub's frames encoded here and flushed once, heartbeat
//! pings, and close frames (those two through tungstenite).
//!
//! Every socket operation (one frame fed, one flush, a ping, a close frame) is bounded by
//! `realtime.writeTimeoutMs`: a peer that stops reading cannot pin its connection (its queue
//! overflows and the hub closes it with 4008; if even the close frame cannot be written in time,
//! the socket is simply dropped). An operation that completes at once, as most do, never arms a
//! timer ([`bounded`]).
//!
//! Never reads from the socket or decides when a connection closes ([`super::connection`]
//! does both); never holds frames, or a buffer, beyond the batch it was handed: data frames
//! never enter tungstenite's write buffer, which would keep the capacity of the largest batch.

use std::task::Poll;
use std::time::Duration;

use futures_util::{Sink, SinkExt};
use signalbox_protocol::CloseCode;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::WRITE_BUFFER_BYTES;
use crate::hub::Frame;

/// Most frames taken from the outbound queue for one socket flush.
pub const BATCH: usize = 64;

/// Payloads up to this size are copied into the batch's gather buffer; larger ones are written
/// straight from the frame's shared bytes after the buffer (no copy at all).
pub const GATHER_PAYLOAD_BYTES: usize = 4 * 1024;

/// Writes every frame of `batch` as a text frame, gathered into as few socket writes as fit in
/// [`super::WRITE_BUFFER_BYTES`], and flushes once; `false` when the socket failed or one
/// operation took longer than `limit`. `batch` is left empty either way.
///
/// The frames are encoded here rather than fed to tungstenite, whose write buffer would keep the
/// capacity of the largest batch it ever wrote (a big `server_users` roster) for the rest of the
/// connection's life. The gather buffer belongs to this call and is freed when it returns, so
/// an idle connection holds no write buffer. What tungstenite still has queued (a pong, say) is
/// flushed first, so frames never interleave. Server frames are unmasked and need no state.
pub async fn write_frames<S>(
    socket: &mut WebSocketStream<S>,
    batch: &mut Vec<Frame>,
    limit: Duration,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let written = bounded(limit, socket.flush())
        .await
        .is_some_and(|r| r.is_ok())
        && write_encoded(socket.get_mut(), batch, limit).await;
    batch.clear();
    written
}

/// Encodes `batch` onto `io` (see [`write_frames`]) and flushes it.
async fn write_encoded<W>(io: &mut W, batch: &mut Vec<Frame>, limit: Duration) -> bool
where
    W: AsyncWrite + Unpin,
{
    let wanted: usize = batch
        .iter()
        .map(|f| MAX_HEADER_BYTES + f.len().min(GATHER_PAYLOAD_BYTES))
        .sum();
    let mut gathered = Vec::with_capacity(wanted.min(WRITE_BUFFER_BYTES + GATHER_PAYLOAD_BYTES));
    for frame in batch.drain(..) {
        let payload = frame.as_str().as_bytes();
        push_text_header(&mut gathered, payload.len());
        if payload.len() <= GATHER_PAYLOAD_BYTES {
            gathered.extend_from_slice(payload);
            if gathered.len() < WRITE_BUFFER_BYTES {
                continue;
            }
            if !write_all(io, &gathered, limit).await {
                return false;
            }
        } else if !(write_all(io, &gathered, limit).await && write_all(io, payload, limit).await) {
            return false;
        }
        gathered.clear();
    }
    write_all(io, &gathered, limit).await
        && bounded(limit, io.flush()).await.is_some_and(|r| r.is_ok())
}

async fn write_all<W: AsyncWrite + Unpin>(io: &mut W, bytes: &[u8], limit: Duration) -> bool {
    bytes.is_empty()
        || bounded(limit, io.write_all(bytes))
            .await
            .is_some_and(|r| r.is_ok())
}

/// Longest header of a server frame: the first byte, the length byte and a 64-bit length.
const MAX_HEADER_BYTES: usize = 10;

/// Appends the header of an unfragmented, unmasked text frame of `len` payload bytes
/// (RFC 6455, section 5.2).
fn push_text_header(out: &mut Vec<u8>, len: usize) {
    const FIN_TEXT: u8 = 0x80 | 0x1;
    out.push(FIN_TEXT);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// Sends a heartbeat ping; `false` when the socket failed or the write took longer than `limit`.
pub async fn ping<S>(socket: &mut S, limit: Duration) -> bool
where
    S: Sink<Message> + Unpin,
{
    let ping = socket.send(Message::Ping(Default::default()));
    matches!(bounded(limit, ping).await, Some(Ok(())))
}

/// Runs `operation` for at most `limit`; `None` when it took longer. It is polled once first,
/// and only an operation that has to wait (a full socket) arms a timer: writes that complete
/// at once cost no timer registration. The timer is boxed, for the same reason: held inline it
/// would be part of every connection's future (it is ~100 bytes, and there is one per nested
/// write), though almost no write ever needs it.
async fn bounded<F: Future>(limit: Duration, operation: F) -> Option<F::Output> {
    let mut operation = std::pin::pin!(operation);
    let first = std::future::poll_fn(|cx| match operation.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    match first {
        Some(output) => Some(output),
        None => Box::pin(timeout(limit, operation)).await.ok(),
    }
}

/// Sends a close frame with `code` and `reason`, waiting at most `limit`; whether it went out
/// changes nothing for the caller (the connection ends either way).
pub async fn close_now<S>(socket: &mut S, code: CloseCode, reason: String, limit: Duration)
where
    S: Sink<Message> + Unpin,
{
    let _ = bounded(limit, socket.send(close_message(code, reason))).await;
}

fn close_message(code: CloseCode, reason: String) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.code().into(),
        reason: reason.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server socket and a client socket over an in-memory pipe.
    async fn pair() -> (
        WebSocketStream<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        use tokio_tungstenite::tungstenite::protocol::Role;
        let (server, client) = tokio::io::duplex(1024 * 1024);
        let server = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        (server, client)
    }

    #[tokio::test]
    async fn frames_of_every_length_class_reach_a_client_intact_and_in_order() {
        use futures_util::StreamExt;
        let (mut server, mut client) = pair().await;
        // Each side of the 7-bit, 16-bit and 64-bit lengths, the gather limit, and enough small
        // frames to fill the gather buffer more than once.
        let mut lengths = vec![0, 1, 125, 126, 127, 0xFFFF, 0x1_0000, 300_000];
        lengths.extend([GATHER_PAYLOAD_BYTES, GATHER_PAYLOAD_BYTES + 1]);
        lengths.extend(std::iter::repeat_n(300, 2 * WRITE_BUFFER_BYTES / 300));
        let texts: Vec<String> = lengths
            .iter()
            .enumerate()
            .map(|(i, len)| {
                let digit = char::from(b'a' + (i % 26) as u8);
                std::iter::repeat_n(digit, *len).collect()
            })
            .collect();
        let mut batch: Vec<Frame> = texts.iter().cloned().map(Frame::from_text).collect();
        let limit = Duration::from_secs(5);
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            while received.len() < lengths.len() {
                match client.next().await {
                    Some(Ok(Message::Text(text))) => received.push(text.as_str().to_owned()),
                    other => panic!("expected a text frame, got {other:?}"),
                }
            }
            received
        });
        assert!(write_frames(&mut server, &mut batch, limit).await);
        assert!(batch.is_empty());
        assert_eq!(reader.await.expect("reader"), texts);
    }

    #[tokio::test]
    async fn a_pong_tungstenite_still_holds_goes_out_before_the_frames() {
        use futures_util::StreamExt;
        let (mut server, mut client) = pair().await;
        client
            .send(Message::Ping(b"p".to_vec().into()))
            .await
            .expect("ping");
        client
            .send(Message::Text("after".into()))
            .await
            .expect("text");
        // Reading the ping queues the pong; reading the text frame may or may not write it.
        assert!(matches!(server.next().await, Some(Ok(Message::Ping(_)))));
        assert!(matches!(server.next().await, Some(Ok(Message::Text(_)))));
        let mut batch = vec![Frame::from_text("one".to_owned())];
        assert!(write_frames(&mut server, &mut batch, Duration::from_secs(5)).await);
        assert!(matches!(client.next().await, Some(Ok(Message::Pong(p))) if p.as_ref() == b"p"));
        assert!(matches!(client.next().await, Some(Ok(Message::Text(t))) if t.as_str() == "one"));
    }

    #[tokio::test]
    async fn a_ready_or_waking_operation_completes_and_one_that_never_does_is_cut_off() {
        let limit = Duration::from_millis(20);
        assert_eq!(bounded(limit, async { 7 }).await, Some(7));
        let after_a_yield = async {
            tokio::task::yield_now().await;
            8
        };
        assert_eq!(bounded(limit, after_a_yield).await, Some(8));
        assert_eq!(bounded(limit, std::future::pending::<()>()).await, None);
    }
}
