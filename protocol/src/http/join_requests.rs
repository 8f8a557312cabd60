//! `/api/servers/{serverId}/join-requests`: asking to join a private server.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::{ServerId, TimestampMs, UserId};

/// Where a join request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum JoinRequestStatus {
    /// Waiting for the owner or a moderator.
    Pending,
    /// Approved: the requester is a member.
    Approved,
    /// Rejected.
    Rejected,
    /// Withdrawn by the requester.
    Withdrawn,
}

/// Body of `POST /api/servers/{serverId}/join-requests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct CreateJoinRequest {
    /// A note for the moderators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub message: Option<String>,
}

/// One join request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    /// The request's id.
    pub id: String,
    /// The server asked.
    pub server_id: ServerId,
    /// Who asks.
    pub user_id: UserId,
    /// A note for the moderators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub message: Option<String>,
    /// Where it stands.
    pub status: JoinRequestStatus,
    /// When it was made.
    pub created_at: TimestampMs,
    /// When it was approved, rejected or withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub decided_at: Option<TimestampMs>,
}

/// 200 body of `GET /api/servers/{serverId}/join-requests` (pending ones, owner or moderator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequestList {
    /// This page's requests.
    pub items: Vec<JoinRequest>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub next_cursor: Option<String>,
}
