//! `GET /api/link-metadata?url=`: a preview of a page, fetched by the server through its
//! outbound guard.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// 200 body of `GET /api/link-metadata`: what a page says about itself in its OpenGraph,
/// Twitter card and plain HTML tags (OpenGraph first). Absent fields were not found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct LinkMetadata {
    /// The URL that was asked for.
    pub url: String,
    /// The page's title (`og:title`, `twitter:title`, then `<title>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub title: Option<String>,
    /// Its description (`og:description`, `twitter:description`, then `<meta name=description>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub description: Option<String>,
    /// An absolute http(s) URL of its image (`og:image`, `twitter:image`), resolved against
    /// the page; load it through `GET /api/proxy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub image: Option<String>,
    /// The site's name (`og:site_name`, `application-name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub site_name: Option<String>,
}
