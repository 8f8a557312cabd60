//! Why an outbound fetch failed, in words a client can read.
//!
//! Owns the reasons, their stable names and the API error code each is sent with; never the
//! HTTP answer itself (`crate::http` turns an [`OutboundError`] into its `ApiFailure`), so this
//! module depends on nothing above the protocol.

use std::net::IpAddr;

use signalbox_protocol::http::ApiErrorCode;
use thiserror::Error;

/// Why an outbound fetch did not happen or did not succeed. The `Display` text is sent to the
/// client: it names the reason and never holds a secret or a full URL.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OutboundError {
    /// The text is not an absolute URL.
    #[error("not a valid URL: {0}")]
    BadUrl(String),
    /// The scheme is not `http` or `https`.
    #[error("refused scheme `{0}`: only http and https are fetched")]
    Scheme(String),
    /// The URL carries a user name or password.
    #[error("refused URL with user information (user:password@)")]
    Userinfo,
    /// The host is, or resolves to, a forbidden address.
    #[error("refused address {ip}: {range}")]
    RefusedAddress {
        /// The address.
        ip: IpAddr,
        /// The forbidden range it is in (name and block, and the IPv4 address it embeds).
        range: String,
    },
    /// The host name did not resolve.
    #[error("could not resolve the host: {0}")]
    Resolve(String),
    /// No connection could be made.
    #[error("could not connect to the upstream: {0}")]
    Connect(String),
    /// The TLS handshake failed.
    #[error("TLS handshake with the upstream failed: {0}")]
    Tls(String),
    /// The upstream redirected more times than allowed.
    #[error("too many redirects (at most {max} are followed)")]
    TooManyRedirects {
        /// The limit.
        max: u8,
    },
    /// A redirect had no usable `Location`.
    #[error("the upstream sent a redirect without a valid Location")]
    BadRedirect,
    /// The final answer was not a success.
    #[error("the upstream answered HTTP {0}")]
    Status(u16),
    /// The upstream's content type is not one the route serves.
    #[error("wrong content type `{got}`: expected {expected}")]
    WrongContentType {
        /// What the upstream sent (`none` when absent).
        got: String,
        /// What the route accepts.
        expected: &'static str,
    },
    /// The body is larger than the route allows.
    #[error("the upstream body is too large (limit {limit} bytes)")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The response head is larger than allowed.
    #[error("the upstream's response headers are too large")]
    HeadersTooLarge,
    /// The whole fetch took longer than allowed.
    #[error("the upstream did not answer in time (limit {ms} ms)")]
    Timeout {
        /// The limit.
        ms: u64,
    },
    /// The server is already running as many outbound fetches as it allows.
    #[error("too many outbound fetches in flight; retry shortly")]
    Busy,
    /// The upstream broke HTTP.
    #[error("the upstream's answer is malformed: {0}")]
    Protocol(String),
}

impl OutboundError {
    /// A short stable name of the reason (for logs and metrics).
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::BadUrl(_) => "bad_url",
            Self::Scheme(_) => "scheme",
            Self::Userinfo => "userinfo",
            Self::RefusedAddress { .. } => "refused_address",
            Self::Resolve(_) => "resolve",
            Self::Connect(_) => "connect",
            Self::Tls(_) => "tls",
            Self::TooManyRedirects { .. } => "too_many_redirects",
            Self::BadRedirect => "bad_redirect",
            Self::Status(_) => "status",
            Self::WrongContentType { .. } => "wrong_content_type",
            Self::TooLarge { .. } => "too_large",
            Self::HeadersTooLarge => "headers_too_large",
            Self::Timeout { .. } => "timeout",
            Self::Busy => "busy",
            Self::Protocol(_) => "protocol",
        }
    }

    /// The API error code this failure is sent with.
    pub const fn code(&self) -> ApiErrorCode {
        match self {
            Self::BadUrl(_) => ApiErrorCode::BadRequest,
            Self::Scheme(_) | Self::Userinfo | Self::RefusedAddress { .. } => {
                ApiErrorCode::OutboundRefused
            }
            Self::Timeout { .. } => ApiErrorCode::UpstreamTimeout,
            Self::Busy => ApiErrorCode::Unavailable,
            Self::Resolve(_)
            | Self::Connect(_)
            | Self::Tls(_)
            | Self::TooManyRedirects { .. }
            | Self::BadRedirect
            | Self::Status(_)
            | Self::WrongContentType { .. }
            | Self::TooLarge { .. }
            | Self::HeadersTooLarge
            | Self::Protocol(_) => ApiErrorCode::UpstreamFailed,
        }
    }
}
