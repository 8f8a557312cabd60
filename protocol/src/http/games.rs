//! `/api/games`: the catalogue of games a client may show as activity.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::TimestampMs;

/// One game of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct Game {
    /// Stable id (lowercase letters, digits, `-`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Process names that identify the running game.
    pub executables: Vec<String>,
    /// An icon URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub icon_url: Option<String>,
    /// When the entry last changed.
    pub updated_at: TimestampMs,
}

/// Body of `PUT /api/games/{gameId}` (operator only): creates or replaces a game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct UpsertGameRequest {
    /// Display name.
    pub name: String,
    /// Process names that identify the running game.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub executables: Option<Vec<String>>,
    /// An icon URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub icon_url: Option<String>,
}

/// 200 body of `GET /api/games`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct GameList {
    /// This page's games.
    pub items: Vec<Game>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub next_cursor: Option<String>,
}
