//! `GET /api/link-metadata?url=`: title, description, image and site name of a page, fetched
//! through the outbound guard ([`crate::outbound`]), read with html5ever's spec tokenizer, and
//! cached in memory ([`PreviewCache`]: a TTL and an entry bound). The HTML is parsed on Tokio's
//! blocking pool, never on the reactor. Off (503 `UNAVAILABLE`) when
//! the variables file sets `linkPreviews` to false.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use signalbox_protocol::http::{ApiErrorCode, LinkMetadata};
use url::Url;
use warp::http::Method;

use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::http::ApiFailure;
use crate::outbound::Accept;
use crate::outbound::Outbound;

/// The most of a page read for its metadata (the head is at its start).
pub const MAX_PAGE_BYTES: u64 = 512 * 1024;
/// How long a preview is served from the cache.
pub const CACHE_TTL: Duration = Duration::from_secs(10 * 60);
/// The most previews cached.
pub const CACHE_ENTRIES: usize = 1024;
/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// The services of `/api/link-metadata`.
pub struct LinkMetadataApi {
    /// The outbound guard every fetch goes through.
    pub outbound: Outbound,
    /// Cached previews.
    pub previews: Arc<PreviewCache>,
    /// `linkPreviews`: whether previews are fetched at all.
    pub enabled: bool,
}

/// This family's routes.
pub fn routes() -> Vec<Route<LinkMetadataApi>> {
    vec![
        Route::new(
            Method::GET,
            "/api/link-metadata",
            AuthRule::Read,
            "Title, description, image and site name of the page at `?url=` (through the outbound guard; cached).",
            handler!(link_metadata),
        )
        .query(&[("url", true)])
        .answers(body!(LinkMetadata)),
    ]
}

/// The `url` query parameter of an outbound route, trimmed and bounded.
pub fn url_param(req: &Req) -> Result<String, ApiFailure> {
    let url = req
        .query
        .iter()
        .find(|(k, _)| k == "url")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiFailure::bad_request("query `url` is required"))?;
    if url.len() > MAX_URL_LEN {
        return Err(ApiFailure::bad_request(format!(
            "query `url` is longer than {MAX_URL_LEN} bytes"
        )));
    }
    Ok(url)
}

/// `GET /api/link-metadata`.
pub async fn link_metadata(api: Arc<LinkMetadataApi>, req: Req) -> Result<Reply, ApiFailure> {
    if !api.enabled {
        return Err(ApiFailure::new(
            ApiErrorCode::Unavailable,
            "link previews are switched off by the operator (linkPreviews)",
        ));
    }
    let url = url_param(&req)?;
    if let Some(hit) = api.previews.get(&url) {
        return Reply::ok(&hit);
    }
    let limits = api.outbound.limits(MAX_PAGE_BYTES).cutting_off();
    let fetched = api.outbound.get(&url, Accept::Html, limits).await?;
    let page = fetched.url.clone();
    let charset = fetched.charset.clone();
    let bytes = fetched.bytes().await?;
    // Tokenizing up to MAX_PAGE_BYTES of HTML is CPU work: the blocking pool, not the reactor.
    let requested = url.clone();
    let metadata =
        tokio::task::spawn_blocking(move || preview(&bytes, charset.as_deref(), &page, requested))
            .await
            .map_err(|e| ApiFailure::internal(&e))?;
    api.previews.put(url, metadata.clone());
    Reply::ok(&metadata)
}

/// Previews by requested URL, each for [`CACHE_TTL`], at most [`CACHE_ENTRIES`].
#[derive(Debug)]
pub struct PreviewCache {
    entries: Mutex<HashMap<String, (Instant, LinkMetadata)>>,
    ttl: Duration,
    capacity: usize,
}

impl Default for PreviewCache {
    fn default() -> Self {
        Self::new(CACHE_TTL, CACHE_ENTRIES)
    }
}

impl PreviewCache {
    /// An empty cache.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// The most entries it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A fresh preview of `url`.
    pub fn get(&self, url: &str) -> Option<LinkMetadata> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(url)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, m)| m.clone())
    }

    /// Stores a preview, dropping expired entries, then the oldest, when full.
    pub fn put(&self, url: String, metadata: LinkMetadata) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&url) {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            while entries.len() >= self.capacity {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => entries.remove(&k),
                    None => break,
                };
            }
        }
        entries.insert(url, (Instant::now(), metadata));
    }

    /// Entries held (fresh or not).
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `charset` names a Latin-1 family encoding (decoded byte for byte).
fn is_latin1(charset: &str) -> bool {
    matches!(
        charset.trim().to_ascii_lowercase().as_str(),
        "iso-8859-1" | "latin1" | "l1" | "windows-1252" | "cp1252" | "us-ascii" | "ascii"
    )
}

/// The page's text: UTF-8 (invalid bytes replaced) unless `charset` is a Latin-1 family one.
fn decode(bytes: &[u8], charset: Option<&str>) -> String {
    if charset.is_some_and(is_latin1) {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// The preview of the page `bytes` served at `page` (the URL after redirects) with the
/// `charset` of its `Content-Type`, for the asked `url`. Without a charset there, a
/// `<meta charset>` (or `http-equiv` content type) naming a Latin-1 family encoding makes the
/// page decoded again that way.
pub fn preview(bytes: &[u8], charset: Option<&str>, page: &Url, url: String) -> LinkMetadata {
    let mut collected = collect(&decode(bytes, charset));
    if charset.is_none() && collected.charset.as_deref().is_some_and(is_latin1) {
        collected = collect(&decode(bytes, collected.charset.as_deref()));
    }
    build(collected, page, url)
}

/// What the tokenizer saw that matters for a preview.
#[derive(Debug, Default)]
struct Collected {
    in_title: bool,
    title_done: bool,
    title: String,
    base: Option<String>,
    charset: Option<String>,
    metas: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct Sink(RefCell<Collected>);

/// Records a `<meta>` with a `property`, `name` or `itemprop` key and a `content` (at most 256).
fn collect_meta(c: &mut Collected, tag: &Tag) {
    if c.metas.len() >= 256 {
        return;
    }
    let key = attr(tag, "property")
        .or_else(|| attr(tag, "name"))
        .or_else(|| attr(tag, "itemprop"));
    if let (Some(key), Some(content)) = (key, attr(tag, "content")) {
        let key = key.trim().to_ascii_lowercase();
        let content: String = content.chars().take(4096).collect();
        c.metas.push((key, content));
    }
}

fn attr<'a>(tag: &'a Tag, name: &str) -> Option<&'a str> {
    tag.attrs
        .iter()
        .find(|a| &*a.name.local == name)
        .map(|a| &*a.value)
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut c = self.0.borrow_mut();
        match token {
            Token::TagToken(tag) => {
                let start = tag.kind == TagKind::StartTag;
                match &*tag.name {
                    "title" if start => {
                        if !c.title_done {
                            c.in_title = true;
                        }
                        return TokenSinkResult::RawData(RawKind::Rcdata);
                    }
                    "title" if c.in_title => {
                        c.in_title = false;
                        c.title_done = true;
                    }
                    "meta" if start && c.charset.is_none() => {
                        c.charset = attr(&tag, "charset").map(str::to_owned).or_else(|| {
                            attr(&tag, "http-equiv")
                                .filter(|h| h.eq_ignore_ascii_case("content-type"))
                                .and_then(|_| attr(&tag, "content"))
                                .and_then(|v| v.split_once("charset="))
                                .map(|(_, cs)| cs.trim_matches(['"', '\'', ' ']).to_owned())
                        });
                        collect_meta(&mut c, &tag);
                    }
                    "meta" if start => collect_meta(&mut c, &tag),
                    "base" if start && c.base.is_none() => {
                        c.base = attr(&tag, "href").map(str::to_owned);
                    }
                    "script" if start => return TokenSinkResult::RawData(RawKind::ScriptData),
                    "style" | "xmp" | "iframe" | "noembed" | "noframes" if start => {
                        return TokenSinkResult::RawData(RawKind::Rawtext);
                    }
                    "textarea" if start => return TokenSinkResult::RawData(RawKind::Rcdata),
                    "plaintext" if start => return TokenSinkResult::Plaintext,
                    _ => {}
                }
            }
            Token::CharacterTokens(text) if c.in_title && c.title.len() < 4096 => {
                c.title.push_str(&text);
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Collapses white space and bounds the length; `None` when nothing is left.
fn clean(text: &str, max_chars: usize) -> Option<String> {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return None;
    }
    let mut out: String = collapsed.chars().take(max_chars).collect();
    if collapsed.chars().count() > max_chars {
        out.push('…');
    }
    Some(out)
}

/// Runs the HTML tokenizer over `text` and keeps what a preview needs.
fn collect(text: &str) -> Collected {
    let tokenizer = Tokenizer::new(Sink::default(), TokenizerOpts::default());
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from_slice(text));
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    tokenizer.sink.0.into_inner()
}

/// The preview of the HTML `text` served at `page` (the URL after redirects), for the asked
/// `url`.
pub fn extract(text: &str, page: &Url, url: String) -> LinkMetadata {
    build(collect(text), page, url)
}

fn build(c: Collected, page: &Url, url: String) -> LinkMetadata {
    let meta = |keys: &[&str]| {
        keys.iter().find_map(|k| {
            c.metas
                .iter()
                .find(|(key, v)| key == k && !v.trim().is_empty())
                .map(|(_, v)| v.as_str())
        })
    };
    let base = c
        .base
        .as_deref()
        .and_then(|b| page.join(b).ok())
        .unwrap_or_else(|| page.clone());
    let image = meta(&[
        "og:image",
        "og:image:url",
        "og:image:secure_url",
        "twitter:image",
        "twitter:image:src",
        "image",
    ])
    .and_then(|src| base.join(src.trim()).ok())
    .filter(|u| matches!(u.scheme(), "http" | "https") && u.as_str().len() <= MAX_URL_LEN)
    .map(String::from);
    LinkMetadata {
        url,
        title: meta(&["og:title", "twitter:title"])
            .and_then(|t| clean(t, 300))
            .or_else(|| clean(&c.title, 300)),
        description: meta(&["og:description", "twitter:description", "description"])
            .and_then(|d| clean(d, 1000)),
        image,
        site_name: meta(&["og:site_name", "application-name"]).and_then(|s| clean(s, 100)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn page() -> Url {
        Url::parse("https://example.com/posts/1").unwrap()
    }

    #[test]
    fn opengraph_wins_over_twitter_and_html() {
        let html = r#"<!doctype html><html><head>
            <title>Plain &amp; simple</title>
            <meta name="twitter:title" content="Twitter title">
            <meta property="og:title" content="  OG
               title &quot;quoted&quot; ">
            <meta name="description" content="Plain description">
            <meta property="og:image" content="/img/cover.png">
            <meta property="og:site_name" content="Example">
            </head><body></body></html>"#;
        let m = extract(html, &page(), "u".into());
        assert_eq!(m.title.as_deref(), Some("OG title \"quoted\""));
        assert_eq!(m.description.as_deref(), Some("Plain description"));
        assert_eq!(
            m.image.as_deref(),
            Some("https://example.com/img/cover.png")
        );
        assert_eq!(m.site_name.as_deref(), Some("Example"));
    }

    #[test]
    fn falls_back_to_twitter_then_title() {
        let html = r#"<head><title>Only &lt;title&gt;</title>
            <meta name="twitter:description" content="Tw desc">
            <meta name="twitter:image" content="https://cdn.example/x.jpg"></head>"#;
        let m = extract(html, &page(), "u".into());
        assert_eq!(m.title.as_deref(), Some("Only <title>"));
        assert_eq!(m.description.as_deref(), Some("Tw desc"));
        assert_eq!(m.image.as_deref(), Some("https://cdn.example/x.jpg"));
        assert_eq!(m.site_name, None);
    }

    #[test]
    fn script_and_svg_contents_are_not_metadata() {
        let html = r#"<head><script>var s = "<meta property='og:title' content='evil'><title>no</title>";</script>
            <style>/* <meta property="og:description" content="css"> */</style>
            <title>Real</title></head><body><svg><title>icon</title></svg>
            <meta property="og:image" content="javascript:alert(1)"></body>"#;
        let m = extract(html, &page(), "u".into());
        assert_eq!(m.title.as_deref(), Some("Real"));
        assert_eq!(m.description, None);
        assert_eq!(m.image, None, "non-http image URLs are dropped");
    }

    #[test]
    fn base_href_and_truncation() {
        let long = "x".repeat(2000);
        let html = format!(
            r#"<base href="https://static.example/a/"><meta property="og:image" content="b.png"><meta property="og:description" content="{long}">"#
        );
        let m = extract(&html, &page(), "u".into());
        assert_eq!(m.image.as_deref(), Some("https://static.example/a/b.png"));
        assert_eq!(m.description.unwrap().chars().count(), 1001);
        assert_eq!(extract("", &page(), "u".into()).title, None);
        assert_eq!(
            decode(&[0x63, 0x61, 0x66, 0xe9], Some("iso-8859-1")),
            "café"
        );
    }

    #[test]
    fn meta_charset_decides_when_the_header_does_not() {
        let latin = b"<meta charset=\"windows-1252\"><title>Caf\xe9</title>";
        assert_eq!(
            preview(latin, None, &page(), "u".into()).title.as_deref(),
            Some("Caf\u{e9}")
        );
        let equiv = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=ISO-8859-1\"><title>\xe9</title>";
        assert_eq!(
            preview(equiv, None, &page(), "u".into()).title.as_deref(),
            Some("\u{e9}")
        );
        // The header wins; UTF-8 stays UTF-8.
        let utf8 = "<meta charset=\"latin1\"><title>caf\u{e9}</title>".as_bytes();
        assert_eq!(
            preview(utf8, Some("utf-8"), &page(), "u".into())
                .title
                .as_deref(),
            Some("caf\u{e9}")
        );
    }

    #[test]
    fn cache_expires_and_is_bounded() {
        let m = |u: &str| LinkMetadata {
            url: u.into(),
            title: None,
            description: None,
            image: None,
            site_name: None,
        };
        let cache = PreviewCache::new(Duration::from_secs(60), 2);
        cache.put("a".into(), m("a"));
        cache.put("b".into(), m("b"));
        cache.put("c".into(), m("c"));
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a").is_none(), "the oldest is dropped");
        assert_eq!(cache.get("c").unwrap().url, "c");
        let expired = PreviewCache::new(Duration::ZERO, 2);
        expired.put("a".into(), m("a"));
        assert!(expired.get("a").is_none());
    }
}
