//! `view_server`: the roster and plugin requirements of a server without joining it (no
//! `user_joined`), through the one admission path ([`access::admit`]). Public servers without
//! a password may be viewed by anyone not banned; private and password servers by members only
//! (viewing never bypasses a password); a refusal is `access_denied`.

use signalbox_protocol::ServerEnvelope;
use signalbox_protocol::ws::{AccessDenied, ViewServer};

use super::{Handled, Next, Refusal, Session, plugin_requirements, validate};
use crate::directory::access::{self, AdmissionRequest, Entry};

/// Handles `view_server`.
pub async fn handle(session: &Session, view: ViewServer) -> Handled {
    let user = session.user()?.clone();
    validate::id("serverId", view.server_id.as_str())?;
    let server = view.server_id.clone();
    session.hub().has_room_for(session.key(), &server, true)?;
    let request = AdmissionRequest {
        entry: Entry::View,
        server: view.server_id,
        user,
        authenticated: true,
        durable: true,
        password: None,
        invite_code: None,
        display_name: None,
        mode: session.state.auth.mode,
    };
    let decision = access::admit(&*session.state.directory, &session.state.passwords, request)
        .await
        .map_err(|e| Refusal::internal("the view could not be checked", e))?;
    if let Err(reason) = decision {
        session.send(&ServerEnvelope::AccessDenied(AccessDenied {
            server_id: server,
            reason,
        }));
        return Ok(Next::Continue);
    }
    session.hub().view_server(session.key(), &server)?;
    plugin_requirements::send(session, &server).await?;
    Ok(Next::Continue)
}
