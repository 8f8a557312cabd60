//! The forwarded envelopes: `offer`, `answer`, `ice_candidate`, `direct-call`, the
//! `direct-message*` family, `server_icon_peer_request`, `server_icon_peer_data`,
//! `rpc_request` and `rpc_response`.
//!
//! The payload is never inspected: the envelope, unknown fields included, goes to every
//! connection of `targetUserId` with `fromUserId` overwritten by the sender's `oderId`
//! ([`crate::hub::Hub::forward`]). `TARGET_NOT_FOUND` when the target is offline, `FORBIDDEN`
//! when the two share no server (unless `realtime.forwarding` is `open`); both carry the
//! `requestId` of a failed RPC.
//!
//! In cluster mode the local delivery comes first, then the same frame is queued (FIFO, in
//! the node's one publisher) through the hub's `Remote` hook for the target's other nodes.
//! The connection does not wait for Redis's receipt: it reads its next frame at once. A task
//! per cross-node forward awaits the receipt; when the local delivery failed it sends the
//! refusal that stands (`TARGET_NOT_FOUND`, `FORBIDDEN`, or `UNAVAILABLE` when Redis cannot be
//! reached or does not answer within `cluster.relayTimeoutMs`) to the sender's connection
//! through the hub, with the RPC's `requestId`; so such a refusal may arrive after the results
//! of later frames (a connection's refusals keep the order of its forwards).
//! [`PendingForwards`] bounds those tasks per connection.
//!
//! Never: waits for Redis while holding the connection, except at the per-connection bound
//! (`cluster.maxPendingForwardsPerConnection`), where it waits for a slot (backpressure)
//! instead of dropping a forward.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::FutureExt;
use signalbox_protocol::{ClientEnvelope, ErrorCode, RequestId, UserId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::{Handled, Next, Refusal, Session};
use crate::hub::{ConnKey, Hub, HubError, RemoteForward, RemoteFuture};

/// The slots of one connection's unresolved cross-node forwards (cluster mode), made at its
/// first cross-node forward. A forward takes a slot before it is queued for Redis and gives it
/// back when its receipt resolved; with every slot taken the connection waits for one, so a
/// client that sends faster than Redis answers slows down rather than losing forwards. Each
/// forward that may be refused also gets its [`Turn`]: refusals are queued in the order the
/// forwards were sent.
#[derive(Debug, Default)]
pub struct PendingForwards(OnceLock<Slots>);

#[derive(Debug)]
struct Slots {
    free: Arc<Semaphore>,
    /// Resolved (sent or dropped) when the latest forward's completion is done.
    last: Mutex<Option<oneshot::Receiver<()>>>,
}

/// A forward's place in its connection's order: it waits for `after` before queueing its
/// refusal, and its end (`done` dropped) lets the next one go.
struct Turn {
    after: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
}

impl PendingForwards {
    fn slots(&self, bound: usize) -> &Slots {
        self.0.get_or_init(|| Slots {
            free: Arc::new(Semaphore::new(bound.max(1))),
            last: Mutex::new(None),
        })
    }

    /// Waits for a free slot (at most `bound` are taken at once). `None` only if the slots
    /// were closed, which nothing does.
    async fn slot(&self, bound: usize) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots(bound).free)
            .acquire_owned()
            .await
            .ok()
    }

    /// The next turn to queue a refusal in.
    fn turn(&self, bound: usize) -> Turn {
        let (done, next) = oneshot::channel();
        let after = self
            .slots(bound)
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(next);
        Turn { after, done }
    }

    /// Cross-node forwards of this connection whose receipt has not resolved yet.
    pub fn unresolved(&self, bound: usize) -> usize {
        self.0.get().map_or(0, |s| {
            bound.max(1).saturating_sub(s.free.available_permits())
        })
    }
}

/// Handles one forwarded envelope on a server with no cluster backplane: the delivery is
/// queued before this returns (nothing waits), so the transport can run it without a future.
/// With a backplane, [`handle`] is the one to call.
pub fn handle_local(session: &Session, envelope: ClientEnvelope) -> Handled {
    session.hub().forward(session.key(), envelope)?;
    session
        .state
        .transport_metrics
        .forward_latency(session.received_at.elapsed());
    Ok(Next::Continue)
}

/// Handles one forwarded envelope.
pub async fn handle(session: &Session, envelope: ClientEnvelope) -> Handled {
    match session.hub().remote() {
        None => return handle_local(session, envelope),
        Some(remote) => {
            let request_type = envelope.wire_type();
            // Serialized once: the same frame goes to this node's connections and to Redis.
            let out = session.hub().forward_frame(session.key(), envelope)?;
            let local_refusal = match session.hub().forward_built(session.key(), &out) {
                Ok(_) => None,
                Err(e @ (HubError::TargetNotFound { .. } | HubError::Forbidden { .. })) => Some(e),
                Err(e) => return Err(e.into()),
            };
            let cluster = &session.state.config.variables.cluster;
            let bound = cluster.max_pending_forwards_per_connection;
            let slot = session.pending_forwards.slot(bound).await;
            // Queued for Redis now, in this connection's order; only the receipt is awaited
            // later, by the completion.
            let mut receipt = remote.forward(&out.from, &out.target, &out.frame, out.shared);
            if local_refusal.is_none() && (&mut receipt).now_or_never().is_some() {
                // Delivered here and Redis not needed (the target is on this node only): done.
                return finish(session);
            }
            // Only a refusal has an order to keep.
            let turn = local_refusal
                .is_some()
                .then(|| session.pending_forwards.turn(bound));
            let completion = Completion {
                hub: session.hub().clone(),
                count_error: {
                    let metrics = Arc::clone(&session.state.transport_metrics);
                    Arc::new(move |code| metrics.error(code))
                },
                conn: session.key(),
                request_type,
                target: out.target,
                request_id: out.request_id,
                local_refusal,
                timeout: Duration::from_millis(cluster.relay_timeout_ms),
            };
            tokio::spawn(completion.run(receipt, slot, turn));
        }
    }
    finish(session)
}

/// Records the forward's latency.
fn finish(session: &Session) -> Handled {
    session
        .state
        .transport_metrics
        .forward_latency(session.received_at.elapsed());
    Ok(Next::Continue)
}

/// What a cross-node forward's receipt resolves against: the sender's connection and the
/// local delivery's refusal, if the local delivery failed.
struct Completion {
    hub: Hub,
    /// Counts a refusal in the transport's error counter (a closure, so `handlers` does not
    /// name `transport`'s types: transport imports handlers, not the other way round).
    count_error: Arc<dyn Fn(ErrorCode) + Send + Sync>,
    conn: ConnKey,
    request_type: &'static str,
    target: UserId,
    request_id: Option<RequestId>,
    local_refusal: Option<HubError>,
    timeout: Duration,
}

impl Completion {
    /// Awaits the receipt (at most `timeout`: a receipt still queued by then counts as
    /// unreachable) and the previous forward's turn, queues the refusal that stands, then
    /// frees the connection's slot and turn.
    async fn run(
        self,
        receipt: RemoteFuture<RemoteForward>,
        slot: Option<OwnedSemaphorePermit>,
        turn: Option<Turn>,
    ) {
        let outcome = tokio::time::timeout(self.timeout, receipt)
            .await
            .unwrap_or(RemoteForward::Unavailable);
        // The previous forward's completion ends within its own timeout, which started first.
        let (after, done) = turn.map(|t| (t.after, t.done)).unzip();
        if let Some(previous) = after.flatten() {
            let _ = previous.await;
        }
        if let Some(refusal) = self.refusal(outcome) {
            let event = refusal.to_event(Some(self.request_type));
            (self.count_error)(refusal.code);
            crate::telemetry::levels::envelope_refusal(refusal.code);
            // The connection may have closed meanwhile: nothing is owed to it then.
            let _ = self.hub.send(self.conn, &event);
        }
        // Freed after the refusal is queued: a connection waiting at its bound handles its
        // next frame only after the refusal that made room.
        drop(slot);
        drop(done);
    }

    /// The refusal the sender gets, if any: none when some node (this one included) took it.
    fn refusal(&self, outcome: RemoteForward) -> Option<Refusal> {
        let local = self.local_refusal.clone()?;
        match outcome {
            RemoteForward::Delivered => None,
            RemoteForward::TargetNotFound | RemoteForward::LocalOnly => Some(local.into()),
            RemoteForward::Forbidden => Some(
                HubError::Forbidden {
                    target: self.target.clone(),
                    request_id: self.request_id.clone(),
                }
                .into(),
            ),
            RemoteForward::Unavailable => {
                let mut refusal = Refusal::new(
                    ErrorCode::Unavailable,
                    "the other nodes cannot be reached right now; try again",
                );
                refusal.request_id = self.request_id.clone();
                Some(refusal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use signalbox_protocol::{ErrorCode, RequestId, UserId};

    use super::*;

    #[tokio::test]
    async fn a_connection_at_its_bound_waits_for_a_slot() {
        let pending = PendingForwards::default();
        assert_eq!(pending.unresolved(2), 0);
        let first = pending.slot(2).await;
        let _second = pending.slot(2).await;
        assert_eq!(pending.unresolved(2), 2);
        assert!(
            pending.slot(2).now_or_never().is_none(),
            "a third forward waits while two are unresolved"
        );
        drop(first);
        assert!(pending.slot(2).now_or_never().is_some());
    }

    fn completion(local_refusal: Option<HubError>) -> Completion {
        Completion {
            hub: Hub::default(),
            count_error: Arc::new(|_| {}),
            conn: ConnKey::for_tests(1),
            request_type: "rpc_request",
            target: UserId::from("bob"),
            request_id: Some(RequestId::from("r-1")),
            local_refusal,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_refusal_that_stands_carries_the_request_id() {
        let delivered_here = completion(None);
        for outcome in [
            RemoteForward::Delivered,
            RemoteForward::TargetNotFound,
            RemoteForward::Forbidden,
            RemoteForward::LocalOnly,
            RemoteForward::Unavailable,
        ] {
            assert_eq!(delivered_here.refusal(outcome), None, "{outcome:?}");
        }
        let not_here = completion(Some(HubError::TargetNotFound {
            target: UserId::from("bob"),
            request_id: Some(RequestId::from("r-1")),
        }));
        assert_eq!(not_here.refusal(RemoteForward::Delivered), None);
        for (outcome, code) in [
            (RemoteForward::TargetNotFound, ErrorCode::TargetNotFound),
            (RemoteForward::LocalOnly, ErrorCode::TargetNotFound),
            (RemoteForward::Forbidden, ErrorCode::Forbidden),
            (RemoteForward::Unavailable, ErrorCode::Unavailable),
        ] {
            let refusal = not_here.refusal(outcome).expect("a refusal");
            assert_eq!(refusal.code, code, "{outcome:?}");
            assert_eq!(
                refusal.request_id,
                Some(RequestId::from("r-1")),
                "{outcome:?}"
            );
        }
    }
}
