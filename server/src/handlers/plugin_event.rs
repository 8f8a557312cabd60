//! `plugin_event`: broadcast to the server only when the plugin is registered there, the event
//! declared, the payload within the manifest's `maxPayloadBytes` and valid against the event's
//! JSON Schema ([`crate::plugins::PluginRegistry::check_event`]); otherwise
//! `INVALID_PLUGIN_EVENT` naming what failed. `sourceUserId` and `emittedAt` are set by the
//! server. The sender's other devices receive it too (they run the plugin as well).

use signalbox_protocol::ws::{PluginEvent, PluginEventBroadcast};
use signalbox_protocol::{ErrorCode, ServerEnvelope, TimestampMs};

use super::{Handled, Next, Refusal, Session, validate};
use crate::hub::{Exclude, HubError};

/// Handles `plugin_event`.
pub async fn handle(session: &Session, event: PluginEvent) -> Handled {
    validate::id("serverId", event.server_id.as_str())?;
    validate::id("pluginId", event.plugin_id.as_str())?;
    validate::id("eventName", &event.event_name)?;
    if let Some(source) = &event.source_plugin_user_id {
        validate::id("sourcePluginUserId", source)?;
    }
    // Membership first: a non-member learns nothing about the server's plugins.
    if !session.hub().is_joined(session.key(), &event.server_id) {
        return Err(HubError::NotJoined(event.server_id).into());
    }
    let verdict = session
        .state
        .plugins
        .check_event(&*session.state.directory, &event)
        .await
        .map_err(|e| Refusal::internal("the plugin event could not be checked", e))?;
    if let Err(rejection) = verdict {
        return Err(Refusal::new(
            ErrorCode::InvalidPluginEvent,
            rejection.to_string(),
        ));
    }
    let server = event.server_id.clone();
    session.hub().broadcast(
        session.key(),
        &server,
        Exclude::SenderConnection,
        |sender| {
            ServerEnvelope::PluginEvent(PluginEventBroadcast {
                server_id: event.server_id,
                plugin_id: event.plugin_id,
                event_name: event.event_name,
                payload: event.payload,
                source_plugin_user_id: event.source_plugin_user_id,
                source_user_id: sender.user_id.clone(),
                emitted_at: TimestampMs::now(),
            })
        },
    )?;
    Ok(Next::Continue)
}
