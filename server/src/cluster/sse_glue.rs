//! The SSE part of the cluster glue (docs/design/cluster-plan.md §4): the hub's SSE hooks
//! ([`crate::hub::sse_remote`]) over the backplane, and the routing of other nodes' SSE
//! traffic to the SSE transport.
//!
//! Owns: [`SseGlue`] (implements [`SseRemote`] with [`Backplane`] calls) and [`SseInboundSlot`]
//! (where the sink hands `Relay` / `RawSignal` and roster changes once `app` attached the
//! transport's [`SseInbound`]).
//!
//! Never: interprets a relayed request or answer (opaque bytes of the SSE transport), checks
//! a token (the transport does), or blocks the subscriber (the transport's inbound spawns
//! whatever waits).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::{Backplane, Change, Inbound, RelayOutcome, SseSession};
use crate::hub::RemoteFuture;
use crate::hub::sse_remote::{
    SseEntry, SseInbound, SseOwnerEntry, SseRelayAnswer, SseRemote, Unreachable,
};

/// The hub's SSE hook over one node's backplane.
pub struct SseGlue {
    backplane: Arc<Backplane>,
}

impl SseGlue {
    /// The hook over `backplane`.
    pub fn new(backplane: Arc<Backplane>) -> Self {
        Self { backplane }
    }
}

impl SseRemote for SseGlue {
    fn node_id(&self) -> &str {
        self.backplane.node_id()
    }

    fn register(&self, session: &str, entry: Option<SseEntry>) {
        let entry = entry.map(|e| SseSession {
            room: e.room,
            token_sha256: e.token_sha256,
            principal: e.principal,
        });
        if let Err(e) = self.backplane.queue_sse(session, entry) {
            tracing::warn!(error = %e, "SSE session not in Redis yet: the next resync carries it");
        }
    }

    fn settled(&self) -> RemoteFuture<bool> {
        let backplane = Arc::clone(&self.backplane);
        Box::pin(async move { backplane.settled().await.is_ok() })
    }

    fn owner(&self, session: &str) -> RemoteFuture<Result<Option<SseOwnerEntry>, Unreachable>> {
        let backplane = Arc::clone(&self.backplane);
        let session = session.to_owned();
        Box::pin(async move {
            let owner = backplane
                .sse_owner(&session)
                .await
                .map_err(|_| Unreachable)?;
            Ok(owner.map(|o| SseOwnerEntry {
                node: o.node,
                entry: SseEntry {
                    room: o.session.room,
                    token_sha256: o.session.token_sha256,
                    principal: o.session.principal,
                },
            }))
        })
    }

    fn relay(&self, node: &str, session: &str, request: Bytes) -> RemoteFuture<SseRelayAnswer> {
        let backplane = Arc::clone(&self.backplane);
        let (node, session) = (node.to_owned(), session.to_owned());
        Box::pin(async move { answer_of(backplane.relay(&node, &session, request).await) })
    }

    fn takeover(&self, node: &str, session: &str) -> RemoteFuture<SseRelayAnswer> {
        let backplane = Arc::clone(&self.backplane);
        let (node, session) = (node.to_owned(), session.to_owned());
        Box::pin(async move { answer_of(backplane.takeover(&node, &session).await) })
    }

    fn answer(&self, reply_to: &str, corr: u64, answer: Bytes) {
        if let Err(e) = self.backplane.answer_relay(reply_to, corr, answer) {
            tracing::debug!(error = %e, "an SSE relay answer was not sent (the asker times out)");
        }
    }

    fn raw_signal(
        &self,
        node: &str,
        from: &str,
        to: &str,
        raw: Bytes,
    ) -> RemoteFuture<Result<bool, Unreachable>> {
        let backplane = Arc::clone(&self.backplane);
        let (node, from, to) = (node.to_owned(), from.to_owned(), to.to_owned());
        Box::pin(async move {
            backplane
                .raw_signal(&node, &from, &to, raw)
                .await
                .map_err(|_| Unreachable)
        })
    }

    fn in_roster(&self, server: &str, user: &str) -> RemoteFuture<Result<bool, Unreachable>> {
        let backplane = Arc::clone(&self.backplane);
        let (server, user) = (server.to_owned(), user.to_owned());
        Box::pin(async move {
            backplane
                .in_roster(&server, &user)
                .await
                .map_err(|_| Unreachable)
        })
    }
}

fn answer_of(outcome: RelayOutcome) -> SseRelayAnswer {
    match outcome {
        RelayOutcome::Answered(answer) => SseRelayAnswer::Answered(answer),
        RelayOutcome::NoOwner => SseRelayAnswer::NoOwner,
        RelayOutcome::TimedOut | RelayOutcome::Busy | RelayOutcome::Unavailable => {
            SseRelayAnswer::Unavailable
        }
    }
}

/// Where the sink hands SSE traffic: empty until `app` attaches the SSE transport (before
/// that no session exists here, so a relay finds nobody and the asker times out).
#[derive(Default, Clone)]
pub struct SseInboundSlot(Arc<OnceLock<Arc<dyn SseInbound>>>);

impl SseInboundSlot {
    /// Attaches the transport's side (once; a second call is ignored).
    pub fn attach(&self, inbound: Arc<dyn SseInbound>) {
        let _ = self.0.set(inbound);
    }

    /// Takes what the SSE transport handles: `Relay`, `Takeover` and `RawSignal` are handed
    /// over (`None` back); a roster change or snapshot is told to it and given back for the
    /// hub; anything else is given back untouched.
    pub fn route(&self, event: Inbound) -> Option<Inbound> {
        let inbound = self.0.get();
        match event {
            Inbound::Relay {
                corr,
                reply_to,
                session,
                request,
            } => {
                if let Some(inbound) = inbound {
                    inbound.relay(corr, reply_to, session, request);
                }
                None
            }
            Inbound::RawSignal { from, to, raw } => {
                if let Some(inbound) = inbound {
                    inbound.raw_signal(from, to, raw);
                }
                None
            }
            Inbound::Takeover {
                corr,
                reply_to,
                session,
            } => {
                if let Some(inbound) = inbound {
                    inbound.takeover(corr, reply_to, session);
                }
                None
            }
            Inbound::Roster(event) => {
                // A status change leaves the ids an SSE `roster` lists as they are.
                if let Some(inbound) =
                    inbound.filter(|_| !matches!(event.change, Change::Status { .. }))
                {
                    inbound.roster_changed(&event.server);
                }
                Some(Inbound::Roster(event))
            }
            Inbound::Snapshot(snapshot) => {
                if let Some(inbound) = inbound {
                    inbound.roster_changed(&snapshot.server);
                }
                Some(Inbound::Snapshot(snapshot))
            }
            other => Some(other),
        }
    }
}
