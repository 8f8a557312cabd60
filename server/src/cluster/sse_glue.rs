//! The SSE part of the cluster glue (docs/design/cluster-plan.md §4): the hub's SSE hooks
//! ([`crate::hub::sse_remote`]) over the backplane, and the routing of other nodes' SSE
//! traffic to the SSE transport.
//!
//! Owns: [`SseGlue`] (implements [`SseRemote`] with [`Backplane`] calls), [`SseSink`] (wraps
//! the hub's sink) and [`SseInboundSlot`] (where it hands `Relay`, `Takeover`, `RawSignal`
//! and a note of each roster change once `app` attached the transport's [`SseInbound`]).
//!
//! Never: interprets a relayed request or answer (opaque bytes of the SSE transport), checks
//! a token (the transport does), or blocks the subscriber (the transport's inbound spawns
//! whatever waits).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::{Backplane, Change, Inbound, RelayOutcome, Sink, SseSession};
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

/// The node's sink: SSE traffic to the SSE transport (through [`SseInboundSlot::route`]),
/// everything else (and roster changes, after telling the transport) to the hub's sink.
pub struct SseSink {
    hub: Arc<dyn Sink>,
    sse: SseInboundSlot,
}

impl SseSink {
    /// `hub`'s sink, with SSE traffic taken to `sse`.
    pub fn new(hub: Arc<dyn Sink>, sse: SseInboundSlot) -> Self {
        Self { hub, sse }
    }
}

impl Sink for SseSink {
    fn deliver(&self, event: Inbound) {
        if let Some(event) = self.sse.route(event) {
            self.hub.deliver(event);
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

    /// This node's membership of `server` reached Redis (its channel subscribed and
    /// acknowledged first, the join script run): the SSE sessions of that room here refetch
    /// the cluster roster. A session's first roster may have been fetched before that (the
    /// hub shows a joiner its local roster at once), and a join on another node published
    /// before this node's subscription would otherwise never reach it (seen as a
    /// `cluster_sse` failure under load: a roster stuck without the other node's member).
    pub fn joined(&self, server: &str) {
        if let Some(inbound) = self.0.get() {
            inbound.roster_changed(server);
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cluster::{RosterEvent, RosterSnapshot};

    #[derive(Default)]
    struct Recorded(Mutex<Vec<String>>);

    impl SseInbound for Recorded {
        fn relay(&self, corr: u64, reply_to: String, session: String, _request: Bytes) {
            self.push(format!("relay {corr} {reply_to} {session}"));
        }

        fn takeover(&self, corr: u64, reply_to: String, session: String) {
            self.push(format!("takeover {corr} {reply_to} {session}"));
        }

        fn raw_signal(&self, from: String, to: String, _raw: Bytes) {
            self.push(format!("raw {from} {to}"));
        }

        fn roster_changed(&self, server: &str) {
            self.push(format!("roster {server}"));
        }
    }

    impl Recorded {
        fn push(&self, line: String) {
            self.0.lock().expect("lock").push(line);
        }
    }

    fn roster(change: Change) -> Inbound {
        Inbound::Roster(RosterEvent {
            server: "S".into(),
            version: 1,
            change,
        })
    }

    #[test]
    fn sse_traffic_goes_to_the_transport_and_roster_changes_are_told_and_passed_on() {
        let slot = SseInboundSlot::default();
        let relay = Inbound::Relay {
            corr: 7,
            reply_to: "n2".into(),
            session: "s1".into(),
            request: Bytes::new(),
        };
        assert_eq!(slot.route(relay.clone()), None, "taken even before attach");
        let recorded = Arc::new(Recorded::default());
        slot.attach(recorded.clone());
        assert_eq!(slot.route(relay), None);
        let takeover = Inbound::Takeover {
            corr: 8,
            reply_to: "n3".into(),
            session: "s1".into(),
        };
        assert_eq!(slot.route(takeover), None);
        let raw = Inbound::RawSignal {
            from: "s1".into(),
            to: "s2".into(),
            raw: Bytes::new(),
        };
        assert_eq!(slot.route(raw), None);
        let joined = roster(Change::Joined {
            user: "u".into(),
            entry: Bytes::new(),
        });
        assert_eq!(slot.route(joined.clone()), Some(joined));
        let status = roster(Change::Status {
            user: "u".into(),
            entry: Bytes::new(),
            change_id: 1,
            fan_out: true,
            origin: "n2".into(),
        });
        assert_eq!(slot.route(status.clone()), Some(status));
        let snapshot = Inbound::Snapshot(RosterSnapshot {
            server: "T".into(),
            version: 3,
            members: Vec::new(),
        });
        assert_eq!(slot.route(snapshot.clone()), Some(snapshot));
        let forward = Inbound::Forward {
            target: "u".into(),
            frame: Bytes::new(),
        };
        assert_eq!(slot.route(forward.clone()), Some(forward));
        assert_eq!(
            *recorded.0.lock().expect("lock"),
            [
                "relay 7 n2 s1",
                "takeover 8 n3 s1",
                "raw s1 s2",
                "roster S",
                "roster T"
            ]
        );
    }
}
