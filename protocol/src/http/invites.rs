//! `/api/servers/{serverId}/invites` and `/api/invites/{code}`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::servers::ServerSummary;
use crate::ids::{ServerId, TimestampMs, UserId};

/// Body of `POST /api/servers/{serverId}/invites` (owner or moderator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct CreateInviteRequest {
    /// Lifetime in seconds; absent means it never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub expires_in_seconds: Option<u32>,
    /// How many times it may be accepted; absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub max_uses: Option<u32>,
}

/// An invite, as its creator sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    /// The unguessable code.
    pub code: String,
    /// The server it admits to.
    pub server_id: ServerId,
    /// Who made it.
    pub created_by: UserId,
    /// When.
    pub created_at: TimestampMs,
    /// When it stops working; absent means never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub expires_at: Option<TimestampMs>,
    /// How many times it may be accepted; absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub max_uses: Option<u32>,
    /// How many times it was accepted.
    pub uses: u32,
}

/// 200 body of `GET /api/invites/{code}`: the server an invite leads to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct InviteResolution {
    /// The code.
    pub code: String,
    /// The server's public summary.
    pub server: ServerSummary,
    /// When the invite stops working; absent means never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub expires_at: Option<TimestampMs>,
}
