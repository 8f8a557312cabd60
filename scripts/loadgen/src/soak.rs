//! The `soak` scenario: ordinary churn for a while, then quiet, watching every gauge.
//!
//! Holds `live` identified WebSocket clients (joined to one server, answering pings), opens and
//! closes `churn_per_sec` more each second (every other one goes away without a close frame),
//! and abandons `sse_per_sec` SSE sessions each second (stream read, then dropped, never
//! `/api/leave`), for `minutes`. Then it closes the live clients and stays idle for `idle_secs`,
//! long enough for abandoned SSE sessions to be pruned. Every `sample_secs` it scrapes
//! `/metrics`; at the end it prints each gauge's start, peak and end, and the gauges that did not
//! come back to their start. Loopback only; bounded in time by its arguments.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Cli;
use crate::client;

/// The soak's knobs (see `Scenario::Soak`).
#[derive(Debug, Clone)]
pub struct Soak {
    /// WebSocket clients held for the whole churn.
    pub live: usize,
    /// WebSocket clients opened (and closed again) per second.
    pub churn_per_sec: u64,
    /// SSE sessions opened and abandoned per second.
    pub sse_per_sec: u64,
    /// Minutes of churn.
    pub minutes: u64,
    /// Seconds of quiet after the churn.
    pub idle_secs: u64,
    /// Seconds between two scrapes of `/metrics`.
    pub sample_secs: u64,
    /// The chat server every WebSocket client joins.
    pub server_id: String,
}

/// Unlabelled gauge samples of one scrape, by name.
type Gauges = BTreeMap<String, f64>;

/// Counts of what the churn did.
#[derive(Debug, Default)]
struct Counts {
    lifecycles: AtomicU64,
    abrupt: AtomicU64,
    sse_abandoned: AtomicU64,
    failures: AtomicU64,
}

/// `host:port` of the server, from the WebSocket URL.
pub(crate) fn server_addr(url: &str) -> Result<SocketAddr, String> {
    let uri: tokio_tungstenite::tungstenite::http::Uri =
        url.parse().map_err(|e| format!("bad url {url}: {e}"))?;
    let host = uri.host().ok_or("url has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| format!("url host must be an IP address: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address; the soak stays on loopback"
        ));
    }
    Ok(addr)
}

/// One HTTP/1.1 GET with `Connection: close`; returns the body.
async fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut socket = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    socket
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    socket
        .read_to_end(&mut raw)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no response head")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {}", head.lines().next().unwrap_or("")));
    }
    Ok(body.to_owned())
}

/// Every unlabelled gauge of an exposition.
fn parse_gauges(text: &str) -> Gauges {
    let mut kinds = BTreeMap::new();
    let mut out = Gauges::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                kinds.insert(name.to_owned(), kind.to_owned());
            }
            continue;
        }
        if line.starts_with('#') || line.contains('{') {
            continue;
        }
        if let Some((name, value)) = line.split_once(' ')
            && kinds.get(name).is_some_and(|k| k == "gauge")
            && let Ok(value) = value.trim().parse()
        {
            out.insert(name.to_owned(), value);
        }
    }
    out
}

async fn scrape(addr: SocketAddr) -> Result<Gauges, String> {
    Ok(parse_gauges(&http_get(addr, "/metrics").await?))
}

/// Opens an SSE session, reads its first event, and goes away without `/api/leave`.
async fn abandon_sse(addr: SocketAddr, room: &str) -> Result<(), String> {
    let mut socket = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!(
        "GET /api/connect?room={room} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    );
    socket
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while !seen.windows(7).any(|w| w == b"event: ") {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
            .await
            .map_err(|_| "no SSE event in 5 s".to_owned())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("SSE refused: {}", String::from_utf8_lossy(&seen)));
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// One short-lived WebSocket client: connect, identify, join, linger, go (every other one
/// without a close frame).
async fn churn_one(cli: &Cli, soak: &Soak, index: u64, counts: &Counts) -> Result<(), String> {
    let source = (index % u64::from(cli.source_ips.max(1))) as u8 + 1;
    let mut c = client::connect(&cli.url, source, &format!("churn-{index}")).await?;
    c.join(&soak.server_id).await?;
    tokio::time::sleep(Duration::from_millis(200 + (index % 10) * 150)).await;
    if index.is_multiple_of(2) {
        let _ = c.sink.close().await;
    } else {
        counts.abrupt.fetch_add(1, Ordering::Relaxed);
    }
    counts.lifecycles.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Reads a live client (so pings are answered) until told to stop, then closes it.
async fn hold(c: client::Client, mut stop: watch::Receiver<bool>) {
    let client::Client {
        mut sink,
        mut stream,
    } = c;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            message = stream.next() => if !matches!(message, Some(Ok(_))) { break },
        }
    }
    let _ = sink.close().await;
}

/// Runs the soak and prints its report.
pub async fn run(cli: &Cli, soak: Soak) -> Result<(), String> {
    let addr = server_addr(&cli.url)?;
    let start = scrape(addr).await?;
    let mut peak = start.clone();
    let mut timeline = vec![(Duration::ZERO, start.clone())];
    let began = Instant::now();
    let note = |peak: &mut Gauges, timeline: &mut Vec<(Duration, Gauges)>, now: Gauges| {
        for (name, value) in &now {
            let entry = peak.entry(name.clone()).or_insert(*value);
            *entry = entry.max(*value);
        }
        timeline.push((began.elapsed(), now));
    };

    // The live clients, each reading (and so answering pings) until told to close.
    let (stop_tx, stop_rx) = watch::channel(false);
    let names = (0..soak.live).map(|i| format!("live-{i}")).collect();
    let server_id = soak.server_id.clone();
    let live = crate::scenarios::open_many(cli, names, Some(&server_id), move |_, c| {
        let stop = stop_rx.clone();
        std::future::ready(tokio::spawn(hold(c, stop)))
    })
    .await?;
    println!("soak: {} live clients open", live.len());

    let counts = Arc::new(Counts::default());
    let churn_until = began + Duration::from_secs(soak.minutes * 60);
    let mut tasks = JoinSet::new();
    let mut next_sample = Instant::now() + Duration::from_secs(soak.sample_secs);
    let tick = Duration::from_millis(100);
    let (mut churn_due, mut sse_due) = (0.0f64, 0.0f64);
    let (mut churn_index, mut sse_index) = (0u64, 0u64);
    let cli = Arc::new(cli.clone());
    let soak = Arc::new(soak);
    while Instant::now() < churn_until {
        churn_due += soak.churn_per_sec as f64 * tick.as_secs_f64();
        sse_due += soak.sse_per_sec as f64 * tick.as_secs_f64();
        while churn_due >= 1.0 {
            churn_due -= 1.0;
            let (cli, soak, counts) = (cli.clone(), soak.clone(), counts.clone());
            let index = churn_index;
            churn_index += 1;
            tasks.spawn(async move {
                if let Err(e) = churn_one(&cli, &soak, index, &counts).await {
                    counts.failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("soak: churn client {index}: {e}");
                }
            });
        }
        while sse_due >= 1.0 {
            sse_due -= 1.0;
            let counts = counts.clone();
            let index = sse_index;
            sse_index += 1;
            tasks.spawn(async move {
                match abandon_sse(addr, &format!("soak-{}", index % 20)).await {
                    Ok(()) => counts.sse_abandoned.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("soak: SSE session {index}: {e}");
                        counts.failures.fetch_add(1, Ordering::Relaxed)
                    }
                };
            });
        }
        while tasks.try_join_next().is_some() {}
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(soak.sample_secs);
            note(&mut peak, &mut timeline, scrape(addr).await?);
        }
        tokio::time::sleep(tick).await;
    }
    while tasks.join_next().await.is_some() {}
    let churn_end = scrape(addr).await?;
    note(&mut peak, &mut timeline, churn_end.clone());

    let _ = stop_tx.send(true);
    for (_, reader) in live {
        let _ = reader.await;
    }
    println!(
        "soak: churn done after {:.0}s; live clients closed; idle for {}s",
        began.elapsed().as_secs_f64(),
        soak.idle_secs
    );
    let idle_until = Instant::now() + Duration::from_secs(soak.idle_secs);
    while Instant::now() < idle_until {
        tokio::time::sleep(Duration::from_secs(soak.sample_secs).min(idle_until - Instant::now()))
            .await;
        note(&mut peak, &mut timeline, scrape(addr).await?);
    }
    let end = scrape(addr).await?;
    note(&mut peak, &mut timeline, end.clone());

    report(&soak, &counts, &start, &peak, &churn_end, &end, &timeline);
    Ok(())
}

fn report(
    soak: &Soak,
    counts: &Counts,
    start: &Gauges,
    peak: &Gauges,
    churn_end: &Gauges,
    end: &Gauges,
    timeline: &[(Duration, Gauges)],
) {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "soak: {} live, {} connects/s, {} abandoned SSE sessions/s for {} min, then {} s idle",
        soak.live, soak.churn_per_sec, soak.sse_per_sec, soak.minutes, soak.idle_secs
    );
    println!(
        "soak: {} WebSocket lifecycles ({} without a close frame), {} SSE sessions abandoned, {} failures",
        load(&counts.lifecycles),
        load(&counts.abrupt),
        load(&counts.sse_abandoned),
        load(&counts.failures)
    );
    println!("\nsoak: timeline (every minute and the last sample)");
    println!(
        "{:>7} {:>10} {:>10} {:>12} {:>12} {:>8}",
        "t(s)", "ws", "sse", "rss(MiB)", "db(KiB)", "wal(KiB)"
    );
    let mut last_minute = None;
    for (i, (at, g)) in timeline.iter().enumerate() {
        let minute = at.as_secs() / 60;
        if last_minute == Some(minute) && i + 1 != timeline.len() {
            continue;
        }
        last_minute = Some(minute);
        let get = |n: &str| g.get(n).copied().unwrap_or(f64::NAN);
        println!(
            "{:>7} {:>10} {:>10} {:>12.1} {:>12.0} {:>8.0}",
            at.as_secs(),
            get("signalbox_websocket_connections"),
            get("signalbox_sse_sessions"),
            get("process_resident_memory_bytes") / 1048576.0,
            get("signalbox_db_file_bytes") / 1024.0,
            get("signalbox_db_wal_bytes") / 1024.0,
        );
    }
    println!(
        "\n{:<48} {:>14} {:>14} {:>14}  back",
        "gauge", "start", "peak", "end"
    );
    let mut not_back = Vec::new();
    for (name, s) in start {
        if name.ends_with("_limit") || name == "process_max_fds" {
            continue;
        }
        let p = peak.get(name).copied().unwrap_or(*s);
        let e = end.get(name).copied().unwrap_or(f64::NAN);
        let back = e <= *s;
        println!(
            "{name:<48} {s:>14} {p:>14} {e:>14}  {}",
            if back { "yes" } else { "no" }
        );
        if !back {
            not_back.push(format!("{name} ({s} -> {e})"));
        }
    }
    let rss = |g: &Gauges| g.get("process_resident_memory_bytes").copied();
    if let (Some(at_churn_end), Some(at_end)) = (rss(churn_end), rss(end)) {
        println!(
            "\nsoak: RSS {:.1} MiB at the end of the churn, {:.1} MiB after the idle period ({:+.1}%)",
            at_churn_end / 1048576.0,
            at_end / 1048576.0,
            (at_end - at_churn_end) / at_churn_end * 100.0
        );
    }
    if not_back.is_empty() {
        println!("soak: every gauge is back at its start");
    } else {
        println!("soak: not back at their start: {}", not_back.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unlabelled_gauges_are_read() {
        let text = "# HELP a x\n# TYPE a gauge\na 3\n# TYPE b counter\nb 4\n\
                    # TYPE c gauge\nc{x=\"1\"} 5\n# TYPE process_open_fds gauge\nprocess_open_fds 9\n";
        let gauges = parse_gauges(text);
        assert_eq!(gauges.get("a"), Some(&3.0));
        assert_eq!(gauges.get("process_open_fds"), Some(&9.0));
        assert!(!gauges.contains_key("b") && !gauges.contains_key("c"));
    }

    #[test]
    fn only_loopback_servers_are_soaked() {
        assert!(server_addr("ws://127.0.0.1:8080/ws").is_ok());
        assert!(server_addr("ws://10.0.0.1:8080/ws").is_err());
    }
}
