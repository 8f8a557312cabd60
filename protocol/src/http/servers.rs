//! `/api/servers/*`: the server directory, bans and passwords.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::{ServerId, TimestampMs, UserId};

/// Who may find and join a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum ServerVisibility {
    /// Listed in the directory; anyone identified may join (a password may still be required).
    Public,
    /// Unlisted; only the owner, moderators and members (by invite or approved request) may join.
    Private,
}

/// A member's role in a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    /// Created the server; may do everything.
    Owner,
    /// May ban, invite and decide join requests.
    Moderator,
    /// Joined through an invite or an approved join request.
    Member,
}

/// Body of `POST /api/servers`: creates a server owned by the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct CreateServerRequest {
    /// The server's id; the server makes a UUID when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub id: Option<ServerId>,
    /// Display name (1 to 100 characters).
    pub name: String,
    /// A short description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub description: Option<String>,
    /// Search tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub tags: Option<Vec<String>>,
    /// Public (default) or private.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub visibility: Option<ServerVisibility>,
}

/// Body of `PATCH /api/servers/{serverId}`: the fields to change (owner only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServerRequest {
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub name: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub description: Option<String>,
    /// New tags (replacing the old ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub tags: Option<Vec<String>>,
    /// New visibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub visibility: Option<ServerVisibility>,
}

/// A server as the directory shows it (never its password).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ServerSummary {
    /// The server's id.
    pub id: ServerId,
    /// Display name.
    pub name: String,
    /// A short description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub description: Option<String>,
    /// Search tags.
    pub tags: Vec<String>,
    /// Public or private.
    pub visibility: ServerVisibility,
    /// The owner's identity.
    pub owner_id: UserId,
    /// Whether joining needs a password.
    pub has_password: bool,
    /// Owner, moderators and members recorded in the directory.
    pub member_count: u32,
    /// Users currently joined over a realtime transport.
    pub online_count: u32,
    /// When the server was created.
    pub created_at: TimestampMs,
}

/// 200 body of `GET /api/servers`: one page of public servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ServerList {
    /// This page's servers.
    pub items: Vec<ServerSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub next_cursor: Option<String>,
}

/// Body of `POST /api/servers/{serverId}/bans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct BanRequest {
    /// The user to ban.
    pub user_id: UserId,
    /// Why, for the moderators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reason: Option<String>,
}

/// One ban of a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct Ban {
    /// The banned user.
    pub user_id: UserId,
    /// Why, for the moderators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reason: Option<String>,
    /// Who banned them.
    pub banned_by: UserId,
    /// When.
    pub created_at: TimestampMs,
}

/// 200 body of `GET /api/servers/{serverId}/bans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct BanList {
    /// This page's bans.
    pub items: Vec<Ban>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub next_cursor: Option<String>,
}

/// Body of `PUT /api/servers/{serverId}/password` (clear it with `DELETE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct SetPasswordRequest {
    /// The new password (stored only as an Argon2 hash, never returned).
    #[ts(as = "String")]
    pub password: crate::Secret,
}

/// 200 body of writes that return nothing else (delete, unban, password set/clear).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OkResponse {
    /// Always `true`.
    pub ok: bool,
}

/// One membership of a user in a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    /// The server.
    pub server_id: ServerId,
    /// The member.
    pub user_id: UserId,
    /// Their role.
    pub role: MemberRole,
}

/// Body of `PUT /api/servers/{serverId}/members/{userId}` (owner only): makes a user a
/// moderator or a plain member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct SetRoleRequest {
    /// `moderator` or `member` (there is one owner, the creator).
    pub role: MemberRole,
}

/// 200 body of `GET /api/servers/{serverId}/members`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct MemberList {
    /// This page's members.
    pub items: Vec<Membership>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub next_cursor: Option<String>,
}
