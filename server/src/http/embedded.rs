//! Files embedded in the binary at build time and served as they are (`/demo`, `/admin`).
//!
//! Owns the lookup and the headers every embedded file gets (its content type, `no-cache`,
//! `nosniff`). Each page adds its own Content-Security-Policy; never reads the file system.

use warp::Reply;
use warp::http::{HeaderValue, header};

/// One embedded file: path under its page's prefix, content type, bytes.
pub type EmbeddedFile = (&'static str, &'static str, &'static [u8]);

/// The file at `path` among `files`, if any: `(content type, bytes)`.
pub fn find(files: &[EmbeddedFile], path: &str) -> Option<(&'static str, &'static [u8])> {
    files
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, content_type, body)| (*content_type, *body))
}

/// The response for one embedded file.
pub fn reply(content_type: &'static str, body: &'static [u8]) -> warp::reply::Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
