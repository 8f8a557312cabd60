//! A raw SSE test client: one `GET /api/connect` over a plain `TcpStream`, its response head,
//! an error's JSON body (read by its `content-length`), chunked transfer decoding and event
//! blocks split on a blank line, so nothing but the server's bytes decides what a test sees.
//! Every wait has a deadline, so a missing event fails the test instead of hanging it.
//! It owns the HTTP and SSE framing only: it never decides what an event means for a test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for what it expects on a stream, unless it opens with its own wait.
pub const WAIT: Duration = super::ws::WAIT;

/// A variables file for tests of a stream that stops reading: an 8-event stream buffer,
/// 1 MiB bodies and a rate limit no test reaches, so large signals fill the buffer quickly.
pub const STALL_VARIABLES: &str = r#"{"sse": {"streamBufferEvents": 8, "maxBodyBytes": 1048576,
            "rateLimitBurst": 100000, "rateLimitRefillPerSec": 100000}}"#;

/// What the stream delivered next.
#[derive(Debug, Clone, PartialEq)]
pub enum SseItem {
    /// `event: NAME` and its one `data:` line, parsed as JSON.
    Event(String, Value),
    /// A `:` comment line (a keepalive), trimmed.
    Comment(String),
}

/// A client reading one `GET /api/connect` stream.
pub struct SseClient {
    socket: TcpStream,
    /// Undecoded bytes after the head.
    raw: Vec<u8>,
    /// Decoded body bytes not yet split into blocks.
    decoded: Vec<u8>,
    ended: bool,
    /// How long each wait on this stream may take.
    wait: Duration,
    pub status: u16,
    /// Response headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The JSON body of a refused connect (any status but 200).
    pub error_body: Option<Value>,
    /// The `data:` text of the last event, as received.
    pub last_data: String,
    /// Every event block received so far, as its exact text (`event: ...\ndata: ...`).
    pub blocks: Vec<String>,
}

impl SseClient {
    /// Opens `/api/connect?{query}` without credentials, waiting [`WAIT`] for each answer.
    pub async fn open(addr: SocketAddr, query: &str) -> Self {
        Self::open_with(addr, query, None, WAIT).await
    }

    /// Opens `/api/connect?{query}`, with `Authorization: Bearer {bearer}` when given; every
    /// later wait on the stream takes up to `wait`.
    pub async fn open_with(
        addr: SocketAddr,
        query: &str,
        bearer: Option<&str>,
        wait: Duration,
    ) -> Self {
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!(
            "GET /api/connect?{query} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n"
        );
        if let Some(token) = bearer {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        socket.write_all(head.as_bytes()).await.expect("write head");
        let mut raw = Vec::new();
        let split = loop {
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(wait, socket.read(&mut buf))
                .await
                .expect("response head in time")
                .expect("read");
            assert!(n > 0, "connection closed before the response head");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut client = Self {
            socket,
            raw: raw[split + 4..].to_vec(),
            decoded: Vec::new(),
            ended: false,
            wait,
            status,
            headers,
            error_body: None,
            last_data: String::new(),
            blocks: Vec::new(),
        };
        if status != 200 {
            client.read_error_body().await;
        }
        client
    }

    /// This client, after asserting the connect was accepted (200).
    pub fn ok(self) -> Self {
        assert_eq!(self.status, 200, "{:?}", self.error_body);
        self
    }

    async fn read_error_body(&mut self) {
        let length: usize = self
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .expect("an error has a content-length");
        while self.raw.len() < length {
            let mut buf = vec![0u8; 4096];
            let n = tokio::time::timeout(self.wait, self.socket.read(&mut buf))
                .await
                .expect("error body in time")
                .expect("read");
            assert!(n > 0, "body cut short");
            self.raw.extend_from_slice(&buf[..n]);
        }
        self.error_body = serde_json::from_slice(&self.raw[..length]).ok();
    }

    /// The `{"error": ...}` message of a refused connect.
    pub fn error_message(&self) -> String {
        self.error_body
            .as_ref()
            .and_then(|body| body["error"].as_str())
            .unwrap_or_else(|| panic!("not an SSE error: {:?}", self.error_body))
            .to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next chunk of body bytes (`SIZE\r\nDATA\r\n` decoded); `None` at the end.
    async fn chunk(&mut self) -> Option<Vec<u8>> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(end) = self.raw.windows(2).position(|w| w == b"\r\n") {
                let size_text = String::from_utf8_lossy(&self.raw[..end]).to_string();
                let size = size_text
                    .split(';')
                    .next()
                    .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                    .unwrap_or_else(|| panic!("bad chunk size {size_text:?}"));
                if size == 0 {
                    self.ended = true;
                    return None;
                }
                if self.raw.len() >= end + 2 + size + 2 {
                    let data = self.raw[end + 2..end + 2 + size].to_vec();
                    self.raw.drain(..end + 2 + size + 2);
                    return Some(data);
                }
            }
            let mut buf = vec![0u8; 65536];
            let n = self.socket.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                self.ended = true;
                return None;
            }
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    /// The next event or comment, with no deadline of its own; `None` when the stream ended.
    /// An event must be exactly one `event:` line and one `data:` line of JSON.
    pub async fn next_item(&mut self) -> Option<SseItem> {
        loop {
            if let Some(p) = self.decoded.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8(self.decoded[..p].to_vec()).expect("utf-8");
                self.decoded.drain(..p + 2);
                if let Some(comment) = block.strip_prefix(':') {
                    return Some(SseItem::Comment(comment.trim().to_owned()));
                }
                let mut lines = block.lines();
                let name = lines
                    .next()
                    .and_then(|l| l.strip_prefix("event: "))
                    .unwrap_or_else(|| panic!("no event line in {block:?}"))
                    .to_owned();
                let data = lines
                    .next()
                    .and_then(|l| l.strip_prefix("data: "))
                    .unwrap_or_else(|| panic!("no data line in {block:?}"));
                assert!(lines.next().is_none(), "one data line: {block:?}");
                let value = serde_json::from_str(data)
                    .unwrap_or_else(|e| panic!("data is not JSON ({e}): {block:?}"));
                self.last_data = data.to_owned();
                self.blocks.push(block);
                return Some(SseItem::Event(name, value));
            }
            let chunk = self.chunk().await?;
            self.decoded.extend(chunk);
        }
    }

    /// The next item before `deadline`; panics with `what` when there is none.
    pub async fn next_before(&mut self, deadline: Instant, what: &str) -> SseItem {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, self.next_item())
            .await
            .unwrap_or_else(|_| panic!("no {what} in time"))
            .unwrap_or_else(|| panic!("stream ended before {what}"))
    }

    /// The next event (comments skipped): its name and data.
    pub async fn next_event(&mut self) -> (String, Value) {
        let deadline = Instant::now() + self.wait;
        loop {
            if let SseItem::Event(name, data) = self.next_before(deadline, "event").await {
                return (name, data);
            }
        }
    }

    /// The next event as its exact text (`event: NAME\ndata: JSON\n\n`), comments skipped.
    pub async fn next_frame(&mut self) -> String {
        self.next_event().await;
        let block = self.blocks.last().expect("the event just read");
        format!("{block}\n\n")
    }

    /// The next event, or `None` when the stream ended (comments skipped).
    pub async fn next_or_end(&mut self) -> Option<(String, Value)> {
        let deadline = Instant::now() + self.wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.next_item())
                .await
                .expect("an event or the end in time")
            {
                Some(SseItem::Event(name, data)) => return Some((name, data)),
                Some(SseItem::Comment(_)) => {}
                None => return None,
            }
        }
    }

    /// The next event, which must be named `name` (comments skipped).
    pub async fn expect(&mut self, name: &str) -> Value {
        let (got, data) = self.next_event().await;
        assert_eq!(got, name, "expected `{name}`: {data}");
        data
    }

    /// Skips events and comments until an event named `name` arrives; its data.
    pub async fn until(&mut self, name: &str) -> Value {
        loop {
            let (got, data) = self.next_event().await;
            if got == name {
                return data;
            }
        }
    }

    /// Skips `roster` events; the exact frame of the next other event.
    pub async fn next_non_roster(&mut self) -> String {
        loop {
            let frame = self.next_frame().await;
            if !frame.starts_with("event: roster\n") {
                return frame;
            }
        }
    }

    /// The next `roster` whose members, sorted, are `ids` sorted; every event before it must
    /// be a `roster` too.
    pub async fn expect_roster(&mut self, ids: &[&str]) {
        let want = sorted(ids);
        let deadline = Instant::now() + self.wait;
        loop {
            if let SseItem::Event(name, data) = self.next_before(deadline, "the roster").await {
                assert_eq!(name, "roster", "{data}");
                if roster_ids(data) == want {
                    return;
                }
            }
        }
    }

    /// Skips other events until a `roster` lists exactly `ids` (in any order).
    pub async fn until_roster(&mut self, ids: &[&str]) {
        let want = sorted(ids);
        let deadline = Instant::now() + self.wait;
        let mut last = Value::Null;
        loop {
            let what = format!("roster {want:?} (last {last})");
            if let SseItem::Event(name, data) = self.next_before(deadline, &what).await
                && name == "roster"
            {
                if roster_ids(data.clone()) == want {
                    return;
                }
                last = data;
            }
        }
    }

    /// Whether the server ends the stream within the wait (events before the end skipped).
    pub async fn ended(&mut self) -> bool {
        let wait = self.wait;
        tokio::time::timeout(wait, async { while self.chunk().await.is_some() {} })
            .await
            .is_ok()
    }

    /// Waits for the server to end the stream.
    pub async fn expect_end(&mut self) {
        assert!(self.ended().await, "the stream did not end");
    }
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    ids.sort();
    ids
}

fn roster_ids(data: Value) -> Vec<String> {
    let mut got: Vec<String> =
        serde_json::from_value(data.clone()).unwrap_or_else(|_| panic!("not a roster: {data}"));
    got.sort();
    got
}
