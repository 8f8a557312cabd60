//! `GET /api/proxy?url=`: an image fetched for a client through the outbound guard
//! ([`crate::outbound`]), so the client's address never reaches the image's host.
//!
//! Raster images only (`image/*` but SVG, which can carry script), at most [`MAX_IMAGE_BYTES`],
//! streamed to the client as it arrives (never buffered whole; a body that runs past the limit
//! is cut off). The upstream's media type is passed on; no other upstream header is.

use std::sync::Arc;

use warp::http::header::{self, HeaderValue};
use warp::http::{Method, StatusCode};

use super::link_metadata::url_param;
use super::{AuthRule, Reply, Req, Route, handler};
use crate::http::ApiFailure;
use crate::outbound::Accept;
use crate::outbound::Outbound;

/// The largest image proxied.
pub const MAX_IMAGE_BYTES: u64 = 8 * 1024 * 1024;

/// The services of the image proxy.
#[derive(Clone)]
pub struct ProxyApi {
    /// The outbound guard every fetch goes through.
    pub outbound: Outbound,
}

/// This family's routes.
pub fn routes() -> Vec<Route<ProxyApi>> {
    vec![
        Route::new(
            Method::GET,
            "/api/proxy",
            AuthRule::Read,
            "The image at `?url=`, fetched through the outbound guard (raster image types only, size and time bounded, streamed).",
            handler!(proxy),
        )
        .query(&[("url", true)])
        .answers_media("image/*"),
    ]
}

/// `GET /api/proxy`.
pub async fn proxy(api: Arc<ProxyApi>, req: Req) -> Result<Reply, ApiFailure> {
    let url = url_param(&req)?;
    let limits = api.outbound.limits(MAX_IMAGE_BYTES);
    let fetched = api.outbound.get(&url, Accept::Image, limits).await?;
    let content_type = HeaderValue::from_str(&fetched.content_type)
        .map_err(|_| ApiFailure::internal(&"unrepresentable content type"))?;
    let body = warp::reply::stream(fetched.into_stream());
    let mut response = warp::reply::Reply::into_response(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(Reply::Raw(response))
}
