//! The SSE transport's seam to other nodes (cluster mode, issue 13;
//! `docs/design/cluster-plan.md` §4): two narrow hooks, so the transport and the cluster glue
//! never import each other (`app` plugs one into the other).
//!
//! Owns: the [`SseRemote`] trait (what the SSE transport asks of other nodes: the session
//! registry, relays, raw signals, roster membership), the [`SseInbound`] trait (what other
//! nodes' SSE traffic asks of the transport) and the plain data they exchange.
//!
//! Never: holds state, interprets a relayed request or answer (opaque bytes of the SSE
//! transport), or carries a session token (only its SHA-256).

use bytes::Bytes;

use super::RemoteFuture;

/// What the cluster's session registry holds for an SSE session besides its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEntry {
    /// The room (normalized).
    pub room: String,
    /// Hex SHA-256 of the session's secret token.
    pub token_sha256: String,
    /// Who the session was admitted as (empty: anonymous).
    pub principal: String,
}

/// An SSE session held by some node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseOwnerEntry {
    /// The node holding the session's stream.
    pub node: String,
    /// The registry entry.
    pub entry: SseEntry,
}

/// What became of a request relayed to the node holding a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseRelayAnswer {
    /// The owner answered (the SSE transport's encoding).
    Answered(Bytes),
    /// No node listened on the owner's channel (it died).
    NoOwner,
    /// The owner did not answer within `cluster.relayTimeoutMs`, or `cluster.maxPendingRelays`
    /// relays wait already, or Redis is unreachable.
    Unavailable,
}

/// The cluster backplane could not be asked (Redis unreachable, queue full, stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable;

/// What the SSE transport asks of other nodes. Implemented by the cluster glue.
pub trait SseRemote: Send + Sync + 'static {
    /// This node's id.
    fn node_id(&self) -> &str;

    /// This node holds the stream of `session` (`Some`) or no longer does (`None`). Queued in
    /// order with everything else this node sends; never waits.
    fn register(&self, session: &str, entry: Option<SseEntry>);

    /// Resolves once everything queued before it reached Redis (`false`: it did not).
    fn settled(&self) -> RemoteFuture<bool>;

    /// The node holding `session`, if any does.
    fn owner(&self, session: &str) -> RemoteFuture<Result<Option<SseOwnerEntry>, Unreachable>>;

    /// Relays `request` for `session` to `node` and waits (bounded) for the answer.
    fn relay(&self, node: &str, session: &str, request: Bytes) -> RemoteFuture<SseRelayAnswer>;

    /// Asks `node` to give `session` up (a resume landed here) and waits (bounded) for what
    /// it kept for the session.
    fn takeover(&self, node: &str, session: &str) -> RemoteFuture<SseRelayAnswer>;

    /// Answers relay or takeover `corr` of node `reply_to`. Queued; never waits.
    fn answer(&self, reply_to: &str, corr: u64, answer: Bytes);

    /// Puts `raw` (an SSE event, wire-exact) from session `from` on the stream of session `to`,
    /// held by `node`; `Ok(false)` when no node listened (the owner died).
    fn raw_signal(
        &self,
        node: &str,
        from: &str,
        to: &str,
        raw: Bytes,
    ) -> RemoteFuture<Result<bool, Unreachable>>;

    /// Whether `user` is in the cluster roster of `server`.
    fn in_roster(&self, server: &str, user: &str) -> RemoteFuture<Result<bool, Unreachable>>;
}

/// What other nodes' SSE traffic asks of the SSE transport. Implementations must not block:
/// anything that waits is spawned.
pub trait SseInbound: Send + Sync + 'static {
    /// A request for local session `session`, relayed by node `reply_to`; answer it with
    /// [`SseRemote::answer`] and `corr`.
    fn relay(&self, corr: u64, reply_to: String, session: String, request: Bytes);

    /// Node `reply_to` takes local session `session` over: drop it and answer what it kept
    /// with [`SseRemote::answer`] and `corr`.
    fn takeover(&self, corr: u64, reply_to: String, session: String);

    /// A signal event for local session `to`, wire-exact.
    fn raw_signal(&self, from: String, to: String, raw: Bytes);

    /// The cluster roster of `server` changed (or was refetched).
    fn roster_changed(&self, server: &str);
}
