//! One SSE response body: the session's events as they come, and `: keepalive` between them.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use signalbox_protocol::sse::{KEEPALIVE_FRAME, SessionId};
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};

use super::Shared;

struct Inner {
    events: mpsc::Receiver<Bytes>,
    keepalive: Interval,
}

/// The body of one `GET /api/connect` response. Ends when the session leaves or is pruned,
/// when another stream resumes the session, or when it was dropped for not reading. When the
/// client goes away first, dropping it marks the session as having no stream (resumable).
pub struct SseStream {
    // A `Mutex` only to make the body `Sync` (warp requires it); `poll_next` has `&mut self`
    // and reaches the inside with `get_mut`, without locking.
    inner: Mutex<Inner>,
    shared: Weak<Shared>,
    session: SessionId,
    stream_id: u64,
}

impl std::fmt::Debug for SseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseStream")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl SseStream {
    pub(super) fn new(
        events: mpsc::Receiver<Bytes>,
        keepalive: Duration,
        shared: Weak<Shared>,
        session: SessionId,
        stream_id: u64,
    ) -> Self {
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            inner: Mutex::new(Inner { events, keepalive }),
            shared,
            session,
            stream_id,
        }
    }

    /// The session this stream belongs to.
    pub fn session_id(&self) -> &SessionId {
        &self.session
    }
}

impl Stream for SseStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let inner = self
            .get_mut()
            .inner
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Poll::Ready(next) = inner.events.poll_recv(cx) {
            return Poll::Ready(next.map(Ok));
        }
        if inner.keepalive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Bytes::from_static(KEEPALIVE_FRAME.as_bytes()))));
        }
        Poll::Pending
    }
}

impl Drop for SseStream {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.stream_ended(&self.session, self.stream_id);
        }
    }
}
