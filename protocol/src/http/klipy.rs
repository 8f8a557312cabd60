//! `GET /api/klipy/gifs/search` and `GET /api/klipy/gifs/trending`: GIF search through the
//! Klipy API, with the operator's key kept on the server.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// One GIF of a [`GifPage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct Gif {
    /// Klipy's id of the GIF.
    pub id: String,
    /// Its title (may be empty).
    pub title: String,
    /// URL of the full GIF.
    pub url: String,
    /// Width of the full GIF, in pixels.
    pub width: u32,
    /// Height of the full GIF, in pixels.
    pub height: u32,
    /// URL of a smaller rendition for result grids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub preview_url: Option<String>,
}

/// 200 body of `GET /api/klipy/gifs/search` and `GET /api/klipy/gifs/trending`: one page of
/// results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct GifPage {
    /// This page's GIFs.
    pub items: Vec<Gif>,
    /// This page's number (from 1).
    pub page: u32,
    /// Whether `page + 1` has more.
    pub has_next: bool,
}
