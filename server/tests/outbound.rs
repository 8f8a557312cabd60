//! The outbound guard through the real routes (`/api/link-metadata`, `/api/proxy`,
//! `/api/klipy/...`) of a real server on 127.0.0.1:0, with local upstream test servers on
//! 127.0.0.1:0. No traffic leaves loopback: every forbidden vector is refused before a
//! connection is made, and the only address the allowlist ever opens is the test upstream's.
//!
//! - `ssrf_vectors_are_refused_with_their_reason`: the table of direct vectors, allowlist empty.
//! - `upstream_vectors_are_refused_with_their_reason`: redirects from an allowed test server to
//!   forbidden addresses, redirect loops, oversized bodies, wrong content types, slow and
//!   malformed upstreams; the allowlist holds only `127.0.0.1/32` (the test server).
//! - the happy paths, reached only through the allowlist.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Client, Response, TestServer};
use serde_json::json;
use warp::Filter;
use warp::http::StatusCode;

/// What the upstream saw.
#[derive(Debug, Default)]
struct Seen {
    page_hits: AtomicUsize,
    klipy: Mutex<Vec<String>>,
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-not-really-an-image-but-typed-as-one";
const BIG: usize = 9 * 1024 * 1024;

const PAGE: &str = r#"<!doctype html><html><head>
<meta charset="utf-8"><title>Fallback title</title>
<meta property="og:title" content="Local &amp; test page">
<meta name="twitter:description" content="Twitter description">
<meta property="og:image" content="/image.png">
<meta property="og:site_name" content="Upstream">
<script>document.write('<meta property="og:description" content="from script">')</script>
</head><body><p>Hello</p></body></html>"#;

fn klipy_answer() -> serde_json::Value {
    json!({"result": true, "data": {"data": [
        {"id": 101, "slug": "cat-typing", "title": "Cat typing", "type": "gif", "file": {
            "hd": {"gif": {"url": "https://static.klipy.example/101/hd.gif", "width": 498, "height": 280, "size": 1000}},
            "sm": {"gif": {"url": "https://static.klipy.example/101/sm.gif", "width": 220, "height": 124, "size": 100}}}},
        {"id": "ad", "type": "ad", "content": "<iframe></iframe>"}
    ], "current_page": 1, "per_page": 24, "has_next": true}})
}

/// Starts the upstream test server on 127.0.0.1:0.
async fn upstream() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let html = |body: &'static str| {
        warp::reply::with_header(body, "content-type", "text/html; charset=utf-8")
    };
    let s = Arc::clone(&seen);
    let page = warp::path("page").map(move || {
        s.page_hits.fetch_add(1, Ordering::SeqCst);
        html(PAGE)
    });
    let image = warp::path("image.png").map(|| {
        let reply = warp::reply::with_header(PNG, "content-type", "image/png");
        let reply = warp::reply::with_header(reply, "set-cookie", "upstream=1");
        warp::reply::with_header(reply, "x-upstream-secret", "leak")
    });
    let big = warp::path("big.png")
        .map(|| warp::reply::with_header(vec![0u8; BIG], "content-type", "image/png"));
    let big_chunked = warp::path("big-chunked.png").map(|| {
        let chunks =
            (0..BIG / 65536).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 65536])));
        let reply = warp::reply::stream(futures_util::stream::iter(chunks));
        warp::reply::with_header(reply, "content-type", "image/png")
    });
    let big_page = warp::path("big-page").map(|| {
        let body = format!("{PAGE}<!-- {} -->", "x".repeat(BIG));
        warp::reply::with_header(body, "content-type", "text/html")
    });
    let text = warp::path("text").map(|| "plain text");
    let svg = warp::path("svg").map(|| {
        warp::reply::with_header(
            "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            "content-type",
            "image/svg+xml",
        )
    });
    let no_type = warp::path("no-type").map(|| {
        let mut r = warp::reply::Reply::into_response("x");
        r.headers_mut().remove("content-type");
        r
    });
    let redirect = warp::path("redirect")
        .and(warp::query::<Vec<(String, String)>>())
        .map(|q: Vec<(String, String)>| {
            let to = q.into_iter().find(|(k, _)| k == "to").map(|(_, v)| v);
            let mut r = warp::reply::Reply::into_response(StatusCode::FOUND);
            if let Some(to) = to {
                r.headers_mut().insert("location", to.parse().unwrap());
            }
            r
        });
    let looping = warp::path("loop")
        .map(|| warp::reply::with_header(StatusCode::MOVED_PERMANENTLY, "location", "/loop"));
    let chain = warp::path!("chain" / u32).map(|n: u32| {
        let to = if n == 0 {
            "/image.png".to_owned()
        } else {
            format!("/chain/{}", n - 1)
        };
        warp::reply::with_header(StatusCode::TEMPORARY_REDIRECT, "location", to)
    });
    let slow = warp::path("slow").then(|| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        warp::reply::with_header(PNG, "content-type", "image/png")
    });
    let huge_header = warp::path("huge-header").map(|| {
        let reply = warp::reply::with_header(PNG, "content-type", "image/png");
        warp::reply::with_header(reply, "x-filler", "a".repeat(40 * 1024))
    });
    let status = warp::path!("status" / u16)
        .map(|code: u16| warp::reply::with_status("no", StatusCode::from_u16(code).unwrap()));
    let s = Arc::clone(&seen);
    let klipy = warp::path!("api" / "v1" / String / "gifs" / String)
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(move |key: String, kind: String, query: String| {
            s.klipy
                .lock()
                .unwrap()
                .push(format!("{key} {kind} {query}"));
            warp::reply::json(&klipy_answer())
        });
    let routes = page
        .or(image)
        .or(big)
        .or(big_chunked)
        .or(big_page)
        .or(text)
        .or(svg)
        .or(no_type)
        .or(redirect)
        .or(looping)
        .or(chain)
        .or(slow)
        .or(huge_header)
        .or(status)
        .or(klipy);
    let server = warp::serve(routes)
        .incoming(listener)
        .graceful(std::future::pending::<()>());
    tokio::spawn(server.run());
    (addr, seen)
}

/// Percent-encodes a query value.
fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn fetch(c: &Client, route: &str, url: &str) -> Response {
    c.get(&format!("{route}?url={}", enc(url)), None).await
}

const META: &str = "/api/link-metadata";
const PROXY: &str = "/api/proxy";

/// One vector: route, URL, expected status, code, and a piece of the message naming the reason.
type Vector = (&'static str, String, u16, &'static str, &'static str);

async fn run_table(c: &Client, vectors: &[Vector]) {
    let mut failures = Vec::new();
    for (route, url, status, code, reason) in vectors {
        let r = fetch(c, route, url).await;
        let body = r.json();
        let got_code = body["error"]["code"].as_str().unwrap_or("");
        let message = body["error"]["message"].as_str().unwrap_or("");
        if r.status != *status || got_code != *code || !message.contains(reason) {
            failures.push(format!(
                "{route} {url}: expected {status} {code} naming `{reason}`, got {} {}",
                r.status, r.text
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn ssrf_vectors_are_refused_with_their_reason() {
    // A live upstream on loopback: the guard must refuse it although it would answer.
    let (up, seen) = upstream().await;
    let port = up.port();
    let s = TestServer::start_with(r#"{"outboundAllowlist": []}"#).await;
    let c = s.client();
    let refused = |route, url: String, reason| (route, url, 403, "OUTBOUND_REFUSED", reason);
    let vectors: Vec<Vector> = vec![
        // Loopback, literally and by name.
        refused(META, "http://127.0.0.1/".into(), "loopback 127.0.0.0/8"),
        refused(META, format!("http://127.0.0.1:{port}/page"), "loopback"),
        refused(
            PROXY,
            format!("http://127.0.0.1:{port}/image.png"),
            "loopback",
        ),
        refused(META, format!("http://localhost:{port}/page"), "loopback"),
        refused(
            PROXY,
            format!("http://LOCALHOST.:{port}/image.png"),
            "loopback",
        ),
        refused(META, "https://127.0.0.1/".into(), "loopback"),
        refused(META, "http://127.0.0.1:22/".into(), "loopback"),
        refused(META, format!("http://127.0.0.1.:{port}/page"), "loopback"),
        refused(META, "http://127.255.255.254/".into(), "loopback"),
        // Decimal, octal, hexadecimal and short IPv4 spellings.
        refused(
            META,
            "http://2130706433/".into(),
            "refused address 127.0.0.1: loopback",
        ),
        refused(
            META,
            "http://0x7f.1/".into(),
            "refused address 127.0.0.1: loopback",
        ),
        refused(
            META,
            "http://017700000001/".into(),
            "refused address 127.0.0.1: loopback",
        ),
        refused(
            PROXY,
            "http://0177.0.0.1/".into(),
            "refused address 127.0.0.1: loopback",
        ),
        refused(
            PROXY,
            "http://0x7f000001/".into(),
            "refused address 127.0.0.1: loopback",
        ),
        refused(
            META,
            "http://127.1/".into(),
            "refused address 127.0.0.1: loopback",
        ),
        refused(
            META,
            "http://0xa9.0xfe.0xa9.0xfe/".into(),
            "refused address 169.254.169.254",
        ),
        refused(
            META,
            "http://2852039166/".into(),
            "refused address 169.254.169.254",
        ),
        // Host spellings the URL parser normalises.
        refused(
            META,
            "http://%31%32%37.0.0.1/".into(),
            "refused address 127.0.0.1",
        ),
        refused(
            META,
            "http://\u{2460}\u{2461}\u{2466}.\u{24ea}.\u{24ea}.\u{2460}/".into(),
            "refused address 127.0.0.1",
        ),
        // IPv6 loopback and unspecified, and the IPv6 forms of IPv4 loopback.
        refused(META, "http://[::1]/".into(), "loopback ::1/128"),
        refused(
            PROXY,
            format!("http://[::1]:{port}/image.png"),
            "loopback ::1/128",
        ),
        refused(META, "http://[::]/".into(), "unspecified"),
        refused(
            META,
            "http://[::ffff:127.0.0.1]/".into(),
            "IPv4-mapped form of 127.0.0.1",
        ),
        refused(
            META,
            "http://[0:0:0:0:0:ffff:7f00:1]/".into(),
            "IPv4-mapped form of 127.0.0.1",
        ),
        refused(
            META,
            "http://[::127.0.0.1]/".into(),
            "IPv4-compatible form of 127.0.0.1",
        ),
        refused(
            META,
            "http://[::ffff:0:7f00:1]/".into(),
            "IPv4-translated form of 127.0.0.1",
        ),
        refused(
            META,
            "http://[64:ff9b::7f00:1]/".into(),
            "NAT64 form of 127.0.0.1",
        ),
        refused(
            META,
            "http://[2002:7f00:1::1]/".into(),
            "6to4 form of 127.0.0.1",
        ),
        refused(
            META,
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/".into(),
            "Teredo client form of 127.0.0.1",
        ),
        // Private, link-local (cloud metadata), unique-local.
        refused(META, "http://10.0.0.1/".into(), "private 10.0.0.0/8"),
        refused(META, "http://172.16.0.1/".into(), "private 172.16.0.0/12"),
        refused(
            PROXY,
            "http://192.168.1.1/a.png".into(),
            "private 192.168.0.0/16",
        ),
        refused(
            META,
            "http://169.254.169.254/latest/meta-data/".into(),
            "link-local 169.254.0.0/16",
        ),
        refused(
            PROXY,
            "http://[::ffff:169.254.169.254]/".into(),
            "IPv4-mapped form of 169.254.169.254",
        ),
        refused(
            META,
            "http://[64:ff9b::a9fe:a9fe]/".into(),
            "NAT64 form of 169.254.169.254",
        ),
        refused(
            META,
            "http://[2002:c0a8:101::]/".into(),
            "6to4 form of 192.168.1.1",
        ),
        refused(META, "http://[fe80::1]/".into(), "link-local fe80::/10"),
        refused(
            META,
            "http://[fd00:ec2::254]/".into(),
            "unique-local fc00::/7",
        ),
        // Multicast, broadcast, unspecified, this-network, reserved, IETF, CGNAT.
        refused(META, "http://224.0.0.1/".into(), "multicast 224.0.0.0/4"),
        refused(META, "http://[ff02::1]/".into(), "multicast ff00::/8"),
        refused(META, "http://255.255.255.255/".into(), "broadcast"),
        refused(META, "http://0.0.0.0/".into(), "unspecified 0.0.0.0/32"),
        refused(META, "http://0/".into(), "unspecified"),
        refused(META, "http://0.1.2.3/".into(), "this network 0.0.0.0/8"),
        refused(META, "http://240.0.0.1/".into(), "reserved 240.0.0.0/4"),
        refused(
            META,
            "http://192.0.0.170/".into(),
            "IETF protocol assignments",
        ),
        refused(
            META,
            "http://100.64.0.1/".into(),
            "carrier-grade NAT 100.64.0.0/10",
        ),
        // Documentation and benchmarking ranges.
        refused(
            META,
            "http://192.0.2.1/".into(),
            "documentation 192.0.2.0/24",
        ),
        refused(
            META,
            "http://198.51.100.1/".into(),
            "documentation 198.51.100.0/24",
        ),
        refused(
            META,
            "http://203.0.113.1/".into(),
            "documentation 203.0.113.0/24",
        ),
        refused(
            META,
            "http://[2001:db8::1]/".into(),
            "documentation 2001:db8::/32",
        ),
        refused(
            META,
            "http://198.18.0.1/".into(),
            "benchmarking 198.18.0.0/15",
        ),
        // Schemes and userinfo tricks.
        refused(META, "file:///etc/passwd".into(), "refused scheme `file`"),
        refused(
            PROXY,
            "gopher://127.0.0.1:70/_".into(),
            "refused scheme `gopher`",
        ),
        refused(META, "ftp://ftp.example/".into(), "refused scheme `ftp`"),
        refused(
            PROXY,
            "data:image/png;base64,AAAA".into(),
            "refused scheme `data`",
        ),
        refused(META, "ws://127.0.0.1/".into(), "refused scheme `ws`"),
        refused(
            META,
            "http://user:pass@127.0.0.1/".into(),
            "user information",
        ),
        refused(
            META,
            "http://trusted.example@127.0.0.1/".into(),
            "user information",
        ),
        refused(
            PROXY,
            "https://a.example:x@b.example/".into(),
            "user information",
        ),
        // Not URLs at all.
        (
            META,
            "not a url".into(),
            400,
            "BAD_REQUEST",
            "not a valid URL",
        ),
        (
            PROXY,
            "/relative/path".into(),
            400,
            "BAD_REQUEST",
            "not a valid URL",
        ),
        (
            META,
            "http://[::1/".into(),
            400,
            "BAD_REQUEST",
            "not a valid URL",
        ),
    ];
    assert!(vectors.len() >= 40, "{} vectors", vectors.len());
    run_table(&c, &vectors).await;
    assert_eq!(
        seen.page_hits.load(Ordering::SeqCst),
        0,
        "no vector reached the upstream"
    );
    c.get(META, None).await.expect_error(400, "BAD_REQUEST");
    c.get(&format!("{PROXY}?url="), None)
        .await
        .expect_error(400, "BAD_REQUEST");
    let long = format!("http://a.example/{}", "a".repeat(3000));
    fetch(&c, META, &long)
        .await
        .expect_error(400, "BAD_REQUEST");
}

#[tokio::test]
async fn klipy_base_url_is_guarded_too() {
    let s = TestServer::start_with(
        r#"{"klipyApiKey": "k-secret", "klipyBaseUrl": "http://169.254.169.254/api/v1"}"#,
    )
    .await;
    let r = s.client().get("/api/klipy/gifs/search?q=cat", None).await;
    r.expect_error(403, "OUTBOUND_REFUSED");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("link-local 169.254.0.0/16"), "{message}");
    assert!(
        !message.contains("k-secret"),
        "the key never appears: {message}"
    );
}

#[tokio::test]
async fn upstream_vectors_are_refused_with_their_reason() {
    let (up, seen) = upstream().await;
    let port = up.port();
    let s = TestServer::start_with(
        r#"{"outboundAllowlist": ["127.0.0.1/32"], "outboundTimeoutMs": 1000}"#,
    )
    .await;
    let c = s.client();
    let base = format!("http://127.0.0.1:{port}");
    let to = |target: &str| format!("{base}/redirect?to={}", enc(target));
    let refused = |route, url: String, reason| (route, url, 403, "OUTBOUND_REFUSED", reason);
    let failed = |route, url: String, reason| (route, url, 502, "UPSTREAM_FAILED", reason);
    let vectors: Vec<Vector> = vec![
        // Redirects from the allowed test server to forbidden addresses.
        refused(
            PROXY,
            to("http://169.254.169.254/latest/meta-data/"),
            "link-local 169.254.0.0/16",
        ),
        refused(META, to("http://10.0.0.1/"), "private 10.0.0.0/8"),
        refused(
            PROXY,
            to(&format!("http://127.0.0.2:{port}/image.png")),
            "refused address 127.0.0.2: loopback",
        ),
        refused(
            PROXY,
            to(&format!("http://0x7f000002:{port}/image.png")),
            "refused address 127.0.0.2: loopback",
        ),
        refused(
            PROXY,
            to(&format!("http://[::1]:{port}/image.png")),
            "loopback ::1/128",
        ),
        refused(
            META,
            to("http://[::ffff:a9fe:a9fe]/"),
            "IPv4-mapped form of 169.254.169.254",
        ),
        refused(META, to("http://[fd00::1]/"), "unique-local"),
        refused(META, to("//192.168.0.1/"), "private 192.168.0.0/16"),
        refused(META, to("file:///etc/passwd"), "refused scheme `file`"),
        refused(
            PROXY,
            to(&format!("http://user:pw@127.0.0.1:{port}/image.png")),
            "user information",
        ),
        refused(PROXY, to(&to("http://169.254.169.254/")), "link-local"),
        // Redirect loops and chains.
        failed(
            META,
            format!("{base}/loop"),
            "too many redirects (at most 3",
        ),
        failed(PROXY, format!("{base}/chain/3"), "too many redirects"),
        failed(
            PROXY,
            format!("{base}/redirect"),
            "redirect without a valid Location",
        ),
        // Oversized, wrong types, malformed and failing upstreams.
        failed(
            PROXY,
            format!("{base}/big.png"),
            "too large (limit 8388608 bytes)",
        ),
        failed(
            PROXY,
            format!("{base}/text"),
            "wrong content type `text/plain`",
        ),
        failed(
            PROXY,
            format!("{base}/svg"),
            "wrong content type `image/svg+xml`",
        ),
        failed(
            PROXY,
            format!("{base}/page"),
            "wrong content type `text/html`",
        ),
        failed(
            PROXY,
            format!("{base}/no-type"),
            "wrong content type `none`",
        ),
        failed(
            META,
            format!("{base}/image.png"),
            "wrong content type `image/png`: expected text/html",
        ),
        failed(
            PROXY,
            format!("{base}/huge-header"),
            "headers are too large",
        ),
        failed(META, format!("{base}/status/404"), "answered HTTP 404"),
        failed(PROXY, format!("{base}/status/500"), "answered HTTP 500"),
        (
            PROXY,
            format!("{base}/slow"),
            504,
            "UPSTREAM_TIMEOUT",
            "did not answer in time (limit 1000 ms)",
        ),
    ];
    run_table(&c, &vectors).await;
    assert_eq!(
        seen.page_hits.load(Ordering::SeqCst),
        1,
        "only /page itself was fetched"
    );
}

#[tokio::test]
async fn link_metadata_through_the_allowlist() {
    let (up, seen) = upstream().await;
    // `localhost` may resolve to ::1 as well: every answer must pass, and the upstream only
    // listens on 127.0.0.1 (the connection falls back to the next address).
    let s = TestServer::start_with(r#"{"outboundAllowlist": ["127.0.0.1", "::1/128"]}"#).await;
    let c = s.client();
    let url = format!("http://127.0.0.1:{}/page", up.port());
    let m = fetch(&c, META, &url).await.expect_ok(200);
    assert_eq!(m["url"], url.as_str());
    assert_eq!(m["title"], "Local & test page");
    assert_eq!(m["description"], "Twitter description");
    assert_eq!(
        m["image"],
        format!("http://127.0.0.1:{}/image.png", up.port()).as_str()
    );
    assert_eq!(m["siteName"], "Upstream");
    // Cached: the upstream is not asked again.
    assert_eq!(fetch(&c, META, &url).await.expect_ok(200), m);
    assert_eq!(seen.page_hits.load(Ordering::SeqCst), 1);
    // Redirects within the allowlist are followed (3 at most).
    let via = format!(
        "http://127.0.0.1:{}/redirect?to={}",
        up.port(),
        enc(&format!("http://localhost:{}/page", up.port()))
    );
    let m = fetch(&c, META, &via).await.expect_ok(200);
    assert_eq!(m["title"], "Local & test page");
    assert_eq!(seen.page_hits.load(Ordering::SeqCst), 2);
    // A page longer than the 512 KiB read is previewed from its start, not refused.
    let big = format!("http://127.0.0.1:{}/big-page", up.port());
    let m = fetch(&c, META, &big).await.expect_ok(200);
    assert_eq!(m["siteName"], "Upstream");
}

#[tokio::test]
async fn link_previews_switched_off() {
    let s = TestServer::start_with(r#"{"linkPreviews": false}"#).await;
    let r = fetch(&s.client(), META, "https://example.com/").await;
    r.expect_error(503, "UNAVAILABLE");
    assert!(r.text.contains("linkPreviews"), "{}", r.text);
}

#[tokio::test]
async fn image_proxy_streams_images_and_passes_no_upstream_header() {
    let (up, _) = upstream().await;
    let s = TestServer::start_with(r#"{"outboundAllowlist": ["127.0.0.1/32"]}"#).await;
    let c = s.client();
    let base = format!("http://127.0.0.1:{}", up.port());
    let r = fetch(&c, PROXY, &format!("{base}/image.png")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text.as_bytes(), String::from_utf8_lossy(PNG).as_bytes());
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("content-type").as_deref(), Some("image/png"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert!(header("content-security-policy").is_some());
    assert_eq!(header("set-cookie"), None);
    assert_eq!(header("x-upstream-secret"), None);
    // Three redirects are followed.
    let r = fetch(&c, PROXY, &format!("{base}/chain/2")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A body with no declared length that runs past the cap is cut off, not buffered whole.
    let r = fetch(&c, PROXY, &format!("{base}/big-chunked.png")).await;
    assert_eq!(r.status, 200);
    assert!(
        r.text.len() <= 8 * 1024 * 1024,
        "{} bytes passed the 8 MiB cap",
        r.text.len()
    );
}

#[tokio::test]
async fn klipy_search_against_a_fake_upstream() {
    let (up, seen) = upstream().await;
    let variables = json!({
        "klipyApiKey": "test-key-123",
        "klipyBaseUrl": format!("http://127.0.0.1:{}/api/v1", up.port()),
        "outboundAllowlist": ["127.0.0.1/32"],
    });
    let s = TestServer::start_with(&variables.to_string()).await;
    let c = s.client();
    let page = c
        .get(
            "/api/klipy/gifs/search?q=cat%20typing&perPage=10&locale=en_US",
            None,
        )
        .await
        .expect_ok(200);
    assert_eq!(page["page"], 1);
    assert_eq!(page["hasNext"], true);
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "the ad is dropped"
    );
    assert_eq!(page["items"][0]["id"], "101");
    assert_eq!(page["items"][0]["width"], 498);
    assert_eq!(
        page["items"][0]["previewUrl"],
        "https://static.klipy.example/101/sm.gif"
    );
    c.get("/api/klipy/gifs/trending", None).await.expect_ok(200);
    let calls = seen.klipy.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert!(
        calls[0].starts_with(
            "test-key-123 search q=cat+typing&page=1&per_page=10&customer_id=signalbox&locale=en_US"
        ),
        "{}",
        calls[0]
    );
    assert!(
        calls[1].starts_with("test-key-123 trending page=1"),
        "{}",
        calls[1]
    );
    for bad in [
        "",
        "?q=%20",
        "?q=a&perPage=500",
        "?q=a&page=0",
        "?q=a&locale=%3Cx%3E",
    ] {
        c.get(&format!("/api/klipy/gifs/search{bad}"), None)
            .await
            .expect_error(400, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn klipy_is_off_without_a_key() {
    let s = TestServer::start().await;
    let r = s.client().get("/api/klipy/gifs/search?q=cat", None).await;
    r.expect_error(503, "UNAVAILABLE");
    assert!(r.text.contains("klipyApiKey"), "{}", r.text);
}

#[tokio::test]
async fn openapi_documents_the_outbound_routes() {
    let s = TestServer::start().await;
    let doc = s
        .client()
        .get("/api/openapi.json", None)
        .await
        .expect_ok(200);
    for path in [
        "/api/link-metadata",
        "/api/proxy",
        "/api/klipy/gifs/search",
        "/api/klipy/gifs/trending",
    ] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
    }
    assert!(
        doc["paths"]["/api/proxy"]["get"]["responses"]["200"]["content"]["image/*"].is_object()
    );
    let params = &doc["paths"]["/api/link-metadata"]["get"]["parameters"];
    assert_eq!(params[0]["name"], "url");
    assert_eq!(params[0]["required"], true);
    assert!(doc["components"]["schemas"]["LinkMetadata"].is_object());
    assert!(doc["components"]["schemas"]["GifPage"].is_object());
}

#[tokio::test]
async fn malformed_allowlist_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("variables.json"),
        r#"{"outboundAllowlist": ["http://x/"]}"#,
    )
    .unwrap();
    let overrides = signalbox::cli::Overrides {
        data_dir: dir.path().to_owned(),
        port: Some(0),
        ..signalbox::cli::Overrides::default()
    };
    let err = signalbox::config::Config::load(&overrides).unwrap_err();
    assert!(err.to_string().contains("outboundAllowlist"), "{err}");
}
