//! `view_server`: the roster and plugin requirements of a server without joining it (no
//! `user_joined`). Public servers may be viewed by anyone not banned, private ones by members
//! only ([`access::view`]); a refusal is `access_denied`.

use signalbox_protocol::ServerEnvelope;
use signalbox_protocol::ws::{AccessDenied, ViewServer};

use super::{Handled, Next, Refusal, Session, plugin_requirements, validate};
use crate::directory::access;

/// Handles `view_server`.
pub async fn handle(session: &Session, view: ViewServer) -> Handled {
    let user = session.user()?.clone();
    validate::id("serverId", view.server_id.as_str())?;
    let server = view.server_id.clone();
    let decision = session
        .state
        .db
        .call(move |conn| access::view(conn, &view.server_id, Some(&user)))
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
