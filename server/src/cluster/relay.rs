//! The pending-relay table: SSE requests this node relayed to the node holding the session's
//! stream, each waiting for its [`super::wire::Kind::RelayReply`].
//!
//! Owns: correlation ids (unique per node: answers come back on this node's own channel),
//! at most `limit` waiting requests, and the hand-over of an answer to its waiter. Entries
//! leave when answered, on timeout, or when the waiter gives up ([`Waiting`] drops).
//!
//! Never: grows past its limit (one more is [`Full`] at once), waits itself (the caller
//! applies the timeout), or hands an answer to anyone but the request's waiter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::oneshot;

/// The table is at its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// The waiting requests of one node.
#[derive(Debug)]
pub struct Relays {
    next: AtomicU64,
    limit: usize,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Bytes>>>,
}

/// One waiting request; dropping it leaves the table.
#[derive(Debug)]
pub struct Waiting<'a> {
    relays: &'a Relays,
    /// The correlation id to send with the request.
    pub corr: u64,
    answer: Option<oneshot::Receiver<Bytes>>,
}

impl Relays {
    /// A table of at most `limit` waiting requests.
    pub fn new(limit: usize) -> Self {
        Self {
            next: AtomicU64::new(1),
            limit,
            waiting: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Bytes>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a waiting request, or [`Full`].
    pub fn open(&self) -> Result<Waiting<'_>, Full> {
        let mut waiting = self.lock();
        if waiting.len() >= self.limit {
            return Err(Full);
        }
        let corr = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        waiting.insert(corr, tx);
        Ok(Waiting {
            relays: self,
            corr,
            answer: Some(rx),
        })
    }

    /// Hands `result` to the request `corr`; false when nobody waits for it (late, unknown).
    pub fn complete(&self, corr: u64, result: Bytes) -> bool {
        match self.lock().remove(&corr) {
            Some(tx) => tx.send(result).is_ok(),
            None => false,
        }
    }

    /// Requests waiting now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no request waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl Waiting<'_> {
    /// The answer, or `None` when none came within `timeout`.
    pub async fn answer(mut self, timeout: std::time::Duration) -> Option<Bytes> {
        let rx = self.answer.take()?;
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.relays.lock().remove(&self.corr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_answer_reaches_its_waiter_and_leaves_the_table() {
        let relays = Relays::new(4);
        let waiting = relays.open().expect("room");
        let corr = waiting.corr;
        assert_eq!(relays.len(), 1);
        assert!(relays.complete(corr, Bytes::from_static(b"ok")));
        assert_eq!(
            waiting.answer(Duration::from_secs(30)).await,
            Some(Bytes::from_static(b"ok"))
        );
        assert!(relays.is_empty());
        assert!(!relays.complete(corr, Bytes::new()), "answered once");
    }

    #[test]
    fn the_table_is_bounded_and_a_dropped_waiter_frees_its_place() {
        let relays = Relays::new(2);
        let first = relays.open().expect("room");
        let second = relays.open().expect("room");
        assert_ne!(first.corr, second.corr);
        assert_eq!(relays.open().err(), Some(Full));
        drop(first);
        assert_eq!(relays.len(), 1);
        assert!(relays.open().is_ok());
        assert!(
            !relays.complete(999, Bytes::new()),
            "unknown ids are ignored"
        );
    }

    #[tokio::test]
    async fn no_answer_in_time_is_none() {
        let relays = Relays::new(1);
        let waiting = relays.open().expect("room");
        assert_eq!(waiting.answer(Duration::from_millis(10)).await, None);
        assert!(relays.is_empty());
    }
}
