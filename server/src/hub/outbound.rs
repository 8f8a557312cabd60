//! The per-connection outbound queue: bounded, never blocking the sender, shared bytes.
//!
//! Owns: the frames waiting to be written to one connection, the decision that a connection is
//! too slow (and must be closed with 4008), and the hand-over of a close code to the transport.
//! Never: touches a socket, awaits on the sending side, or grows past its bounds.
//!
//! A [`Frame`] is one serialized envelope behind an `Arc`: a broadcast serializes its envelope
//! once and every recipient queue holds a reference-counted pointer to the same text.
//!
//! [`Outbox::try_send`] is the only way in. It takes one short per-connection lock and never
//! waits: when the queue already holds `capacity` frames (or `max_bytes` bytes), the queue is
//! emptied at once (freeing its memory), the connection is marked closing with
//! [`CloseCode::SlowConsumer`], and every later send is refused cheaply. The transport's writer
//! task sees [`Outbound::Close`] from [`OutboundReceiver::recv`] and closes the socket with that
//! code; nobody else is slowed.
//!
//! Other closes ([`Outbox::close`], e.g. 1001 on shutdown) keep the frames already queued: the
//! receiver gets them first, then the close.
//!
//! The queue is a `Mutex<VecDeque>` plus an [`AtomicWaker`] rather than a `tokio::sync::mpsc`
//! channel because the close signal has to travel in band (ordered after the frames) and a slow
//! consumer's backlog must be dropped by the sender side, neither of which an mpsc channel
//! offers. The receiver is woken only when the queue goes from empty to non-empty, so a burst to
//! one connection costs one wake-up, not one per frame.
//!
//! The wake-up is an [`AtomicWaker`] (one atomic swap to wake, one compare-and-swap to wait)
//! rather than a `tokio::sync::Notify`, whose waiter list takes a lock to wait, to stop waiting
//! and to wake: there is exactly one waiting task per queue (the receiver is not `Clone` and
//! waits through `&mut self`), and a fan-out to 5,000 members wakes 5,000 of them while each
//! one's connection task stops and starts waiting once per batch it writes. The receiver
//! registers its waker *before* looking at the queue, so a frame pushed at any moment is either
//! seen by that look or wakes the task: no wake-up is lost.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use signalbox_protocol::{CloseCode, ServerEnvelope};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::metrics::HubMetrics;

pub use crate::config::DEFAULT_MAX_QUEUED_BYTES;

thread_local! {
    /// Where [`Frame::from_envelope`] serializes before copying the text out.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The scratch buffer's capacity kept between frames; a larger frame's buffer is freed after
/// use, so a thread does not keep a 256 KiB buffer for one big chat message.
const SCRATCH_KEPT_BYTES: usize = 16 * 1024;

/// One serialized envelope (JSON text), cheap to clone and share between recipients.
///
/// Held as [`Utf8Bytes`] (reference-counted bytes known to be UTF-8, from the `tungstenite`
/// crate but free of any socket): the WebSocket writer hands a clone straight to the socket, so
/// a frame serialized once is neither copied nor re-validated per recipient.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame(Utf8Bytes);

impl Frame {
    /// Serializes an envelope once; clone the result for every recipient.
    ///
    /// The text is written into a per-thread scratch buffer and then copied once into an
    /// allocation of exactly its size: one allocation per frame instead of a growing buffer's
    /// three or four (a 450-byte delivery grew 128, 256, 512), and no spare capacity held by a
    /// queued frame.
    pub fn from_envelope(envelope: &ServerEnvelope) -> Result<Self, serde_json::Error> {
        SCRATCH.with(|scratch| {
            let Ok(mut buffer) = scratch.try_borrow_mut() else {
                return serde_json::to_string(envelope).map(Self::from_text);
            };
            buffer.clear();
            let written = serde_json::to_writer(&mut *buffer, envelope);
            // serde_json writes UTF-8; the check (vectorized, unlike a lossy conversion) only
            // keeps this free of `unsafe`.
            let text = written.map(|()| std::str::from_utf8(&buffer).map(str::to_owned));
            if buffer.capacity() > SCRATCH_KEPT_BYTES {
                *buffer = Vec::new();
            }
            match text? {
                Ok(text) => Ok(Self::from_text(text)),
                Err(_) => serde_json::to_string(envelope).map(Self::from_text),
            }
        })
    }

    /// Wraps text that is already serialized JSON (a `String` is taken over without a copy).
    pub fn from_text(text: impl Into<Utf8Bytes>) -> Self {
        Self(text.into())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The JSON text as a WebSocket text payload sharing this frame's allocation (no copy, no
    /// UTF-8 check).
    pub fn to_text(&self) -> Utf8Bytes {
        self.0.clone()
    }

    /// Length of the JSON text in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty (never, for a serialized envelope).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Frame").field(&self.as_str()).finish()
    }
}

/// Bounds of one connection's outbound queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Frames queued before the connection is closed as a slow consumer (default
    /// `signalbox_protocol::limits::OUTBOUND_QUEUE_ENVELOPES`).
    pub capacity: usize,
    /// Bytes queued (summed over frames) before the connection is closed as a slow consumer
    /// (default [`DEFAULT_MAX_QUEUED_BYTES`]).
    pub max_bytes: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            capacity: signalbox_protocol::limits::OUTBOUND_QUEUE_ENVELOPES,
            max_bytes: DEFAULT_MAX_QUEUED_BYTES,
        }
    }
}

/// What became of one [`Outbox::try_send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// The frame is queued.
    Queued,
    /// The queue was full: this send closed the connection as a slow consumer (4008).
    SlowConsumer,
    /// The connection was already closing or its transport is gone; the frame was dropped.
    Closed,
}

/// What the transport's writer gets next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A frame to write.
    Frame(Frame),
    /// Close the connection with this code; nothing follows.
    Close(CloseCode),
}

/// Slots an empty queue keeps allocated; a burst's extra capacity is released once drained,
/// so 50,000 idle connections do not each keep the backlog of their busiest moment.
const IDLE_SLOTS: usize = 16;

#[derive(Default)]
struct Queue {
    frames: VecDeque<Frame>,
    bytes: usize,
    close: Option<CloseCode>,
    receiver_gone: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// The receiver's task while it waits for a frame or a close.
    waker: AtomicWaker,
    config: OutboundConfig,
    metrics: Arc<HubMetrics>,
}

impl Queue {
    fn pop(&mut self) -> Option<Frame> {
        let frame = self.frames.pop_front()?;
        self.bytes -= frame.len();
        self.release_if_drained();
        Some(frame)
    }

    fn release_if_drained(&mut self) {
        if self.frames.is_empty() && self.frames.capacity() > IDLE_SLOTS * 4 {
            self.frames.shrink_to(IDLE_SLOTS);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Every critical section below leaves the queue consistent, so a poisoned lock (a panic
        // elsewhere while holding it) is safe to keep using.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending side of one connection's queue; cheap to clone, held by the hub.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").finish_non_exhaustive()
    }
}

/// The receiving side of one connection's queue, owned by the transport's writer task.
pub struct OutboundReceiver {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for OutboundReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundReceiver").finish_non_exhaustive()
    }
}

/// Creates one connection's queue. Slow-consumer closes are counted in `metrics`.
pub fn channel(config: OutboundConfig, metrics: Arc<HubMetrics>) -> (Outbox, OutboundReceiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        waker: AtomicWaker::new(),
        config,
        metrics,
    });
    (
        Outbox {
            shared: Arc::clone(&shared),
        },
        OutboundReceiver { shared },
    )
}

impl Outbox {
    /// Queues `frame` without waiting. A full queue closes the connection as a slow consumer
    /// and drops its backlog; see the module documentation.
    pub fn try_send(&self, frame: &Frame) -> SendOutcome {
        let shared = &*self.shared;
        let mut queue = shared.lock();
        if queue.close.is_some() || queue.receiver_gone {
            return SendOutcome::Closed;
        }
        let over_count = queue.frames.len() >= shared.config.capacity;
        // An empty queue takes any one frame: only a backlog makes a consumer slow.
        let over_bytes = !queue.frames.is_empty()
            && queue.bytes.saturating_add(frame.len()) > shared.config.max_bytes;
        if over_count || over_bytes {
            let backlog = std::mem::take(&mut queue.frames);
            queue.bytes = 0;
            queue.close = Some(CloseCode::SlowConsumer);
            drop(queue);
            drop(backlog);
            shared
                .metrics
                .slow_consumer_closes
                .fetch_add(1, Ordering::Relaxed);
            shared.waker.wake();
            return SendOutcome::SlowConsumer;
        }
        let was_empty = queue.frames.is_empty();
        queue.bytes += frame.len();
        queue.frames.push_back(frame.clone());
        drop(queue);
        if was_empty {
            shared.waker.wake();
        }
        SendOutcome::Queued
    }

    /// Asks the transport to close the connection with `code` once the frames already queued
    /// are written. Later sends are dropped. The first close requested wins.
    pub fn close(&self, code: CloseCode) {
        let mut queue = self.shared.lock();
        if queue.close.is_none() {
            queue.close = Some(code);
        }
        drop(queue);
        self.shared.waker.wake();
    }

    /// The close code requested so far, if any (4008 for a slow consumer).
    pub fn close_code(&self) -> Option<CloseCode> {
        self.shared.lock().close
    }

    /// Frames waiting in the queue.
    pub fn len(&self) -> usize {
        self.shared.lock().frames.len()
    }

    /// Whether no frame is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(frames, bytes)` waiting in the queue (for gauges).
    pub fn backlog(&self) -> (usize, usize) {
        let queue = self.shared.lock();
        (queue.frames.len(), queue.bytes)
    }
}

impl OutboundReceiver {
    /// Waits for the next frame, or for the close once every queued frame was taken. After a
    /// close, every call returns that close again.
    pub async fn recv(&mut self) -> Outbound {
        std::future::poll_fn(|cx| {
            self.shared.waker.register(cx.waker());
            match self.try_recv() {
                Some(next) => Poll::Ready(next),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Takes the next frame or close without waiting; `None` when the queue is empty and open.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let mut queue = self.shared.lock();
        if let Some(frame) = queue.pop() {
            return Some(Outbound::Frame(frame));
        }
        queue.close.map(Outbound::Close)
    }

    /// Waits until at least one frame is queued, moves up to `limit` frames into `batch` and
    /// returns `None`; or, once the queue is empty and closing, returns the close code. Lets a
    /// writer feed a burst to the socket and flush once.
    pub async fn recv_many(&mut self, batch: &mut Vec<Frame>, limit: usize) -> Option<CloseCode> {
        let limit = limit.max(1);
        std::future::poll_fn(|cx| self.poll_recv_many(cx, batch, limit)).await
    }

    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        batch: &mut Vec<Frame>,
        limit: usize,
    ) -> Poll<Option<CloseCode>> {
        // Registered before the look at the queue: see the module documentation.
        self.shared.waker.register(cx.waker());
        let mut queue = self.shared.lock();
        if !queue.frames.is_empty() {
            let take = limit.min(queue.frames.len());
            let mut taken = 0;
            for frame in queue.frames.drain(..take) {
                taken += frame.len();
                batch.push(frame);
            }
            queue.bytes -= taken;
            queue.release_if_drained();
            return Poll::Ready(None);
        }
        match queue.close {
            Some(code) => Poll::Ready(Some(code)),
            None => Poll::Pending,
        }
    }
}

impl Drop for OutboundReceiver {
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.receiver_gone = true;
        queue.frames.clear();
        queue.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Frame::from_text(text)
    }

    fn small(capacity: usize) -> (Outbox, OutboundReceiver, Arc<HubMetrics>) {
        let metrics = Arc::new(HubMetrics::default());
        let config = OutboundConfig {
            capacity,
            max_bytes: 1024,
        };
        let (tx, rx) = channel(config, Arc::clone(&metrics));
        (tx, rx, metrics)
    }

    #[test]
    fn frames_come_out_in_order() {
        let (tx, mut rx, _) = small(4);
        assert_eq!(tx.try_send(&frame("a")), SendOutcome::Queued);
        assert_eq!(tx.try_send(&frame("b")), SendOutcome::Queued);
        assert_eq!(rx.try_recv(), Some(Outbound::Frame(frame("a"))));
        assert_eq!(rx.try_recv(), Some(Outbound::Frame(frame("b"))));
        assert_eq!(rx.try_recv(), None);
    }

    #[test]
    fn a_full_queue_closes_with_4008_and_drops_its_backlog() {
        let (tx, mut rx, metrics) = small(2);
        assert_eq!(tx.try_send(&frame("1")), SendOutcome::Queued);
        assert_eq!(tx.try_send(&frame("2")), SendOutcome::Queued);
        assert_eq!(tx.try_send(&frame("3")), SendOutcome::SlowConsumer);
        assert_eq!(tx.try_send(&frame("4")), SendOutcome::Closed);
        assert_eq!(tx.len(), 0);
        assert_eq!(tx.close_code(), Some(CloseCode::SlowConsumer));
        assert_eq!(
            rx.try_recv(),
            Some(Outbound::Close(CloseCode::SlowConsumer))
        );
        assert_eq!(
            rx.try_recv(),
            Some(Outbound::Close(CloseCode::SlowConsumer))
        );
        assert_eq!(metrics.slow_consumer_closes.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_byte_cap_also_marks_a_slow_consumer() {
        let (tx, _rx, _) = small(100);
        let big = Frame::from_text("x".repeat(600));
        assert_eq!(tx.try_send(&big), SendOutcome::Queued);
        assert_eq!(tx.try_send(&big), SendOutcome::SlowConsumer);
        let (tx, _rx, _) = small(100);
        let huge = Frame::from_text("x".repeat(5000));
        assert_eq!(
            tx.try_send(&huge),
            SendOutcome::Queued,
            "an idle queue takes one big frame"
        );
    }

    #[test]
    fn a_graceful_close_comes_after_the_queued_frames() {
        let (tx, mut rx, _) = small(4);
        tx.try_send(&frame("last words"));
        tx.close(CloseCode::GoingAway);
        tx.close(CloseCode::PolicyViolation);
        assert_eq!(tx.try_send(&frame("too late")), SendOutcome::Closed);
        assert_eq!(rx.try_recv(), Some(Outbound::Frame(frame("last words"))));
        assert_eq!(rx.try_recv(), Some(Outbound::Close(CloseCode::GoingAway)));
    }

    #[test]
    fn sends_after_the_receiver_is_dropped_are_refused() {
        let (tx, rx, _) = small(4);
        drop(rx);
        assert_eq!(tx.try_send(&frame("a")), SendOutcome::Closed);
    }

    #[test]
    fn bytes_share_the_frame_allocation() {
        let f = frame("{\"type\":\"keepalive\"}");
        let b = f.to_text();
        assert_eq!(b.as_str(), f.as_str());
        assert_eq!(b.as_str().as_ptr(), f.as_str().as_ptr());
    }

    /// Frames pushed from other threads while the receiver waits, at every interleaving the
    /// scheduler produces, all arrive: no wake-up is lost between a look at the queue and the
    /// wait.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_frame_sent_from_another_thread_is_missed() {
        let config = OutboundConfig {
            capacity: 100_000,
            max_bytes: 1 << 20,
        };
        let (tx, mut rx) = channel(config, Arc::new(HubMetrics::default()));
        const SENDERS: usize = 4;
        const EACH: usize = 2_000;
        let senders: Vec<_> = (0..SENDERS)
            .map(|_| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        tx.try_send(&frame("f"));
                        if i % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut batch = Vec::new();
        let mut received = 0;
        while received < SENDERS * EACH {
            assert_eq!(rx.recv_many(&mut batch, 8).await, None);
            received += batch.len();
            batch.clear();
        }
        for sender in senders {
            sender.join().expect("sender thread");
        }
        assert_eq!(received, SENDERS * EACH);
        assert_eq!(tx.backlog(), (0, 0));
    }

    #[tokio::test]
    async fn recv_waits_for_a_frame_and_recv_many_batches() {
        let (tx, mut rx, _) = small(8);
        let sender = tx.clone();
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            sender.try_send(&Frame::from_text("late"));
        });
        assert_eq!(rx.recv().await, Outbound::Frame(frame("late")));
        task.await.expect("sender task");
        for text in ["a", "b", "c"] {
            tx.try_send(&frame(text));
        }
        let mut batch = Vec::new();
        assert_eq!(rx.recv_many(&mut batch, 2).await, None);
        assert_eq!(batch, vec![frame("a"), frame("b")]);
        tx.close(CloseCode::GoingAway);
        assert_eq!(rx.recv_many(&mut batch, 8).await, None);
        assert_eq!(batch.len(), 3);
        assert_eq!(
            rx.recv_many(&mut batch, 8).await,
            Some(CloseCode::GoingAway)
        );
    }
}
