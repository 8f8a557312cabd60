//! Withdrawal: when the directory takes access away, every live connection that no longer
//! passes the access rules leaves the server's room at once, on every transport.
//!
//! Owns the three ways access is withdrawn: from one user (a ban, a kick or self-removal:
//! [`user`]), from everyone (the server is deleted: [`everyone`]), and from whoever no longer
//! passes the rules after the server changed (made private, password set: [`recheck`], which
//! asks [`access::still_admitted`] for each live user). A WebSocket connection gets
//! `access_denied` with the reason and the others `user_left` ([`crate::hub::Hub::evict`]); an
//! SSE session ends (its stream closes) and the others get `user_left` / a new `roster`.
//!
//! Never decides access itself (the rules are [`access`]'s) and never writes the directory:
//! callers withdraw after their change is committed.

use signalbox_protocol::sse::{SessionId, session_user_id};
use signalbox_protocol::{AccessDeniedReason, ServerId, UserId};

use crate::app::AppState;
use crate::directory::DirectoryError;
use crate::directory::access::{self, Entry};

/// Takes every live connection of `user` out of `server`: WebSocket connections with
/// `access_denied` (`reason`), SSE sessions admitted as `user`. Returns how many.
pub fn user(
    state: &AppState,
    server: &ServerId,
    user: &UserId,
    reason: AccessDeniedReason,
) -> usize {
    let sessions: Vec<SessionId> = state
        .sse
        .sessions_in(server)
        .into_iter()
        .filter(|(_, principal)| principal.as_ref() == Some(user))
        .map(|(id, _)| id)
        .collect();
    state.hub.evict(server, Some(user), reason) + state.sse.evict(&sessions)
}

/// Takes every live connection out of `server` (deleted). Returns how many.
pub fn everyone(state: &AppState, server: &ServerId, reason: AccessDeniedReason) -> usize {
    let sessions: Vec<SessionId> = state
        .sse
        .sessions_in(server)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    state.sse.evict(&sessions) + state.hub.evict(server, None, reason)
}

/// Re-checks every live connection of `server` against the rules as they are now, without
/// credentials, and withdraws those that fail (a non-member after the server went private or
/// got a password; a viewer of a server that got a password). Returns how many were removed.
pub async fn recheck(state: &AppState, server: &ServerId) -> Result<usize, DirectoryError> {
    let sse = &state.sse;
    let users: Vec<(UserId, bool)> = state
        .hub
        .users_in(server)
        .into_iter()
        .filter(|(user, _)| !sse.is_session(user.as_str()))
        .collect();
    let sessions = sse.sessions_in(server);
    let checked = server.clone();
    let (users_out, sessions_out) = state
        .db
        .call(move |conn| {
            let mut users_out = Vec::new();
            for (user, joined) in users {
                let entry = if joined { Entry::Join } else { Entry::View };
                if let Err(reason) = access::still_admitted(conn, &checked, &user, entry)? {
                    users_out.push((user, reason));
                }
            }
            let mut sessions_out = Vec::new();
            for (id, principal) in sessions {
                let user = principal.unwrap_or_else(|| session_user_id(&id));
                if access::still_admitted(conn, &checked, &user, Entry::Join)?.is_err() {
                    sessions_out.push(id);
                }
            }
            Ok::<_, DirectoryError>((users_out, sessions_out))
        })
        .await?;
    let mut removed = sse.evict(&sessions_out);
    for (user, reason) in users_out {
        removed += state.hub.evict(server, Some(&user), reason);
    }
    Ok(removed)
}
