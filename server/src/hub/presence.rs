//! Presence: each user's profile and status, and the `status_update` fan-out.
//!
//! Owns: [`Profile`] (per user: the latest `identify` of any of its connections wins), the
//! user's [`UserStatus`] (per user, `online` after its first `identify`), and the status
//! fan-out: one `status_update` per recipient connection across every server the user joined,
//! however many of those servers the recipient shares with it.

use std::collections::HashSet;
use std::sync::Arc;

use signalbox_protocol::ws::{Identify, StatusUpdateBroadcast, UserSummary};
use signalbox_protocol::{ServerEnvelope, TimestampMs, UserId, UserStatus};

use super::HubError;
use super::registry::{ConnKey, Ctx, Exclude, Fanout, Origin, State};

/// What other users see of a user besides its status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// The name shown to other users.
    pub display_name: String,
    /// The user's profile text.
    pub description: Option<String>,
    /// When the profile last changed, ms since epoch.
    pub profile_updated_at: Option<TimestampMs>,
    /// The connection scope given at `identify` (typically the signal URL).
    pub connection_scope: Option<String>,
}

impl Profile {
    /// The profile fields of an `identify` (its `oderId` and `token` are the caller's concern).
    pub fn from_identify(identify: &Identify) -> Self {
        Self {
            display_name: identify.display_name.clone(),
            description: identify.description.clone(),
            profile_updated_at: identify.profile_updated_at,
            connection_scope: identify.connection_scope.clone(),
        }
    }

    /// The roster entry of user `id` with this profile.
    pub fn summary(&self, id: &UserId, status: UserStatus) -> UserSummary {
        UserSummary {
            oder_id: id.clone(),
            display_name: self.display_name.clone(),
            description: self.description.clone(),
            status,
            profile_updated_at: self.profile_updated_at,
            connection_scope: self.connection_scope.clone(),
        }
    }
}

/// A user's roster entry, serialized (cached in its record until profile or status change).
pub(super) fn summary_json(
    id: &UserId,
    profile: &Profile,
    status: UserStatus,
) -> Result<Arc<str>, HubError> {
    serde_json::to_string(&profile.summary(id, status))
        .map(Arc::from)
        .map_err(|e| HubError::Serialize(e.to_string()))
}

impl State {
    /// Sets the status of the connection's user and queues `status_update` once for every
    /// joined connection sharing a joined server with it (minus `exclude`).
    pub(super) fn set_status(
        &mut self,
        ctx: Ctx<'_>,
        key: ConnKey,
        status: UserStatus,
        exclude: Exclude,
    ) -> Result<Fanout, HubError> {
        let user_id = self.user_of(key)?.clone();
        let user = self
            .users
            .get_mut(&user_id)
            .ok_or(HubError::NotIdentified)?;
        user.summary_json = summary_json(&user_id, &user.profile, status)?;
        user.status = status;
        let origin = Origin {
            key,
            user_tag: user.tag,
        };
        let user = &*user;
        let envelope = ServerEnvelope::StatusUpdate(StatusUpdateBroadcast {
            oder_id: user_id.clone(),
            status,
        });
        let frame = ctx.frame(&envelope)?;
        let joined = user
            .scopes
            .iter()
            .filter(|(_, scope)| scope.joined > 0)
            .filter_map(|(server, _)| self.servers.get(server));
        // Dedupe only when there is something to dedupe: most users share one server.
        let mut seen = HashSet::new();
        let dedupe = user.scopes.values().filter(|s| s.joined > 0).count() > 1;
        let recipients = joined
            .flat_map(|record| record.members.iter())
            .filter(|(k, m)| !origin.excludes(**k, m, exclude))
            .filter(|(k, _)| !dedupe || seen.insert(**k))
            .map(|(_, m)| &m.outbox);
        let fanout = ctx.deliver(envelope.wire_type(), &frame, recipients);
        ctx.metrics.record_fanout(fanout.attempted());
        Ok(fanout)
    }
}
