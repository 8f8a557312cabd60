//! The outbound guard: the one path every HTTP fetch the server makes on a client's behalf
//! takes (link previews, the image proxy, GIF search).
//!
//! Owns: parsing the URL (the `url` crate, which reads decimal, octal and hexadecimal IPv4
//! spellings as the addresses they are), the scheme rule (http and https only), refusing user
//! information, resolving the host **once** and connecting to the resolved address after
//! checking it against the forbidden ranges of [`ranges`] (so a second lookup can never hand
//! back a different, internal address: DNS rebinding fails), TLS with the original name as SNI
//! and `Host`, re-checking every redirect (at most [`Limits::max_redirects`]), and bounding the
//! response head, the body and the total time. Only content types the caller names are
//! accepted. The operator's allowlist ([`Allowlist`], `outboundAllowlist`) lets named hosts and
//! blocks through (intranets, tests).
//!
//! Must never: connect to an address it has not checked, resolve a name twice, follow a
//! redirect without checking it, send the client's headers or cookies upstream, pass upstream
//! headers through (callers get the content type and the body only), or log a URL (a query can
//! hold a key).
//!
//! (Not to be confused with [`crate::hub::outbound`], the queue of frames sent to a connection.)

mod error;
pub mod policy;
pub mod ranges;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};
use url::{Position, Url};

pub use error::OutboundError;
pub use policy::{Allowlist, Target, TargetHost};

/// The bounds of one fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body, in bytes.
    pub max_body: u64,
    /// Largest response head (status line and headers), in bytes.
    pub max_head: usize,
    /// Time for the whole fetch, redirects and body included.
    pub timeout: Duration,
    /// Redirects followed before giving up.
    pub max_redirects: u8,
    /// Whether a longer body is cut to `max_body` (an HTML page, whose head is at its start)
    /// rather than refused with [`OutboundError::TooLarge`].
    pub cut_off: bool,
}

impl Limits {
    /// Redirects followed by default.
    pub const MAX_REDIRECTS: u8 = 3;
    /// Largest response head by default (hyper's smallest read buffer is 8 KiB).
    pub const MAX_HEAD: usize = 16 * 1024;

    /// Limits with `max_body` and `timeout` and the default head and redirect bounds.
    pub const fn new(max_body: u64, timeout: Duration) -> Self {
        Self {
            max_body,
            max_head: Self::MAX_HEAD,
            timeout,
            max_redirects: Self::MAX_REDIRECTS,
            cut_off: false,
        }
    }

    /// These limits, cutting a longer body to `max_body` instead of refusing it.
    pub const fn cutting_off(mut self) -> Self {
        self.cut_off = true;
        self
    }
}

/// The content types a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// `text/html` or `application/xhtml+xml`.
    Html,
    /// Raster images (`image/*` except SVG, which can carry script).
    Image,
    /// `application/json` (and `+json` types).
    Json,
}

impl Accept {
    /// What is accepted, for error messages.
    pub const fn expected(self) -> &'static str {
        match self {
            Self::Html => "text/html",
            Self::Image => "image/* (not SVG)",
            Self::Json => "application/json",
        }
    }

    const fn header(self) -> &'static str {
        match self {
            Self::Html => "text/html,application/xhtml+xml;q=0.9",
            Self::Image => "image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8",
            Self::Json => "application/json",
        }
    }

    /// Whether the media type `essence` (lowercase, no parameters) is accepted.
    pub fn accepts(self, essence: &str) -> bool {
        match self {
            Self::Html => essence == "text/html" || essence == "application/xhtml+xml",
            Self::Image => {
                essence.len() > "image/".len()
                    && essence.starts_with("image/")
                    && !essence.starts_with("image/svg")
                    && essence
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/.+-".contains(&b))
            }
            Self::Json => {
                essence == "application/json"
                    || (essence.starts_with("application/") && essence.ends_with("+json"))
            }
        }
    }
}

/// The outbound HTTP client. One per server; cheap to share.
#[derive(Clone)]
pub struct Outbound {
    allow: Arc<Allowlist>,
    tls: TlsConnector,
    timeout: Duration,
    resolver: Arc<dyn Resolve>,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
}

/// Fetches one server runs at once by default; more are refused with [`OutboundError::Busy`]
/// rather than queued, so a flood of preview requests cannot pile up sockets.
pub const MAX_IN_FLIGHT: usize = 64;

/// Resolves a host name to addresses: the system resolver in the server, a fake in tests.
/// Called once per URL hop; its answer is what gets checked and connected to.
pub trait Resolve: Send + Sync {
    /// Every address of `host`, with `port`.
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> futures_util::future::BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>;
}

/// The system resolver (`getaddrinfo` on a blocking thread, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> futures_util::future::BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("allow", &self.allow)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Aborts the connection task when the response is dropped.
#[derive(Debug)]
struct ConnGuard(JoinHandle<()>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A successful response head: the content type and a body still to read.
#[derive(Debug)]
pub struct Fetched {
    /// The media type, lowercase, without parameters (`image/png`).
    pub content_type: String,
    /// The `charset` parameter of the content type, if any.
    pub charset: Option<String>,
    /// The URL that answered (after redirects).
    pub url: Url,
    body: Incoming,
    limits: Limits,
    deadline: Instant,
    conn: ConnGuard,
    _permit: OwnedSemaphorePermit,
}

impl Outbound {
    /// A client with the operator's allowlist, the time limit of one fetch, and the bundled
    /// web PKI roots.
    pub fn new(allow: Allowlist, timeout: Duration) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth());
        let config = match config {
            Ok(config) => config,
            // The ring provider supports the safe default versions; this cannot happen.
            Err(e) => unreachable!("rustls rejected its own defaults: {e}"),
        };
        Self {
            allow: Arc::new(allow),
            tls: TlsConnector::from(Arc::new(config)),
            timeout,
            resolver: Arc::new(SystemResolver),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            max_in_flight: MAX_IN_FLIGHT,
        }
    }

    /// `(fetches running now, most at once)` (for gauges).
    pub fn in_flight(&self) -> (usize, usize) {
        let free = self.in_flight.available_permits();
        (self.max_in_flight.saturating_sub(free), self.max_in_flight)
    }

    /// This client with at most `n` fetches at once (tests).
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.in_flight = Arc::new(Semaphore::new(n));
        self.max_in_flight = n;
        self
    }

    /// This client with another resolver (tests).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The client for `variables` (`outboundAllowlist`, `outboundTimeoutMs`).
    pub fn from_variables(variables: &crate::config::Variables) -> Result<Self, String> {
        let allow = Allowlist::parse(&variables.outbound_allowlist)?;
        let timeout = Duration::from_millis(u64::from(variables.outbound_timeout_ms));
        Ok(Self::new(allow, timeout))
    }

    /// [`Limits`] with `max_body` and this client's time limit.
    pub fn limits(&self, max_body: u64) -> Limits {
        Limits::new(max_body, self.timeout)
    }

    /// The allowlist in force.
    pub fn allowlist(&self) -> &Allowlist {
        &self.allow
    }

    /// `GET url`, following at most `limits.max_redirects` redirects, each checked like the
    /// first URL; succeeds only on a 2xx answer whose content type `accept` takes and whose
    /// declared length is within `limits.max_body`.
    pub async fn get(
        &self,
        url: &str,
        accept: Accept,
        limits: Limits,
    ) -> Result<Fetched, OutboundError> {
        let permit = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| OutboundError::Busy)?;
        let deadline = Instant::now() + limits.timeout;
        let timeout = || OutboundError::Timeout {
            ms: u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let mut url = policy::parse_url(url)?;
        let mut redirects = 0u8;
        loop {
            let target = policy::check_url(url, &self.allow)?;
            let (response, conn) = timeout_at(deadline, self.exchange(&target, accept, limits))
                .await
                .map_err(|_| timeout())??;
            let status = response.status();
            if status.is_redirection() && status != hyper::StatusCode::NOT_MODIFIED {
                let next = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|loc| target.url.join(loc).ok())
                    .ok_or(OutboundError::BadRedirect)?;
                drop((response, conn));
                if redirects >= limits.max_redirects {
                    return Err(OutboundError::TooManyRedirects {
                        max: limits.max_redirects,
                    });
                }
                redirects += 1;
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(OutboundError::Status(status.as_u16()));
            }
            let (content_type, charset) = media_type(response.headers().get(header::CONTENT_TYPE));
            if !accept.accepts(&content_type) {
                return Err(OutboundError::WrongContentType {
                    got: if content_type.is_empty() {
                        "none".into()
                    } else {
                        content_type.chars().take(100).collect()
                    },
                    expected: accept.expected(),
                });
            }
            let declared = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if !limits.cut_off && declared.is_some_and(|n| n > limits.max_body) {
                return Err(OutboundError::TooLarge {
                    limit: limits.max_body,
                });
            }
            return Ok(Fetched {
                content_type,
                charset,
                url: target.url,
                body: response.into_body(),
                limits,
                deadline,
                conn,
                _permit: permit,
            });
        }
    }

    /// The checked addresses of `target`: its literal address, or every address its name
    /// resolves to (one lookup), all of which must pass unless the allowlist names the host.
    async fn addresses(&self, target: &Target) -> Result<Vec<SocketAddr>, OutboundError> {
        let name = match &target.host {
            TargetHost::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, target.port)]),
            TargetHost::Name(name) => name,
        };
        let found = self
            .resolver
            .resolve(name, target.port)
            .await
            .map_err(|e| OutboundError::Resolve(e.kind().to_string()))?;
        if found.is_empty() {
            return Err(OutboundError::Resolve("no address".into()));
        }
        if !target.host_allowed {
            for addr in &found {
                policy::check_ip(addr.ip(), &self.allow)?;
            }
        }
        Ok(found)
    }

    /// One request/response on a fresh connection to a checked address of `target`.
    async fn exchange(
        &self,
        target: &Target,
        accept: Accept,
        limits: Limits,
    ) -> Result<(hyper::Response<Incoming>, ConnGuard), OutboundError> {
        let mut last = OutboundError::Connect("no address".into());
        let mut stream = None;
        for addr in self.addresses(target).await? {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = OutboundError::Connect(e.kind().to_string()),
            }
        }
        let stream = stream.ok_or(last)?;
        let _ = stream.set_nodelay(true);
        if target.tls {
            let name = match &target.host {
                TargetHost::Ip(ip) => ServerName::IpAddress((*ip).into()),
                TargetHost::Name(name) => ServerName::try_from(name.clone())
                    .map_err(|e| OutboundError::Tls(e.to_string()))?,
            };
            let tls = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|e| OutboundError::Tls(e.to_string()))?;
            send(TokioIo::new(tls), target, accept, limits).await
        } else {
            send(TokioIo::new(stream), target, accept, limits).await
        }
    }
}

async fn send<T>(
    io: T,
    target: &Target,
    accept: Accept,
    limits: Limits,
) -> Result<(hyper::Response<Incoming>, ConnGuard), OutboundError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(limits.max_head.max(8 * 1024))
        .max_headers(100)
        .handshake::<T, Empty<Bytes>>(io)
        .await
        .map_err(|e| OutboundError::Protocol(e.to_string()))?;
    let guard = ConnGuard(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let url = &target.url;
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let path = &url[Position::BeforePath..Position::AfterQuery];
    let request = hyper::Request::get(if path.is_empty() { "/" } else { path })
        .header(header::HOST, host)
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::ACCEPT, HeaderValue::from_static(accept.header()))
        .header(header::ACCEPT_ENCODING, "identity")
        .body(Empty::<Bytes>::new())
        .map_err(|e| OutboundError::BadUrl(e.to_string()))?;
    let response = sender.send_request(request).await.map_err(|e| {
        if e.is_parse_too_large() {
            OutboundError::HeadersTooLarge
        } else {
            OutboundError::Protocol(e.to_string())
        }
    })?;
    Ok((response, guard))
}

/// The `User-Agent` of outbound fetches.
pub const USER_AGENT: &str = concat!(
    "signalbox/",
    env!("CARGO_PKG_VERSION"),
    " (link preview; +https://example.invalid/signalbox)"
);

/// The media type (lowercase essence) and charset of a `Content-Type` value.
fn media_type(value: Option<&HeaderValue>) -> (String, Option<String>) {
    let Some(text) = value.and_then(|v| v.to_str().ok()) else {
        return (String::new(), None);
    };
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let charset = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    });
    (essence, charset)
}

impl Fetched {
    fn timeout(&self) -> OutboundError {
        OutboundError::Timeout {
            ms: u64::try_from(self.limits.timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The whole body: past the limit, [`OutboundError::TooLarge`], or the first
    /// `max_body` bytes when the limits cut off ([`Limits::cutting_off`]).
    pub async fn bytes(mut self) -> Result<Bytes, OutboundError> {
        let truncate = self.limits.cut_off;
        let max = usize::try_from(self.limits.max_body).unwrap_or(usize::MAX);
        let mut out = BytesMut::new();
        loop {
            let frame = timeout_at(self.deadline, self.body.frame())
                .await
                .map_err(|_| self.timeout())?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| OutboundError::Protocol(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if out.len() + data.len() > max {
                if truncate {
                    let room = max - out.len();
                    out.extend_from_slice(&data[..room]);
                    break;
                }
                return Err(OutboundError::TooLarge {
                    limit: self.limits.max_body,
                });
            }
            out.extend_from_slice(&data);
        }
        drop(self.conn);
        Ok(out.freeze())
    }

    /// The body as a stream, read as the receiver pulls it (a small channel, never the whole
    /// body in memory), ending with an error past the size or time limit; a receiver still
    /// pulling at the deadline gets the stream cut off.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, OutboundError>> + Send + Sync {
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let timeout = self.timeout();
            let Self {
                mut body,
                limits,
                deadline,
                conn,
                _permit,
                ..
            } = self;
            let mut seen = 0u64;
            loop {
                let item = match timeout_at(deadline, body.frame()).await {
                    Err(_) => Err(timeout.clone()),
                    Ok(None) => break,
                    Ok(Some(Err(e))) => Err(OutboundError::Protocol(e.to_string())),
                    Ok(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => {
                            seen += data.len() as u64;
                            if seen > limits.max_body {
                                Err(OutboundError::TooLarge {
                                    limit: limits.max_body,
                                })
                            } else {
                                Ok(data)
                            }
                        }
                        Err(_) => continue,
                    },
                };
                let failed = item.is_err();
                // A client that reads slower than the deadline allows loses the stream too:
                // the upstream connection and the in-flight permit are never held longer.
                let sent = timeout_at(deadline, tx.send(item)).await;
                if !matches!(sent, Ok(Ok(()))) || failed {
                    break;
                }
            }
            drop((conn, _permit));
        });
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Answers 127.0.0.1 on the first lookup and a forbidden address on every later one: a
    /// rebinding DNS server.
    #[derive(Debug, Default)]
    struct Rebinding {
        lookups: AtomicUsize,
        names: Mutex<Vec<String>>,
    }

    impl Resolve for Rebinding {
        fn resolve(
            &self,
            host: &str,
            port: u16,
        ) -> futures_util::future::BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
            let n = self.lookups.fetch_add(1, Ordering::SeqCst);
            self.names.lock().unwrap().push(host.to_owned());
            let ip = if n == 0 {
                Ipv4Addr::LOCALHOST
            } else {
                Ipv4Addr::new(169, 254, 169, 254)
            };
            Box::pin(async move { Ok(vec![SocketAddr::new(IpAddr::V4(ip), port)]) })
        }
    }

    /// A one-shot upstream on 127.0.0.1 that records the request head and answers `reply`.
    async fn one_shot(reply: &'static str) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            socket.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head).into_owned()
        });
        (port, task)
    }

    #[tokio::test]
    async fn one_lookup_per_hop_and_the_checked_address_is_the_one_connected() {
        let (port, upstream) =
            one_shot("HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 2\r\n\r\nok")
                .await;
        let resolver = Arc::new(Rebinding::default());
        let allow = Allowlist::parse(&["127.0.0.1/32"]).unwrap();
        let client = Outbound::new(allow, Duration::from_secs(5)).with_resolver(resolver.clone());
        let url = format!("http://rebind.test:{port}/a?b=c");
        let fetched = client
            .get(&url, Accept::Html, client.limits(1024))
            .await
            .unwrap();
        assert_eq!(&fetched.bytes().await.unwrap()[..], b"ok");
        assert_eq!(resolver.lookups.load(Ordering::SeqCst), 1, "resolved once");
        let head = upstream.await.unwrap();
        assert!(head.starts_with("GET /a?b=c HTTP/1.1\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("host: rebind.test:{port}\r\n")),
            "Host is the original name: {head}"
        );
        // The next fetch of the same name is resolved anew, and the rebound answer is refused
        // before any connection.
        let err = client
            .get(&url, Accept::Html, client.limits(1024))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, OutboundError::RefusedAddress { range, .. } if range.contains("link-local")),
            "{err}"
        );
        assert_eq!(resolver.lookups.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_name_with_any_forbidden_answer_is_refused() {
        #[derive(Debug)]
        struct Mixed;
        impl Resolve for Mixed {
            fn resolve(
                &self,
                _host: &str,
                port: u16,
            ) -> futures_util::future::BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>
            {
                Box::pin(async move {
                    Ok(vec![
                        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), port),
                        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port),
                    ])
                })
            }
        }
        let allow = Allowlist::parse(&["127.0.0.1/32"]).unwrap();
        let client = Outbound::new(allow, Duration::from_secs(5)).with_resolver(Arc::new(Mixed));
        let err = client
            .get("http://mixed.test/", Accept::Html, client.limits(1024))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "refused_address");
        assert!(err.to_string().contains("10.0.0.1: private"), "{err}");
    }

    #[tokio::test]
    async fn fetches_beyond_the_in_flight_bound_are_refused_not_queued() {
        let (port, upstream) =
            one_shot("HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 4\r\n\r\nabcd")
                .await;
        let allow = Allowlist::parse(&["127.0.0.1/32"]).unwrap();
        let client = Outbound::new(allow, Duration::from_secs(5)).with_max_in_flight(1);
        let url = format!("http://127.0.0.1:{port}/i.png");
        let held = client
            .get(&url, Accept::Image, client.limits(16))
            .await
            .unwrap();
        let busy = client.get(&url, Accept::Image, client.limits(16)).await;
        assert_eq!(busy.unwrap_err(), OutboundError::Busy);
        assert_eq!(&held.bytes().await.unwrap()[..], b"abcd");
        upstream.await.unwrap();
        // The permit is back once the body is read: the next fetch gets past the bound (and
        // fails to connect, the one-shot upstream being gone).
        let next = client.get(&url, Accept::Image, client.limits(16)).await;
        assert_eq!(next.unwrap_err().reason(), "connect");
    }

    #[tokio::test]
    async fn a_slow_reader_loses_the_stream_at_the_deadline() {
        use futures_util::StreamExt;
        const N: usize = 4 * 1024 * 1024;
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {N}\r\n\r\n{}",
            "x".repeat(N)
        );
        let (port, _upstream) = one_shot(Box::leak(reply.into_boxed_str())).await;
        let allow = Allowlist::parse(&["127.0.0.1/32"]).unwrap();
        let client = Outbound::new(allow, Duration::from_millis(300));
        let url = format!("http://127.0.0.1:{port}/big.png");
        let fetched = client
            .get(&url, Accept::Image, client.limits(N as u64))
            .await
            .unwrap();
        let mut stream = Box::pin(fetched.into_stream());
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            client.in_flight.available_permits(),
            MAX_IN_FLIGHT,
            "a receiver that never pulls does not hold the permit past the deadline"
        );
        let mut received = 0;
        let drained = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(chunk)) = stream.next().await {
                received += chunk.len();
            }
        })
        .await;
        assert!(drained.is_ok(), "the stream ended by itself");
        assert!(received < N, "cut off after {received} bytes");
    }

    #[test]
    fn accepted_content_types() {
        assert!(Accept::Image.accepts("image/png"));
        assert!(Accept::Image.accepts("image/vnd.microsoft.icon"));
        assert!(!Accept::Image.accepts("image/svg+xml"));
        assert!(!Accept::Image.accepts("image/"));
        assert!(!Accept::Image.accepts("text/html"));
        assert!(Accept::Html.accepts("application/xhtml+xml"));
        assert!(Accept::Json.accepts("application/vnd.api+json"));
        assert!(!Accept::Json.accepts("text/json"));
        let (essence, charset) = media_type(Some(&HeaderValue::from_static(
            "Text/HTML; Charset=\"ISO-8859-1\"",
        )));
        assert_eq!(essence, "text/html");
        assert_eq!(charset.as_deref(), Some("iso-8859-1"));
    }
}
