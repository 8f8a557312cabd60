//! The seam through which a withdrawal of access reaches other nodes (cluster mode, issue
//! 13): two narrow hooks, so `withdrawal` and the cluster glue never import each other (`app`
//! plugs one into the other).
//!
//! Owns: [`WithdrawOrder`] (what was withdrawn from whom: the fields a node trusts, nothing
//! else), the [`WithdrawRemote`] trait (tell the other nodes) and the [`WithdrawInbound`] trait
//! (apply an order another node announced).
//!
//! Never: decides access (the directory does; a `Recheck` makes each node ask it), holds
//! state, or carries anything secret.

use signalbox_protocol::{AccessDeniedReason, ServerId, UserId};

/// One withdrawal of access, as every node applies it to its own live connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithdrawOrder {
    /// Every connection of one user leaves the server (ban, kick, self-removal).
    User {
        /// The user.
        user: UserId,
        /// Sent as `access_denied.reason`.
        reason: AccessDeniedReason,
    },
    /// Every connection leaves the server (it was deleted).
    Everyone {
        /// Sent as `access_denied.reason`.
        reason: AccessDeniedReason,
    },
    /// The server's rules changed (made private, new password): each node asks the directory
    /// who of its live connections still passes.
    Recheck,
}

/// Tells the other nodes about a withdrawal this node has applied.
pub trait WithdrawRemote: Send + Sync + 'static {
    /// Announces `order` for `server`. Never blocks; a failure is logged, not returned (the
    /// local withdrawal has happened; docs/cluster.md says what a node that missed it does).
    fn announce(&self, server: &ServerId, order: &WithdrawOrder);
}

/// Applies a withdrawal another node announced, to this node's live connections only.
pub trait WithdrawInbound: Send + Sync + 'static {
    /// Applies `order` for `server` here. Never blocks (a recheck runs in a spawned task);
    /// applying the same order twice is harmless.
    fn apply(&self, server: ServerId, order: WithdrawOrder);
}
