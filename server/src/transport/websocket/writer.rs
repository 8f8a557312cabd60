//! Writing to one socket: a batch of the hub's frames fed to tungstenite and flushed once,
//! heartbeat pings, and close frames.
//!
//! Every socket operation (one frame fed, one flush, a ping, a close frame) is bounded by
//! `realtime.writeTimeoutMs`: a peer that stops reading cannot pin its connection (its queue
//! overflows and the hub closes it with 4008; if even the close frame cannot be written in time,
//! the socket is simply dropped). An operation that completes at once, as most do, never arms a
//! timer ([`bounded`]).
//!
//! Never reads from the socket or decides when a connection closes ([`super::connection`]
//! does both); never holds frames beyond the batch it was handed.

use std::task::Poll;
use std::time::Duration;

use futures_util::{Sink, SinkExt};
use signalbox_protocol::CloseCode;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::hub::Frame;

/// Most frames taken from the outbound queue for one socket flush.
pub const BATCH: usize = 64;

/// Feeds every frame of `batch` to the socket (tungstenite gathers them in its write buffer)
/// and flushes once; `false` when the socket failed or one operation took longer than `limit`.
/// `batch` is left empty either way.
pub async fn write_frames<S>(socket: &mut S, batch: &mut Vec<Frame>, limit: Duration) -> bool
where
    S: Sink<Message> + Unpin,
{
    let mut written = true;
    for frame in batch.drain(..) {
        // The frame's bytes are shared, not copied, with every recipient.
        let message = Message::Text(frame.to_text());
        if !matches!(bounded(limit, socket.feed(message)).await, Some(Ok(()))) {
            written = false;
            break;
        }
    }
    batch.clear();
    written && matches!(bounded(limit, socket.flush()).await, Some(Ok(())))
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
/// at once cost no timer registration.
async fn bounded<F: Future>(limit: Duration, operation: F) -> Option<F::Output> {
    let mut operation = std::pin::pin!(operation);
    let first = std::future::poll_fn(|cx| match operation.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    match first {
        Some(output) => Some(output),
        None => timeout(limit, operation).await.ok(),
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
