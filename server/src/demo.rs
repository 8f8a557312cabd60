//! `GET /demo`: the demo page (a typed-client chat and WebRTC data-channel demo), served from
//! files embedded at build time. The page and its stylesheet are hand-written in `server/demo/`;
//! its JavaScript (`server/demo/js/`) is built from `bindings/typescript` (`client/`, `demo/`) by
//! `npm run build:demo` and committed, and `npm test` fails when it is stale. Nothing is fetched
//! from anywhere else at run time (the Content-Security-Policy says so).

use warp::Filter;
use warp::http::{HeaderValue, header};

use crate::http::embedded::{self, EmbeddedFile};

/// Every embedded file: path under `/demo/`, content type, bytes.
const FILES: &[EmbeddedFile] = &[
    ("", HTML, include_bytes!("../demo/index.html")),
    ("index.html", HTML, include_bytes!("../demo/index.html")),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../demo/style.css"),
    ),
    (
        "js/client/index.js",
        JS,
        include_bytes!("../demo/js/client/index.js"),
    ),
    (
        "js/client/backoff.js",
        JS,
        include_bytes!("../demo/js/client/backoff.js"),
    ),
    (
        "js/client/sse.js",
        JS,
        include_bytes!("../demo/js/client/sse.js"),
    ),
    (
        "js/demo/app.js",
        JS,
        include_bytes!("../demo/js/demo/app.js"),
    ),
];
const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Same origin only: the page talks to this server's REST API and WebSocket and nothing else.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The embedded file at `path` (relative to `/demo/`), if any.
pub fn file(path: &str) -> Option<(&'static str, &'static [u8])> {
    embedded::find(FILES, path)
}

/// `GET /demo` and `GET /demo/<file>`; anything else under `/demo` is rejected (so it falls
/// through to the 404 of the filter tree).
pub fn routes() -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone
{
    warp::get()
        .and(warp::path("demo"))
        .and(warp::path::tail())
        .and_then(|tail: warp::path::Tail| async move {
            match file(tail.as_str()) {
                Some((content_type, body)) => Ok(reply(content_type, body)),
                None => Err(warp::reject::not_found()),
            }
        })
}

fn reply(content_type: &'static str, body: &'static [u8]) -> warp::reply::Response {
    let mut response = embedded::reply(content_type, body);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_the_page_loads_is_embedded() {
        let (_, html) = file("").expect("index");
        let html = std::str::from_utf8(html).expect("utf-8");
        for part in html.split("src=\"/demo/").skip(1) {
            let path = part.split('"').next().expect("quoted");
            assert!(file(path).is_some(), "{path} is not embedded");
        }
    }

    #[test]
    fn every_relative_import_of_the_embedded_scripts_is_embedded() {
        let mut imports = 0;
        for (path, _, body) in FILES.iter().filter(|(p, _, _)| p.ends_with(".js")) {
            let text = std::str::from_utf8(body).expect("utf-8");
            let mut dir: Vec<&str> = path.split('/').collect();
            dir.pop();
            for spec in text.split(" from \"").skip(1) {
                let spec = spec.split('"').next().expect("quoted");
                let mut parts = dir.clone();
                for segment in spec.split('/') {
                    match segment {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let resolved = parts.join("/");
                assert!(
                    file(&resolved).is_some(),
                    "{path} imports {spec} ({resolved}), which is not embedded"
                );
                imports += 1;
            }
        }
        assert!(imports >= 3, "the page script imports the client modules");
    }
}
