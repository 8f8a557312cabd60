//! Resync: after Redis lost data, dropped this node's subscription, or reaped this node,
//! the node registers again everything it holds and hands fresh rosters to its members.
//!
//! Owns: what a resync replays (from the [`super::mirror`]), in which order (node channel,
//! stale users taken back, users, SSE sessions (stale ones taken back), then each server: subscribe, restart its version,
//! `rejoin.lua`, snapshot to the sink), and taking back servers Redis lists for this node
//! that it no longer holds (`rejoin.lua` with an empty share).
//!
//! Never: runs concurrently with a join or a leave (it holds the membership lock), or
//! invents members: Redis ends up holding exactly what the mirror holds for this node.

use std::collections::HashMap;

use super::ClusterError;
use super::inner::Inner;
use super::mirror::Member;
use super::scripts::{RosterSnapshot, parse_roster};
use super::subscriber::Input;

impl Inner {
    /// `rejoin.lua`: this node's whole share of `server` (empty: none), replacing what Redis
    /// held for it; joins and leaves for the difference are announced by the script.
    pub(super) async fn rejoin(
        &self,
        server: &str,
        members: &HashMap<String, Member>,
    ) -> Result<RosterSnapshot, ClusterError> {
        let mut cmd = self.scripts.rejoin.call(self.keys.prefix());
        cmd.arg(self.node_id())
            .arg(server)
            .arg(self.settings.node_ttl_ms);
        for (user, member) in members {
            cmd.arg(user)
                .arg(member.connections)
                .arg(member.entry.as_ref());
        }
        parse_roster(server, self.publisher.call(cmd).await?)
    }

    /// Users Redis routes to this node that it no longer has (a disconnect lost during an
    /// outage) are taken back.
    async fn take_back_users(&self, users: &HashMap<String, u32>) -> Result<(), ClusterError> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.keys.node_users(self.node_id()));
        for user in self.strings(cmd).await? {
            if !users.contains_key(&user) {
                self.identify(&user, 0).await?;
            }
        }
        Ok(())
    }

    /// Re-registers everything this node holds: the node channel and server channels, takes
    /// back what Redis still holds for it but it no longer does, registers every identified
    /// user and rejoins every server with its whole local share; then hands fresh rosters to
    /// the sink.
    pub(super) async fn resync(&self) -> Result<(), ClusterError> {
        let _serial = self.membership.lock().await;
        let (users, servers, sessions) = {
            let mirror = self.lock_mirror();
            (
                mirror.users.clone(),
                mirror.servers.clone(),
                mirror.sse.clone(),
            )
        };
        let mut sub = self.subscriber.clone();
        sub.subscribe(self.keys.node_channel(self.node_id()))
            .await
            .map_err(|_| ClusterError::Unavailable)?;
        self.take_back_users(&users).await?;
        for (user, connections) in &users {
            self.identify(user, *connections).await?;
        }
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.keys.node_sse(self.node_id()));
        for session in self.strings(cmd).await? {
            if !sessions.contains_key(&session) {
                self.del_sse(&session).await?;
            }
        }
        for (session, entry) in &sessions {
            self.put_sse(session, entry).await?;
        }
        let none = HashMap::new();
        for server in self.servers_of(self.node_id()).await? {
            if !servers.contains_key(&server) {
                self.rejoin(&server, &none).await?;
            }
        }
        for (server, members) in &servers {
            sub.subscribe(self.keys.server_channel(server))
                .await
                .map_err(|_| ClusterError::Unavailable)?;
            self.input
                .send(Input::Restart(server.clone()))
                .await
                .map_err(|_| ClusterError::Stopped)?;
            let snap = self.rejoin(server, members).await?;
            self.input
                .send(Input::Snapshot(snap, true))
                .await
                .map_err(|_| ClusterError::Stopped)?;
        }
        Ok(())
    }
}
