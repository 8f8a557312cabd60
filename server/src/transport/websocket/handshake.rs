//! The WebSocket opening handshake (RFC 6455, section 4.2), done here instead of by `warp::ws`
//! so the socket gets our own tungstenite configuration.
//!
//! Why not `warp::ws`: it exposes no read-buffer size, and tungstenite's default allocates a
//! 128 KiB read buffer per connection up front, which is most of an idle connection's memory.
//! The handshake itself is small: check the upgrade headers, answer `101` with the accept key,
//! and take the connection over from hyper once the response is out.

use futures_util::FutureExt;
use futures_util::future::OptionFuture;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::lazy_read::LazyReadBuffer;

/// A server-side WebSocket over a connection taken from hyper, read through a
/// [`LazyReadBuffer`] (no read-ahead held while idle).
pub type WsStream = WebSocketStream<LazyReadBuffer<TokioIo<Upgraded>>>;

/// A valid upgrade request, not answered yet.
pub struct Handshake {
    accept_key: String,
    on_upgrade: OnUpgrade,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake").finish_non_exhaustive()
    }
}

/// Matches a `GET` carrying a WebSocket upgrade (version 13); anything else is rejected so the
/// next filter (the 404 fallback) answers it.
pub fn handshake() -> impl Filter<Extract = (Handshake,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .and_then(
            |headers: HeaderMap, on_upgrade: Option<OnUpgrade>| async move {
                let accept_key = accept_key(&headers).ok_or_else(warp::reject::not_found)?;
                let on_upgrade = on_upgrade.ok_or_else(warp::reject::not_found)?;
                Ok::<_, warp::Rejection>(Handshake {
                    accept_key,
                    on_upgrade,
                })
            },
        )
}

impl Handshake {
    /// Answers `101 Switching Protocols` and, once hyper hands the connection over, runs `serve`
    /// on it with `config`.
    pub fn accept<F, Fut>(self, config: WebSocketConfig, serve: F) -> warp::reply::Response
    where
        F: FnOnce(WsStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // Chained futures rather than one `async` block: the stages are variants of one enum
        // (the upgrade, building the socket, serving it), so the serving stage, which is the
        // connection's whole life, does not keep room for `serve`'s captures, the configuration
        // and the upgrade's result beside its own state.
        let connection = self
            .on_upgrade
            .then(move |upgraded| open_socket(upgraded, config))
            .then(move |socket| OptionFuture::from(socket.map(serve)));
        tokio::spawn(connection);
        let mut response = warp::reply::Response::default();
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(value) = HeaderValue::from_str(&self.accept_key) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
        }
        response
    }
}

/// The socket over a finished upgrade; `None` (logged) when hyper could not hand it over.
async fn open_socket(
    upgraded: Result<Upgraded, hyper::Error>,
    config: WebSocketConfig,
) -> Option<WsStream> {
    match upgraded {
        Ok(upgraded) => Some(
            WebSocketStream::from_raw_socket(
                LazyReadBuffer::new(TokioIo::new(upgraded)),
                Role::Server,
                Some(config),
            )
            .await,
        ),
        Err(e) => {
            tracing::debug!(error = %e, "websocket upgrade failed");
            None
        }
    }
}

/// The `Sec-WebSocket-Accept` value when `headers` are a valid version-13 upgrade request.
fn accept_key(headers: &HeaderMap) -> Option<String> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION)? != "13" {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    Some(derive_accept_key(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const VALID: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn the_rfc_example_key_is_accepted() {
        // RFC 6455, section 1.3.
        assert_eq!(
            accept_key(&request(&VALID)).as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn anything_missing_or_wrong_is_not_an_upgrade() {
        for (skip, missing) in VALID.iter().enumerate() {
            let partial: Vec<_> = VALID
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, pair)| *pair)
                .collect();
            assert!(
                accept_key(&request(&partial)).is_none(),
                "without {missing:?}"
            );
        }
        let mut old = VALID;
        old[2] = ("sec-websocket-version", "8");
        assert!(accept_key(&request(&old)).is_none());
    }
}
