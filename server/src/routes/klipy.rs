//! `GET /api/klipy/gifs/search` and `GET /api/klipy/gifs/trending`: GIF search through the
//! Klipy API, the operator's key (`klipyApiKey`) kept on the server, every request through the
//! outbound guard ([`crate::outbound`]). Off (503 `UNAVAILABLE`) without a key.
//!
//! The upstream is `{klipyBaseUrl}/{key}/gifs/{search|trending}`; the key is in the path, so no
//! upstream URL is ever logged or put in an error message.

use std::sync::Arc;

use serde_json::Value;
use signalbox_protocol::http::{ApiErrorCode, Gif, GifPage};
use url::Url;
use warp::http::Method;

use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::config::Secret;
use crate::http::ApiFailure;
use crate::outbound::Outbound;
use crate::outbound::{Accept, OutboundError};

/// The largest Klipy answer read.
pub const MAX_ANSWER_BYTES: u64 = 2 * 1024 * 1024;
/// Results per page by default.
pub const DEFAULT_PER_PAGE: u32 = 24;
/// The most results per page.
pub const MAX_PER_PAGE: u32 = 50;
/// The longest search text.
pub const MAX_QUERY_CHARS: usize = 200;
/// The `customer_id` sent to Klipy: one per server, so no user is identified to it.
pub const CUSTOMER_ID: &str = "signalbox";

/// The services of the Klipy routes.
pub struct KlipyApi {
    /// The outbound guard every fetch goes through.
    pub outbound: Outbound,
    /// `klipyApiKey` (`None`: the routes answer 503).
    pub api_key: Option<Secret>,
    /// `klipyBaseUrl`.
    pub base_url: String,
}

/// This family's routes.
pub fn routes() -> Vec<Route<KlipyApi>> {
    vec![
        Route::new(
            Method::GET,
            "/api/klipy/gifs/search",
            AuthRule::Read,
            "GIFs matching `?q=` (`page`, `perPage` up to 50, `locale`), from Klipy through the outbound guard.",
            handler!(search),
        )
        .query(&[("q", true), ("page", false), ("perPage", false), ("locale", false)])
        .answers(body!(GifPage)),
        Route::new(
            Method::GET,
            "/api/klipy/gifs/trending",
            AuthRule::Read,
            "Trending GIFs (`page`, `perPage` up to 50, `locale`), from Klipy through the outbound guard.",
            handler!(trending),
        )
        .query(&[("page", false), ("perPage", false), ("locale", false)])
        .answers(body!(GifPage)),
    ]
}

/// `GET /api/klipy/gifs/search`.
pub async fn search(api: Arc<KlipyApi>, req: Req) -> Result<Reply, ApiFailure> {
    let q = query(&req, "q")
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .ok_or_else(|| ApiFailure::bad_request("query `q` is required"))?;
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiFailure::bad_request(format!(
            "query `q` is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let q = q.to_owned();
    fetch(&api, &req, "search", Some(&q)).await
}

/// `GET /api/klipy/gifs/trending`.
pub async fn trending(api: Arc<KlipyApi>, req: Req) -> Result<Reply, ApiFailure> {
    fetch(&api, &req, "trending", None).await
}

fn query<'a>(req: &'a Req, name: &str) -> Option<&'a str> {
    req.query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn number(req: &Req, name: &str, default: u32, max: u32) -> Result<u32, ApiFailure> {
    match query(req, name) {
        None => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiFailure::bad_request(format!(
                "query `{name}` must be an integer from 1 to {max}"
            ))),
        },
    }
}

async fn fetch(
    api: &KlipyApi,
    req: &Req,
    kind: &str,
    q: Option<&str>,
) -> Result<Reply, ApiFailure> {
    let Some(key) = &api.api_key else {
        return Err(ApiFailure::new(
            ApiErrorCode::Unavailable,
            "GIF search is off: the operator has set no klipyApiKey",
        ));
    };
    let page = number(req, "page", 1, 1000)?;
    let per_page = number(req, "perPage", DEFAULT_PER_PAGE, MAX_PER_PAGE)?;
    let locale = query(req, "locale");
    if let Some(locale) = locale
        && (locale.is_empty()
            || locale.len() > 10
            || !locale
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(ApiFailure::bad_request(
            "query `locale` must be a language tag such as `en` or `en_US`",
        ));
    }
    let mut url = Url::parse(&api.base_url).map_err(|e| ApiFailure::internal(&e))?;
    url.path_segments_mut()
        .map_err(|()| ApiFailure::internal(&"klipyBaseUrl cannot be a base"))?
        .pop_if_empty()
        .extend([key.expose(), "gifs", kind]);
    {
        let mut pairs = url.query_pairs_mut();
        if let Some(q) = q {
            pairs.append_pair("q", q);
        }
        pairs
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &per_page.to_string())
            .append_pair("customer_id", CUSTOMER_ID);
        if let Some(locale) = locale {
            pairs.append_pair("locale", locale);
        }
    }
    let limits = api.outbound.limits(MAX_ANSWER_BYTES);
    let fetched = api.outbound.get(url.as_str(), Accept::Json, limits).await?;
    let bytes = fetched.bytes().await?;
    let answer: Value = serde_json::from_slice(&bytes)
        .map_err(|_| OutboundError::Protocol("Klipy's answer is not JSON".into()))?;
    Reply::ok(&gif_page(&answer, page)?)
}

/// Reads Klipy's `{"result": true, "data": {"data": [...], "current_page", "has_next"}}`,
/// keeping the GIFs that have a URL.
pub fn gif_page(answer: &Value, page: u32) -> Result<GifPage, OutboundError> {
    let data = answer
        .get("data")
        .filter(|_| answer.get("result") != Some(&Value::Bool(false)))
        .ok_or_else(|| OutboundError::Protocol("Klipy answered without data".into()))?;
    let items = data
        .get("data")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(gif).collect())
        .unwrap_or_default();
    Ok(GifPage {
        items,
        page: data
            .get("current_page")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(page),
        has_next: data
            .get("has_next")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

fn rendition<'a>(file: &'a Value, sizes: &[&str]) -> Option<&'a Value> {
    sizes.iter().find_map(|size| {
        file.get(size)
            .and_then(|s| s.get("gif"))
            .filter(|g| g.get("url").and_then(Value::as_str).is_some())
    })
}

fn dimension(v: &Value, name: &str) -> u32 {
    v.get(name)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

fn gif(item: &Value) -> Option<Gif> {
    if item
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "gif")
    {
        return None;
    }
    let id = match item.get("id")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let file = item.get("file")?;
    let full = rendition(file, &["hd", "md", "sm", "xs"])?;
    let url = full.get("url")?.as_str()?.to_owned();
    let preview_url = rendition(file, &["sm", "xs", "md"])
        .and_then(|p| p.get("url"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(Gif {
        id,
        title: item
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect(),
        url,
        width: dimension(full, "width"),
        height: dimension(full, "height"),
        preview_url,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_klipy_pages_and_skips_ads_and_broken_items() {
        let answer = json!({"result": true, "data": {"data": [
            {"id": 7, "title": "Cat", "type": "gif", "file": {
                "hd": {"gif": {"url": "https://c.example/hd.gif", "width": 480, "height": 270}},
                "sm": {"gif": {"url": "https://c.example/sm.gif", "width": 220, "height": 124}}}},
            {"id": "ad-1", "type": "ad", "content": "<iframe>"},
            {"id": 8, "type": "gif", "file": {}},
            {"id": 9, "file": {"md": {"gif": {"url": "https://c.example/md.gif"}}}}
        ], "current_page": 2, "has_next": true}});
        let page = gif_page(&answer, 1).expect("page");
        assert_eq!(page.page, 2);
        assert!(page.has_next);
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.items[0].id, "7");
        assert_eq!(page.items[0].width, 480);
        assert_eq!(
            page.items[0].preview_url.as_deref(),
            Some("https://c.example/sm.gif")
        );
        assert_eq!(page.items[1].url, "https://c.example/md.gif");
        assert!(gif_page(&json!({"result": false}), 1).is_err());
    }
}
