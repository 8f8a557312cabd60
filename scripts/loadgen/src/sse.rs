//! `sse-fanout`: the SSE transport's fan-out. N sessions hold `GET /api/connect` streams in one
//! room; one more session joins the room and leaves it again, `changes` times in all; each
//! change must reach all N as a `roster` event. Reports the time from the change's request to
//! the last session's `roster`, and roster copies per second within each change.
//!
//! With `--delta` every stream is opened with `roster=delta`: a session counts the members of
//! its starting `roster` and adds or removes one per `roster_joined`/`roster_left`, and a change
//! has arrived when that count says so.
//!
//! Streams are read over raw TCP (HTTP/1.1, chunked transfer decoding), spread over loopback
//! source addresses like the WebSocket clients. A roster's size is read from its length (every
//! member is an SSE session, whose id is a 36-character UUID) so the generator does not parse
//! N rosters of N ids per change. Bounded: every wait has a deadline.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use signalbox_protocol::sse::{RosterMode, SseEvent};

use crate::Cli;
use crate::scenarios::now_us;
use crate::stats::Latencies;

/// Longest wait for one change to reach every session, or for a stream's first events.
const WAIT: Duration = Duration::from_secs(30);

/// One `roster` seen by session `index`: how many members, and when (µs, [`now_us`]).
#[derive(Debug, Clone, Copy)]
struct RosterSeen {
    index: usize,
    members: usize,
    at_us: u64,
}

/// Members in a roster whose data (a JSON array of quoted 36-character UUIDs) is `len` bytes.
fn roster_size(len: usize) -> usize {
    // `[]` or `["<36>"]` plus `,"<36>"` per further member: 2 + 38 * n + (n - 1) bytes.
    if len <= 2 { 0 } else { (len - 1) / 39 }
}

/// One event of a stream: its name, its data's length and, for every event but `roster`, the
/// data itself (a roster is only counted, from its length: copying and scanning N rosters of N
/// ids per change made the generator the slowest part of the measurement).
struct Event {
    name: String,
    data_len: usize,
    data: Option<String>,
}

/// Bytes asked of the socket per read: a 1,000-member roster (about 39 KB) in one read.
const READ_BYTES: usize = 64 * 1024;

/// An open `GET /api/connect` stream, decoded into events. Each byte is copied twice (socket to
/// `raw`, chunk payload to `text`) and searched once (`memchr`), whatever the event sizes.
struct SseReader {
    socket: TcpStream,
    /// Bytes read, from `raw_at` on not yet decoded.
    raw: Vec<u8>,
    raw_at: usize,
    /// Decoded chunk payloads, from `text_at` on not yet split into events.
    text: Vec<u8>,
    text_at: usize,
    /// Where the search for the end of the next event resumes (the text before it has none).
    searched: usize,
}

impl SseReader {
    async fn open(
        addr: SocketAddr,
        source: u8,
        room: &str,
        mode: RosterMode,
    ) -> Result<Self, String> {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        let source_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, source.max(1)));
        socket
            .bind(SocketAddr::new(source_ip, 0))
            .map_err(|e| format!("bind {source_ip}: {e}"))?;
        let mut socket = socket
            .connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        socket.set_nodelay(true).map_err(|e| e.to_string())?;
        let (parameter, mode) = (RosterMode::PARAMETER, mode.wire());
        let request = format!(
            "GET /api/connect?room={room}&{parameter}={mode} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        );
        socket
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut reader = Self {
            socket,
            raw: Vec::new(),
            raw_at: 0,
            text: Vec::new(),
            text_at: 0,
            searched: 0,
        };
        loop {
            if let Some(end) = memchr::memmem::find(&reader.raw, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&reader.raw[..end]).into_owned();
                if !head.starts_with("HTTP/1.1 200") {
                    return Err(format!(
                        "connect refused: {}",
                        head.lines().next().unwrap_or("")
                    ));
                }
                if !head
                    .to_ascii_lowercase()
                    .contains("transfer-encoding: chunked")
                {
                    return Err("the SSE response is not chunked".into());
                }
                reader.raw_at = end + 4;
                return Ok(reader);
            }
            reader.fill().await?;
        }
    }

    /// Reads once from the socket onto the end of `raw` (dropping what was decoded already).
    async fn fill(&mut self) -> Result<(), String> {
        self.raw.drain(..self.raw_at);
        self.raw_at = 0;
        self.raw.reserve(READ_BYTES);
        let n = self
            .socket
            .read_buf(&mut self.raw)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("stream ended".into());
        }
        Ok(())
    }

    /// Moves every complete chunk's payload from `raw` onto `text`.
    fn decode(&mut self) -> Result<(), String> {
        loop {
            let pending = &self.raw[self.raw_at..];
            let Some(line_end) = memchr::memmem::find(pending, b"\r\n") else {
                return Ok(());
            };
            let size_text = String::from_utf8_lossy(&pending[..line_end]);
            let size_text = size_text.split(';').next().unwrap_or("").trim().to_owned();
            let size = usize::from_str_radix(&size_text, 16)
                .map_err(|_| format!("bad chunk size {size_text:?}"))?;
            let total = line_end + 2 + size + 2;
            if pending.len() < total {
                return Ok(());
            }
            if size == 0 {
                return Err("stream ended".into());
            }
            self.text
                .extend_from_slice(&pending[line_end + 2..line_end + 2 + size]);
            self.raw_at += total;
        }
    }

    /// The next event (comments skipped).
    async fn next_event(&mut self) -> Result<Event, String> {
        loop {
            self.decode()?;
            while let Some(found) = memchr::memmem::find(&self.text[self.searched..], b"\n\n") {
                let end = self.searched + found;
                let event = parse_block(&self.text[self.text_at..end]);
                self.text_at = end + 2;
                self.searched = self.text_at;
                if let Some(event) = event {
                    return Ok(event);
                }
            }
            // Nothing complete: drop what was split off, and resume the search near the end.
            self.text.drain(..self.text_at);
            self.searched = self.text.len().saturating_sub(1);
            self.text_at = 0;
            self.fill().await?;
        }
    }
}

/// One event block (without its closing blank line): `None` for a comment-only block.
fn parse_block(block: &[u8]) -> Option<Event> {
    let mut name = None;
    let mut data: Option<&[u8]> = None;
    for line in block.split(|b| *b == b'\n') {
        if let Some(v) = line.strip_prefix(b"event: ") {
            name = Some(String::from_utf8_lossy(v).into_owned());
        } else if let Some(v) = line.strip_prefix(b"data: ") {
            data = Some(v);
        }
    }
    let (name, data) = (name?, data?);
    let keep = (name != "roster").then(|| String::from_utf8_lossy(data).into_owned());
    Some(Event {
        name,
        data_len: data.len(),
        data: keep,
    })
}

/// The `id` and `token` of a `joined` event's data.
fn identity(data: &str) -> Result<(String, String), String> {
    let value: serde_json::Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        value[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("`joined` has no {name}"))
    };
    Ok((field("id")?, field("token")?))
}

/// The member count after `event`, from `members` before it (`None`: not a membership event).
fn members_after(event: &Event, members: usize) -> Option<usize> {
    match event.name.as_str() {
        "roster" => Some(roster_size(event.data_len)),
        SseEvent::ROSTER_JOINED => Some(members + 1),
        SseEvent::ROSTER_LEFT => Some(members.saturating_sub(1)),
        _ => None,
    }
}

/// Reads session `index`'s stream for good, reporting every membership event (a `roster`, or a
/// delta stream's change) with the member count it leaves.
async fn watch(mut reader: SseReader, index: usize, seen: mpsc::UnboundedSender<RosterSeen>) {
    let mut members = 0;
    while let Ok(event) = reader.next_event().await {
        if let Some(after) = members_after(&event, members) {
            members = after;
            let report = RosterSeen {
                index,
                members,
                at_us: now_us(),
            };
            if seen.send(report).is_err() {
                return;
            }
        }
    }
}

/// Waits until every one of `sessions` reported a roster of `members`; returns when the last
/// did (µs).
async fn all_saw(
    seen: &mut mpsc::UnboundedReceiver<RosterSeen>,
    sessions: usize,
    members: usize,
) -> Result<u64, String> {
    let mut done = vec![false; sessions];
    let mut left = sessions;
    let mut last = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while left > 0 {
        let report = tokio::time::timeout_at(deadline, seen.recv())
            .await
            .map_err(|_| format!("{left} sessions never saw a roster of {members}"))?
            .ok_or("every stream ended")?;
        if report.members == members
            && let Some(slot) = done.get_mut(report.index)
            && !*slot
        {
            *slot = true;
            left -= 1;
            last = last.max(report.at_us);
        }
    }
    Ok(last)
}

/// `POST /api/leave` for the session `(id, token)`.
async fn leave(addr: SocketAddr, room: &str, id: &str, token: &str) -> Result<(), String> {
    let body = serde_json::json!({"sender": id, "token": token}).to_string();
    let request = format!(
        "POST /api/leave?room={room} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut socket = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    socket
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    socket
        .read_exact(&mut head)
        .await
        .map_err(|e| e.to_string())?;
    if &head != b"HTTP/1.1 200" {
        return Err(format!("leave: {}", String::from_utf8_lossy(&head)));
    }
    Ok(())
}

/// The `sse-fanout` scenario (see the module documentation).
pub async fn fanout(
    cli: &Cli,
    sessions: usize,
    changes: usize,
    room: &str,
    mode: RosterMode,
    server_pid: Option<u32>,
) -> Result<(), String> {
    let addr = crate::soak::server_addr(&cli.url)?;
    let sessions = sessions.max(1);
    let (tx, mut seen) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(cli.connect_concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let started = std::time::Instant::now();
    for index in 0..sessions {
        let permits = permits.clone();
        let tx = tx.clone();
        let room = room.to_owned();
        let source = (index % usize::from(cli.source_ips.max(1))) as u8 + 1;
        tasks.spawn(async move {
            let permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
            let mut reader = SseReader::open(addr, source, &room, mode).await?;
            let first = tokio::time::timeout(WAIT, reader.next_event())
                .await
                .map_err(|_| "no `joined`".to_owned())??;
            if first.name != "joined" {
                return Err(format!("first event `{}`, not `joined`", first.name));
            }
            drop(permit);
            tokio::spawn(watch(reader, index, tx));
            Ok::<_, String>(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.map_err(|e| e.to_string())??;
    }
    all_saw(&mut seen, sessions, sessions).await?;
    println!(
        "sse-fanout: {sessions} sessions (roster={}) in room `{room}` in {:.2}s",
        mode.wire(),
        started.elapsed().as_secs_f64()
    );
    crate::stats::wait_until_idle(server_pid, Duration::from_millis(500)).await;
    while seen.try_recv().is_ok() {}

    let cpu_before = server_pid.and_then(crate::stats::cpu_ns);
    let mut to_all = Vec::with_capacity(changes);
    let mut rates = Vec::with_capacity(changes);
    let mut joiner: Option<(SseReader, String, String)> = None;
    for _ in 0..changes {
        let sent = now_us();
        let members = match joiner.take() {
            None => {
                let mut reader = SseReader::open(addr, 1, room, mode).await?;
                let first = tokio::time::timeout(WAIT, reader.next_event())
                    .await
                    .map_err(|_| "no `joined`".to_owned())??;
                let (id, token) = identity(first.data.as_deref().unwrap_or_default())?;
                joiner = Some((reader, id, token));
                sessions + 1
            }
            Some((reader, id, token)) => {
                leave(addr, room, &id, &token).await?;
                drop(reader);
                sessions
            }
        };
        let last = all_saw(&mut seen, sessions, members).await?;
        let took = last.saturating_sub(sent).max(1);
        to_all.push(took);
        rates.push(sessions as f64 / (took as f64 / 1e6));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some((_, id, token)) = joiner {
        leave(addr, room, &id, &token).await?;
    }
    let cpu_after = server_pid.and_then(crate::stats::cpu_ns);
    rates.sort_by(f64::total_cmp);
    println!(
        "sse-fanout: time for one membership change to reach all {sessions} sessions: {}",
        Latencies::new(to_all).summary_ms()
    );
    println!(
        "sse-fanout: roster copies/s within one change: median {:.0}, best {:.0} ({changes} changes)",
        rates.get(rates.len() / 2).copied().unwrap_or(0.0),
        rates.last().copied().unwrap_or(0.0),
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let per_change = after.saturating_sub(before) as f64 / changes.max(1) as f64;
        println!(
            "sse-fanout: server CPU {:.2} ms per change ({:.0} ns per session), joins and leaves included",
            per_change / 1e6,
            per_change / sessions as f64
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_size_is_read_from_its_length() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(roster_size("[]".len()), 0);
        for n in 1..50 {
            let ids: Vec<String> = (0..n).map(|_| format!("\"{id}\"")).collect();
            assert_eq!(roster_size(format!("[{}]", ids.join(",")).len()), n);
        }
    }

    #[test]
    fn a_roster_block_is_counted_and_other_blocks_keep_their_data() {
        let roster = parse_block(b"event: roster\ndata: [\"a\"]").expect("an event");
        assert_eq!((roster.name.as_str(), roster.data_len), ("roster", 5));
        assert_eq!(roster.data, None);
        let joined = parse_block(b"event: joined\ndata: {}").expect("an event");
        assert_eq!(joined.data.as_deref(), Some("{}"));
        assert!(parse_block(b": keepalive").is_none());
    }

    /// Chunks and events split at every possible place still come out whole and in order.
    #[tokio::test]
    async fn events_split_across_reads_and_chunks_come_out_whole() {
        let events = [
            "event: joined\ndata: {\"id\":\"x\"}\n\n".to_owned(),
            ": keepalive\n\n".to_owned(),
            format!("event: roster\ndata: [{}]\n\n", "\"0\",".repeat(40_000)),
            "event: signal\ndata: {}\n\n".to_owned(),
        ];
        let mut body = Vec::new();
        body.extend_from_slice(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        for event in &events {
            // The roster in two chunks, so an event also spans chunk boundaries.
            let (a, b) = event.split_at(event.len() / 2);
            for part in [a, b] {
                body.extend_from_slice(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes());
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 512];
            let _ = socket.read(&mut request).await;
            for piece in body.chunks(7_001) {
                socket.write_all(piece).await.expect("write");
                socket.flush().await.expect("flush");
                tokio::task::yield_now().await;
            }
            socket
        });
        let mut reader = SseReader::open(addr, 1, "ROOM", RosterMode::Full)
            .await
            .expect("open");
        let names: Vec<(String, usize)> = [
            reader.next_event().await.expect("joined"),
            reader.next_event().await.expect("roster"),
            reader.next_event().await.expect("signal"),
        ]
        .into_iter()
        .map(|e| (e.name, e.data_len))
        .collect();
        assert_eq!(
            names,
            vec![
                ("joined".to_owned(), 10),
                ("roster".to_owned(), 2 + 4 * 40_000),
                ("signal".to_owned(), 2),
            ]
        );
        drop(server.await.expect("server"));
    }

    #[test]
    fn a_delta_stream_counts_members_from_its_roster_and_changes() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let blocks = [
            format!("event: roster\ndata: [\"{id}\",\"{id}\"]"),
            format!("event: roster_joined\ndata: {{\"id\":\"{id}\"}}"),
            format!("event: signal\ndata: {{\"sender\":\"{id}\",\"signal\":{{}}}}"),
            format!("event: roster_left\ndata: {{\"id\":\"{id}\"}}"),
            format!("event: roster_left\ndata: {{\"id\":\"{id}\"}}"),
        ];
        let mut members = 0;
        let mut counts = Vec::new();
        for block in &blocks {
            let event = parse_block(block.as_bytes()).expect("an event");
            if let Some(after) = members_after(&event, members) {
                members = after;
                counts.push(members);
            }
        }
        assert_eq!(counts, [2, 3, 2, 1]);
    }

    #[test]
    fn identity_reads_joined() {
        let data = r#"{"id":"a","token":"t","iceServers":[]}"#;
        assert_eq!(identity(data), Ok(("a".into(), "t".into())));
        assert!(identity("{}").is_err());
    }
}
