//! Server icon versions: who holds which icon, so a client can fetch a newer one peer to peer.
//!
//! Owns: the `(server, user) -> iconUpdatedAt` book fed by `server_icon_available` and read by
//! `server_icon_sync_request`. Never: the icon bytes (they travel peer to peer in the forwarded
//! `server_icon_peer_*` envelopes).
//!
//! Rules:
//! - a record belongs to a user (any of its connections may announce; the newest version wins)
//!   and is dropped when the user's last connection closes;
//! - only a connection joined to the server may announce its icon (`FORBIDDEN` otherwise), and a
//!   user may hold at most `HubConfig::max_icon_records_per_user` records (bounding memory
//!   against a client announcing icons for endless made-up servers);
//! - a sync answer lists peers other than the asker holding a strictly newer version, newest
//!   first (ties by `oderId`), at most `HubConfig::max_icon_peers` of them, and only peers that
//!   currently joined or view the server, so the asker may reach them under the forwarding rule.

use signalbox_protocol::ws::{IconPeer, ServerIconSyncPeers};
use signalbox_protocol::{ServerId, TimestampMs, UserId};

use super::HubError;
use super::hashing::HashMap;
use super::registry::{ConnKey, Ctx, State};

/// Icon versions by server, then by user.
#[derive(Debug, Default)]
pub(super) struct IconBook {
    by_server: HashMap<ServerId, HashMap<UserId, TimestampMs>>,
}

impl IconBook {
    /// Drops every record of `user` (its last connection closed).
    pub(super) fn forget_user(&mut self, user: &UserId, servers: &[ServerId]) {
        for server in servers {
            if let Some(holders) = self.by_server.get_mut(server) {
                holders.remove(user);
                if holders.is_empty() {
                    self.by_server.remove(server);
                }
            }
        }
    }

    /// Records held, summed over servers.
    pub(super) fn len(&self) -> usize {
        self.by_server.values().map(HashMap::len).sum()
    }
}

impl State {
    /// Records that the connection's user holds `server`'s icon at `version`.
    pub(super) fn icon_available(
        &mut self,
        ctx: Ctx<'_>,
        key: ConnKey,
        server: &ServerId,
        version: TimestampMs,
    ) -> Result<(), HubError> {
        let user_id = self.user_of(key)?.clone();
        if !self
            .conns
            .get(&key)
            .is_some_and(|c| c.joined.contains(server))
        {
            return Err(HubError::NotJoined(server.clone()));
        }
        let user = self
            .users
            .get_mut(&user_id)
            .ok_or(HubError::NotIdentified)?;
        if !user.icon_servers.contains(server) {
            if user.icon_servers.len() >= ctx.config.max_icon_records_per_user {
                return Err(HubError::IconLimit);
            }
            user.icon_servers.push(server.clone());
        }
        let held = self
            .icons
            .by_server
            .entry(server.clone())
            .or_default()
            .entry(user_id)
            .or_insert(version);
        *held = (*held).max(version);
        Ok(())
    }

    /// The peers holding a newer icon of `server` than `version`, newest first.
    pub(super) fn icon_peers(
        &self,
        ctx: Ctx<'_>,
        key: ConnKey,
        server: &ServerId,
        version: TimestampMs,
    ) -> Result<ServerIconSyncPeers, HubError> {
        let asker = self.user_of(key)?;
        let mut peers: Vec<IconPeer> = self
            .icons
            .by_server
            .get(server)
            .into_iter()
            .flatten()
            .filter(|(user, held)| {
                **held > version
                    && *user != asker
                    && self
                        .users
                        .get(*user)
                        .is_some_and(|u| u.scopes.contains_key(server))
            })
            .map(|(user, held)| IconPeer {
                oder_id: user.clone(),
                icon_updated_at: *held,
            })
            .collect();
        peers.sort_unstable_by(|a, b| {
            b.icon_updated_at
                .cmp(&a.icon_updated_at)
                .then_with(|| a.oder_id.cmp(&b.oder_id))
        });
        peers.truncate(ctx.config.max_icon_peers);
        Ok(ServerIconSyncPeers {
            server_id: server.clone(),
            peers,
        })
    }
}
