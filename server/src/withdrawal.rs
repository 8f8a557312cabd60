//! Withdrawal: when the directory takes access away, every live connection that no longer
//! passes the access rules leaves the server's room at once, on every transport.
//!
//! Owns the three ways access is withdrawn, as methods of the [`Withdrawal`] service (the hub,
//! the SSE transport and the directory, nothing more): from one user (a ban, a kick or
//! self-removal: [`Withdrawal::user`]), from everyone (the server is deleted:
//! [`Withdrawal::everyone`]), and from whoever no longer passes the rules after the server
//! changed (made private, password set: [`Withdrawal::recheck`], which asks the directory's
//! `still_admitted` for each live user). A WebSocket connection gets
//! `access_denied` with the reason and the others `user_left` ([`crate::hub::Hub::evict`]); an
//! SSE session ends (its stream closes) and the others get `user_left` / a new `roster`.
//!
//! In cluster mode each of the three is also announced to the other nodes through
//! [`WithdrawRemote`] (attached by `app`), and an order another node announced is applied here
//! through [`WithdrawInbound`]: the same local withdrawal, never announced again. A `recheck`
//! order carries no decisions: each node asks the directory about its own connections.
//!
//! Never decides access itself (the rules are [`access`]'s) and never writes the directory:
//! callers withdraw after their change is committed.

use signalbox_protocol::sse::{SessionId, session_user_id};
use signalbox_protocol::{AccessDeniedReason, ServerId, TimestampMs, UserId};

use std::sync::{Arc, OnceLock};

use crate::directory::access::Entry;
use crate::directory::{Directory, DirectoryError};
use crate::hub::Hub;
use crate::hub::withdraw_remote::{WithdrawInbound, WithdrawOrder, WithdrawRemote};
use crate::transport::sse::SseTransport;

/// Withdraws access from live connections, on every transport.
#[derive(Clone)]
pub struct Withdrawal {
    hub: Hub,
    sse: SseTransport,
    directory: Arc<dyn Directory>,
    /// The other nodes (cluster mode only; empty standalone).
    remote: Arc<OnceLock<Arc<dyn WithdrawRemote>>>,
}

impl std::fmt::Debug for Withdrawal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Withdrawal").finish_non_exhaustive()
    }
}

impl Withdrawal {
    /// Withdraws through `hub` (WebSocket connections) and `sse` (SSE sessions), asking
    /// `directory` who still passes the rules.
    pub fn new(hub: Hub, sse: SseTransport, directory: Arc<dyn Directory>) -> Self {
        Self {
            hub,
            sse,
            directory,
            remote: Arc::default(),
        }
    }

    /// Announces every withdrawal made here to the other nodes from now on (cluster mode;
    /// once: a second call is ignored).
    pub fn attach_cluster(&self, remote: Arc<dyn WithdrawRemote>) {
        let _ = self.remote.set(remote);
    }

    fn announce(&self, server: &ServerId, order: &WithdrawOrder) {
        if let Some(remote) = self.remote.get() {
            remote.announce(server, order);
        }
    }

    /// Takes every live connection of `user` out of `server`: WebSocket connections with
    /// `access_denied` (`reason`), SSE sessions admitted as `user`. Returns how many.
    /// Announced to the other nodes (cluster mode).
    pub fn user(&self, server: &ServerId, user: &UserId, reason: AccessDeniedReason) -> usize {
        let order = WithdrawOrder::User {
            user: user.clone(),
            reason,
        };
        self.announce(server, &order);
        self.user_here(server, user, reason)
    }

    fn user_here(&self, server: &ServerId, user: &UserId, reason: AccessDeniedReason) -> usize {
        let sessions: Vec<SessionId> = self
            .sse
            .sessions_in(server)
            .into_iter()
            .filter(|(_, principal)| principal.as_ref() == Some(user))
            .map(|(id, _)| id)
            .collect();
        self.hub.evict(server, Some(user), reason) + self.sse.evict(&sessions)
    }

    /// Takes every live connection out of `server` (deleted). Returns how many.
    /// Announced to the other nodes (cluster mode).
    pub fn everyone(&self, server: &ServerId, reason: AccessDeniedReason) -> usize {
        self.announce(server, &WithdrawOrder::Everyone { reason });
        self.everyone_here(server, reason)
    }

    fn everyone_here(&self, server: &ServerId, reason: AccessDeniedReason) -> usize {
        let sessions: Vec<SessionId> = self
            .sse
            .sessions_in(server)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        self.sse.evict(&sessions) + self.hub.evict(server, None, reason)
    }

    /// Re-checks every live connection of `server` against the rules as they are now, without
    /// credentials, and withdraws those that fail (a non-member after the server went private or
    /// got a password; a viewer of a server that got a password). Returns how many were removed
    /// here. Announced to the other nodes first (cluster mode): each rechecks its own.
    pub async fn recheck(&self, server: &ServerId) -> Result<usize, DirectoryError> {
        self.announce(server, &WithdrawOrder::Recheck);
        self.recheck_here(server).await
    }

    async fn recheck_here(&self, server: &ServerId) -> Result<usize, DirectoryError> {
        let sse = &self.sse;
        let users: Vec<(UserId, bool)> = self
            .hub
            .users_in(server)
            .into_iter()
            .filter(|(user, _)| !sse.is_session(user.as_str()))
            .collect();
        let sessions = sse.sessions_in(server);
        // The hub's users, then the SSE sessions (each as the user it joined as), in one read.
        let mut entries: Vec<(UserId, Entry)> = users
            .into_iter()
            .map(|(user, joined)| (user, if joined { Entry::Join } else { Entry::View }))
            .collect();
        let user_count = entries.len();
        entries.extend(sessions.iter().map(|(id, principal)| {
            let user = principal.clone().unwrap_or_else(|| session_user_id(id));
            (user, Entry::Join)
        }));
        let decisions = self
            .directory
            .still_admitted(
                &crate::op!("recheck"),
                server,
                entries.clone(),
                TimestampMs::now(),
            )
            .await?;
        let mut decisions = decisions.into_iter();
        let users_out: Vec<(UserId, AccessDeniedReason)> = entries
            .into_iter()
            .take(user_count)
            .zip(decisions.by_ref())
            .filter_map(|((user, _), decision)| decision.err().map(|reason| (user, reason)))
            .collect();
        let sessions_out: Vec<SessionId> = sessions
            .into_iter()
            .zip(decisions)
            .filter_map(|((id, _), decision)| decision.is_err().then_some(id))
            .collect();
        let mut removed = sse.evict(&sessions_out);
        for (user, reason) in users_out {
            removed += self.hub.evict(server, Some(&user), reason);
        }
        Ok(removed)
    }
}

impl WithdrawInbound for Withdrawal {
    fn apply(&self, server: ServerId, order: WithdrawOrder) {
        match order {
            WithdrawOrder::User { user, reason } => {
                self.user_here(&server, &user, reason);
            }
            WithdrawOrder::Everyone { reason } => {
                self.everyone_here(&server, reason);
            }
            WithdrawOrder::Recheck => {
                let this = self.clone();
                tokio::spawn(async move {
                    if let Err(error) = this.recheck_here(&server).await {
                        tracing::warn!(%error, "recheck announced by another node failed");
                    }
                });
            }
        }
    }
}
