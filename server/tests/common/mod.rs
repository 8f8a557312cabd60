//! Test helpers: a server started in-process on 127.0.0.1:0 with a temporary data directory,
//! and a tiny HTTP/1.1 client over a raw `TcpStream` (one request per connection); `ws` and `sse`
//! hold the WebSocket and raw SSE clients.

#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;
use signalbox::app::{self, RunningServer};
use signalbox::cli::Overrides;
use signalbox::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub mod sse;
pub mod ws;

/// A variables file for load and fault tests whose many clients share one loopback address:
/// the per-address REST buckets and the per-owner server cap (`security.*`) model distinct
/// people on distinct addresses, which a test on 127.0.0.1 cannot be.
pub const MANY_CLIENTS_ONE_ADDRESS: &str = r#"{
  "security": {
    "restRateLimits": {
      "auth": { "burst": 1000000, "refillPerSec": 1000000 },
      "reads": { "burst": 1000000, "refillPerSec": 1000000 },
      "writes": { "burst": 1000000, "refillPerSec": 1000000 }
    },
    "maxServersPerOwner": 1000000
  }
}"#;

/// A spawned `signalbox` process that is killed when dropped, so a test that panics half-way
/// leaves no server behind. Derefs to the [`std::process::Child`] (`kill`, `wait`, `id`).
pub struct ServerProcess(std::process::Child);

impl std::ops::Deref for ServerProcess {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Already gone after a test's own kill or wait; then these fail harmlessly.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns the real binary, `signalbox serve` on port 0 with `data_dir`, and reads the bound
/// address from its JSON log (tests that kill, stop or restart the process).
pub fn spawn_binary(data_dir: &Path) -> (ServerProcess, SocketAddr) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_signalbox"))
        .args(["serve", "--port", "0", "--log-format", "json", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn signalbox");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .expect("read log");
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let Some(addr) = entry["fields"]["addr"].as_str() {
            break addr.parse().expect("addr");
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (ServerProcess(child), addr)
}

/// Writes [`MANY_CLIENTS_ONE_ADDRESS`] as the variables file of `data_dir`.
pub fn many_clients_one_address(data_dir: &Path) {
    std::fs::write(data_dir.join("variables.json"), MANY_CLIENTS_ONE_ADDRESS)
        .expect("write variables");
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server whose variables file is `variables` (JSON text).
    pub async fn start_with(variables: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("variables.json"), variables).expect("write variables");
        let server = start_in(dir.path()).await;
        Self {
            addr: server.addr,
            server: Some(server),
            dir,
        }
    }

    pub async fn start() -> Self {
        Self::start_with("{}").await
    }

    pub fn client(&self) -> Client {
        Client { addr: self.addr }
    }
}

pub async fn start_in(data_dir: &Path) -> RunningServer {
    let overrides = Overrides {
        data_dir: data_dir.to_owned(),
        port: Some(0),
        ..Overrides::default()
    };
    let config = Config::load(&overrides).expect("config");
    app::start(config).await.expect("start")
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The `error.code` of an `ApiError` body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an ApiError: {}", self.text))
            .to_owned()
    }

    /// Asserts status and error code.
    pub fn expect_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "status of {}", self.text);
        assert_eq!(self.code(), code, "code of {}", self.text);
        self
    }

    pub fn expect_ok(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "status of {}", self.text);
        self.json()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub addr: SocketAddr,
}

impl Client {
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write head");
        // A server may answer (413) before reading the whole body; ignore write errors then.
        let _ = stream.write_all(body).await;
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf).await;
        parse_response(&buf)
    }

    /// Like [`Client::raw`], but `None` when the connection fails or closes before an answer
    /// (a server killed mid-request).
    pub async fn try_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Option<Response> {
        let mut stream = TcpStream::connect(self.addr).await.ok()?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.ok()?;
        let _ = stream.write_all(body).await;
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf).await;
        buf.windows(4)
            .any(|w| w == b"\r\n\r\n")
            .then(|| parse_response(&buf))
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        self.raw(method, path, &headers, text.as_bytes()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.call("GET", path, token, None).await
    }

    /// A guest token and its user id.
    pub async fn guest(&self, name: &str) -> (String, String) {
        let body = serde_json::json!({ "displayName": name });
        let v = self
            .call("POST", "/api/auth/guest", None, Some(&body))
            .await
            .expect_ok(200);
        (
            v["token"].as_str().expect("token").to_owned(),
            v["userId"].as_str().expect("userId").to_owned(),
        )
    }

    /// Creates the public chat server `id` named `name`, owned by `token`'s user (201).
    pub async fn create_public_server(&self, token: &str, id: &str, name: &str) {
        let body = serde_json::json!({ "id": id, "name": name, "visibility": "public" });
        self.call("POST", "/api/servers", Some(token), Some(&body))
            .await
            .expect_ok(201);
    }
}

fn parse_response(buf: &[u8]) -> Response {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut body = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        text: String::from_utf8_lossy(&body).to_string(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
}
