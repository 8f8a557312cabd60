//! `plugin_requirements`: sent after `server_users` on every successful `join_server` and
//! `view_server`, listing the plugins registered for the server.

use signalbox_protocol::ws::PluginRequirements;
use signalbox_protocol::{ServerEnvelope, ServerId};

use super::{Refusal, Session};

/// Queues `plugin_requirements` for `server`.
pub async fn send(session: &Session, server: &ServerId) -> Result<(), Refusal> {
    let plugins = session
        .state
        .plugins
        .requirements(&*session.state.directory, server)
        .await
        .map_err(|e| Refusal::internal("plugin requirements could not be read", e))?;
    session.send(&ServerEnvelope::PluginRequirements(PluginRequirements {
        server_id: server.clone(),
        plugins,
    }));
    Ok(())
}
