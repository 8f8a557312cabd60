//! The Redis backplane of cluster mode (issue 13; docs/design/cluster-plan.md §3): fan-out,
//! forwarding and rosters across signalbox nodes on one Redis 7.
//!
//! Owns: the key schema ([`keys`]), the wire message ([`wire`]), the Lua scripts that change
//! rosters and announce the change atomically ([`scripts`]), the one ordered publisher per
//! node ([`publisher`]), the subscriber and its [`Sink`] ([`subscriber`]), roster version
//! tracking ([`versions`]), heartbeat, epoch and reaper ([`heartbeat`]), what a resync
//! replays (`resync.rs`, from the node's [`mirror`]), the Redis connections ([`connect`]),
//! forward outcomes ([`forward`]), the devices hint ([`elsewhere`]), status change ids
//! ([`seen`]), per-connection roster floors ([`floor`]), SSE across nodes ([`sse`], with its
//! pending-relay table [`relay`]), withdrawals of access across nodes ([`withdraw`]), the numbers ([`metrics`]), and the node that ties them together ([`Backplane`], in
//! [`node`], over the state its tasks share, `inner.rs`).
//!
//! Never (outside [`glue`], its SSE part [`sse_glue`] and [`withdraw`]): knows the protocol's envelopes (frames and roster entries are
//! opaque bytes made by the hub), touches the hub, the handlers or the transports; never
//! blocks a caller on a full queue or logs the Redis URL. The hub plugs in through its
//! `Remote` hook, implemented in [`glue`] (the one module here that touches the hub); `app`
//! starts the backplane in `cluster.mode: "redis"`.
//!
//! # The glue contract (what the hub's cluster glue must do)
//!
//! One [`Backplane`] per process, started before the listener; dropping it is a crash as far
//! as the other nodes are concerned (they reap it after the node TTL). The hub stays the
//! owner of local delivery; the backplane only carries what crosses nodes.
//!
//! Calls, from the hub, with absolute counts (a resync replays them as they are):
//! - A connection identifies / closes: [`Backplane::identify`]`(user, n)` with the user's
//!   identified connections left on this node (`0` when none). Awaited off the hot path.
//! - A connection joins a server: [`Backplane::join`]`(server, user, n, entry)`. The
//!   **joining connection** gets one `server_users`: a [`Backplane::snapshot`] taken after the
//!   join reached Redis (the glue sends it, then `RosterFloor::sent_snapshot`; a snapshot
//!   older than the events already handed out is fetched again). Leaves, closes:
//!   [`Backplane::leave`]`(server, user, remaining)`, after `identify(user, 0)` when it was the
//!   user's last connection (unreachable before announced gone). Joins, leaves and resyncs
//!   are serialized node-wide; await them in the connection's task, never on the hub's loop.
//! - Status change: [`Backplane::set_status`]`(user, entry)`. Broadcast:
//!   [`Backplane::broadcast`] after delivering locally. Targeted envelope: if the target
//!   has local connections deliver to them, then [`Backplane::forward`] (unless
//!   [`ForwardOutcome::LocalOnly`]) and map the receipt: `TargetNotFound` with no local
//!   delivery is `TARGET_NOT_FOUND`, `Forbidden` is `FORBIDDEN`, `Unavailable` /
//!   `QueueFull` is `UNAVAILABLE`. These are sync (`try_send`): callable on hot paths; the
//!   receipt is awaited only where the sender needs the answer.
//! - SSE: [`Backplane::register_sse`] / [`Backplane::remove_sse`] as streams open and end;
//!   a `POST /api/signal` for a session held elsewhere: [`Backplane::sse_owner`] then
//!   [`Backplane::raw_signal`] or [`Backplane::relay`]; a resume held elsewhere:
//!   [`Backplane::takeover`].
//! - `/api/ready`: degraded while [`Backplane::is_up`] is false; `/api/health` ignores it.
//!   `/metrics`: [`Backplane::metrics`].
//!
//! Errors: a failed `identify`/`join`/`leave`/`set_status`/SSE registration needs no retry
//! from the glue: the mirror already holds the change and the next heartbeat resyncs Redis
//! from it. A failed `join` still leaves the connection joined locally (send it the local
//! view or `UNAVAILABLE`, the glue's choice; the resync's [`Inbound::Snapshot`] corrects it).
//!
//! What the [`Sink`] does with each [`Inbound`] (never blocking: `try_send` into outboxes):
//! - `Broadcast`: the frame to every local member of `server` except `sender`'s connections.
//! - `Forward`: the frame to every local connection of `target`.
//! - `Roster`: in version order, already deduplicated per node. It includes this node's own
//!   joins and leaves (they come back through Redis, and the glue must not announce them a
//!   second time): to each local member of `server` for which `RosterFloor::admit(server,
//!   version)` is true, as `user_joined` / `user_left`; `Status` (from another origin node)
//!   sends one `status_update` per connection over all the servers it shares with the user
//!   (the copies of one change share its change id).
//! - `Snapshot` (after a gap or a resync): `server_users` to every local member of the
//!   server, each connection's floor set to its version.
//! - `Relay`, `Takeover`, `RawSignal`: handed to the SSE transport, answered with
//!   [`Backplane::answer_relay`].
//! - `Withdraw`: applied to this node's connections by `withdrawal` ([`withdraw`]).

pub mod connect;
pub mod elsewhere;
pub mod floor;
pub mod forward;
pub mod glue;
pub mod heartbeat;
mod inner;
pub mod keys;
pub mod metrics;
pub mod mirror;
pub mod node;
pub mod publisher;
pub mod relay;
mod resync;
pub mod scripts;
pub mod seen;
pub mod settings;
pub mod sse;
pub mod sse_glue;
pub mod subscriber;
pub mod versions;
pub mod wire;
pub mod withdraw;

use bytes::Bytes;
use thiserror::Error;

pub use forward::{ForwardOutcome, ForwardReceipt};
pub use metrics::MetricsSnapshot;
pub use node::Backplane;
pub use scripts::RosterSnapshot;
pub use settings::ClusterSettings;
pub use sse::{RelayOutcome, SseOwner, SseSession};
pub use versions::{Change, RosterEvent};

/// Why a backplane call failed.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// A setting is out of bounds (the message names it).
    #[error("cluster settings: {0}")]
    Settings(String),
    /// The first connection to Redis failed.
    #[error("cannot connect to Redis: {0}")]
    Connect(#[source] redis::RedisError),
    /// Redis is unreachable right now (the call did not run).
    #[error("the cluster backplane is unreachable")]
    Unavailable,
    /// The publisher's queue is full.
    #[error("the cluster publish queue is full")]
    QueueFull,
    /// The backplane stopped.
    #[error("the cluster backplane stopped")]
    Stopped,
    /// Redis refused a command.
    #[error("Redis refused a command: {0}")]
    Server(String),
    /// A reply had an unexpected shape.
    #[error("unexpected {0} reply from Redis")]
    Reply(&'static str),
    /// An id is too long for the wire.
    #[error(transparent)]
    Encode(#[from] wire::TooLong),
}

/// What the subscriber hands to the node's local side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A frame for every local member of `server` but `sender`.
    Broadcast {
        /// The server.
        server: String,
        /// The sender (excluded).
        sender: String,
        /// The pre-serialized frame.
        frame: Bytes,
    },
    /// A frame for every local connection of `target`.
    Forward {
        /// The target user.
        target: String,
        /// The pre-serialized frame.
        frame: Bytes,
    },
    /// A roster change, in version order (`user_joined` / `user_left`).
    Roster(RosterEvent),
    /// A fresh roster after a gap or a resync (`server_users` for local members).
    Snapshot(RosterSnapshot),
    /// An SSE request relayed for a session whose stream this node holds; answer it with
    /// `Backplane::answer_relay(reply_to, corr, result)`.
    Relay {
        /// The correlation id to answer with.
        corr: u64,
        /// The node waiting for the answer.
        reply_to: String,
        /// The session the request is for.
        session: String,
        /// The request, as the SSE transport encoded it.
        request: Bytes,
    },
    /// A resume landed on another node: drop the session and answer its state with
    /// `Backplane::answer_relay(reply_to, corr, state)`.
    Takeover {
        /// The correlation id to answer with.
        corr: u64,
        /// The node taking the session over.
        reply_to: String,
        /// The session.
        session: String,
    },
    /// Another node withdrew access to `server` (`withdraw.rs` parses `order`; the node's own
    /// announcements never come back here).
    Withdraw {
        /// The server.
        server: String,
        /// The user, or empty when the order is not one user's.
        user: String,
        /// The order's scope and reason, as `withdraw.rs` encoded them.
        order: Bytes,
    },
    /// A signal for a local SSE session, to put on its stream as it came.
    RawSignal {
        /// The sending session.
        from: String,
        /// The local target session.
        to: String,
        /// The event, wire-exact.
        raw: Bytes,
    },
}

/// Where inbound traffic goes. Implemented by the hub's cluster glue (later) and by tests.
pub trait Sink: Send + Sync + 'static {
    /// Hands one event over. Must not block: bounded `try_send` into outboxes (a full client
    /// is the client's problem, closed alone), never an `.await` or a lock held for long.
    fn deliver(&self, event: Inbound);
}
