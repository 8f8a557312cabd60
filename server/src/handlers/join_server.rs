//! `join_server`: admits the user to a server through the one admission path
//! ([`access::admit`], shared with SSE), then joins it in
//! the hub (`server_users` to this connection, `user_joined` to the others when this is the
//! user's first connection there), then sends `plugin_requirements`.
//!
//! A refusal is `access_denied` with its reason, and the socket stays open. Wrong passwords are
//! counted per client address ([`crate::auth::attempts`]); past the limit a guess is answered
//! `RATE_LIMITED` without being checked. Joining a public
//! server or using an invite makes the user a member in the directory, so later joins need no
//! password or invite (and a ban or a role change applies to them).

use signalbox_protocol::ws::{AccessDenied, JoinServer};
use signalbox_protocol::{AccessDeniedReason, ErrorCode, ServerEnvelope};

use super::{Handled, Next, Refusal, Session, plugin_requirements, validate};
use crate::directory::access::{self, AdmissionRequest, Entry};

/// Handles `join_server`.
pub async fn handle(session: &Session, join: JoinServer) -> Handled {
    let user = session.user()?.clone();
    validate::id("serverId", join.server_id.as_str())?;
    let server = join.server_id.clone();
    session.hub().has_room_for(session.key(), &server, false)?;
    let guessing = join.password.is_some();
    if guessing
        && let Err(wait) = session
            .state
            .password_attempts
            .check(session.remote_ip, std::time::Instant::now())
    {
        return Err(Refusal::new(
            ErrorCode::RateLimited,
            format!(
                "too many wrong passwords from this address; try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    let request = AdmissionRequest {
        entry: Entry::Join,
        server: server.clone(),
        user,
        // `identify` already required a token in `auth: required`.
        authenticated: true,
        durable: true,
        password: join.password,
        invite_code: join.invite_code,
        display_name: session.display_name.clone(),
        mode: session.state.auth.mode,
    };
    let decision = access::admit(&*session.state.directory, &session.state.passwords, request)
        .await
        .map_err(|e| Refusal::internal("the join could not be checked", e))?;
    if let Err(reason) = decision {
        if reason == AccessDeniedReason::WrongPassword {
            session
                .state
                .password_attempts
                .record_failure(session.remote_ip, std::time::Instant::now());
        }
        session.send(&ServerEnvelope::AccessDenied(AccessDenied {
            server_id: server,
            reason,
        }));
        return Ok(Next::Continue);
    }
    match session.hub().remote() {
        None => {
            session.hub().join_server(session.key(), &server)?;
        }
        // Cluster mode: one `server_users`, the roster over every node.
        Some(remote) => {
            session
                .hub()
                .join_server_with_remote_roster(session.key(), &server)?;
            remote.send_roster(session.key(), &server).await;
        }
    }
    plugin_requirements::send(session, &server).await?;
    Ok(Next::Continue)
}
