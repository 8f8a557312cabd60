//! `GET /admin`: the operator dashboard, and `GET /admin/stats`, the JSON snapshot it polls.
//!
//! The page (`server/admin/`: HTML, CSS, one hand-written script drawing small SVG charts) is
//! embedded at build time like `/demo`; nothing is fetched from anywhere else (the
//! Content-Security-Policy says so). Who may look is [`access`]'s to decide; what the snapshot
//! holds is [`stats`]'s. Never changes server state and never shows a secret or a token.

pub mod access;
pub mod stats;

use std::net::SocketAddr;
use std::sync::Arc;

use warp::http::{HeaderMap, HeaderValue, header};
use warp::{Filter, Reply};

use crate::auth::Authority;
use crate::http::ApiFailure;
use crate::http::embedded::{self, EmbeddedFile};
use crate::observe::Observed;

/// Every embedded file: path under `/admin/`, content type, bytes.
const FILES: &[EmbeddedFile] = &[
    ("", HTML, include_bytes!("../../admin/index.html")),
    ("index.html", HTML, include_bytes!("../../admin/index.html")),
    (
        "admin.css",
        "text/css; charset=utf-8",
        include_bytes!("../../admin/admin.css"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../admin/admin.js"),
    ),
];
const HTML: &str = "text/html; charset=utf-8";

/// Same origin only, no inline script or style.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// The path the page polls.
pub const STATS_PATH: &str = "stats";

/// The embedded file at `path` (relative to `/admin/`), if any.
pub fn file(path: &str) -> Option<(&'static str, &'static [u8])> {
    embedded::find(FILES, path)
}

/// `GET /admin`, `GET /admin/<file>` and `GET /admin/stats`; anything else under `/admin` is
/// `404 NOT_FOUND`. Reads `observed` only; `authority` checks an operator's token.
pub fn routes(
    observed: Arc<Observed>,
    authority: Authority,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::path("admin"))
        .and(warp::path::tail())
        .and(crate::peer::remote())
        .and(warp::header::headers_cloned())
        .map(
            move |tail: warp::path::Tail, remote: Option<SocketAddr>, headers: HeaderMap| {
                let operators = &observed.variables.operator_user_ids;
                let result = match tail.as_str() {
                    STATS_PATH => access::check_stats(operators, &authority, remote, &headers)
                        .map(|()| stats_reply(&observed)),
                    path => match file(path) {
                        Some((content_type, body)) => access::check_page(operators, remote)
                            .map(|()| embedded::reply(content_type, body)),
                        None => Err(ApiFailure::not_found("admin file")),
                    },
                };
                let mut response = result.unwrap_or_else(ApiFailure::into_response);
                secure_headers(response.headers_mut());
                response
            },
        )
}

fn stats_reply(observed: &Observed) -> warp::reply::Response {
    let mut response = warp::reply::json(&stats::snapshot(observed)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        let (_, html) = file("").expect("index");
        let html = std::str::from_utf8(html).expect("utf-8");
        let mut loaded = 0;
        for attr in ["src=\"/admin/", "href=\"/admin/"] {
            for part in html.split(attr).skip(1) {
                let path = part.split('"').next().expect("quoted");
                assert!(file(path).is_some(), "{path} is not embedded");
                loaded += 1;
            }
        }
        assert_eq!(loaded, 2, "the page loads its script and stylesheet");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing external"
        );
    }
}
