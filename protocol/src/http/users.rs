//! `/api/users/*`: public profiles.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::codes::UserStatus;
use crate::ids::{TimestampMs, UserId};

/// 200 body of `GET /api/users/{oderId}`: the last known public profile of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    /// The user's identity.
    pub oder_id: UserId,
    /// The name shown for the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub display_name: Option<String>,
    /// A short self-description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub description: Option<String>,
    /// When the profile last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub profile_updated_at: Option<TimestampMs>,
    /// The user's status, present only while the user is online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub status: Option<UserStatus>,
}
