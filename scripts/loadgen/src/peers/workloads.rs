//! The side-by-side workloads, each against one server through its adapter:
//! - `rate`: pairs send signals one way at a fixed total rate; one-way latency percentiles;
//! - `closed`: each pair keeps a fixed number of signals in flight (every delivery is answered);
//!   delivered signals per second;
//! - `idle`: N registered connections held; server memory per connection.
//!
//! Every signal is checked: from the partner, in sequence, none missing; a lost signal or a
//! frame the adapter cannot parse fails the run. Server CPU per signal comes from
//! `/proc/PID/stat`. Each figure is printed for people and as a `RESULT` line (label, round,
//! metric, value, tab-separated) for `peers-report`. Runs on one thread (the caller's runtime);
//! never asserts on a figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{Frame, Peer, Protocol, Registration, body, next_text};
use crate::client::{Sink, Stream};
use crate::scenarios::now_us;
use crate::stats::{Latencies, cpu_ticks, rss_kib};

/// What every workload needs to reach and measure one server.
#[derive(Debug, Clone)]
pub struct Target {
    /// The adapter.
    pub protocol: Protocol,
    /// The server's `IP:port`.
    pub addr: String,
    /// Its process id, for CPU and memory.
    pub server_pid: Option<u32>,
    /// signalbox's chat server the pairs join.
    pub server_id: String,
    /// The column this run belongs to in the report.
    pub label: String,
    /// The round this run belongs to.
    pub round: u32,
    /// Loopback source addresses to spread connections over.
    pub source_ips: u8,
    /// Connections opened at once.
    pub connect_concurrency: usize,
    /// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`).
    pub clk_tck: u64,
}

impl Target {
    fn result(&self, metric: &str, value: f64) {
        println!(
            "RESULT\t{}\t{}\t{metric}\t{value:.4}",
            self.label, self.round
        );
    }

    fn cpu_us(&self) -> Option<u64> {
        let ticks = cpu_ticks(self.server_pid?)?;
        Some(ticks * 1_000_000 / self.clk_tck.max(1))
    }

    /// Opens one peer per registration name, `connect_concurrency` at a time, in order.
    async fn open(&self, names: Vec<(String, String)>, signals: bool) -> Result<Vec<Peer>, String> {
        let permits = Arc::new(Semaphore::new(self.connect_concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for (index, (name, room)) in names.into_iter().enumerate() {
            let permits = permits.clone();
            let target = self.clone();
            let source = (index % usize::from(self.source_ips.max(1))) as u8 + 1;
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
                let at = Registration {
                    name: &name,
                    room: &room,
                    signals,
                };
                let peer = target
                    .protocol
                    .connect(&target.addr, source, &at, &target.server_id)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                Ok::<_, String>((index, peer))
            });
        }
        let mut peers = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            peers.push(joined.map_err(|e| e.to_string())??);
        }
        peers.sort_by_key(|(index, _)| *index);
        Ok(peers.into_iter().map(|(_, peer)| peer).collect())
    }

    /// `pairs` pairs of peers, both of a pair in one room, named after `tag`.
    async fn open_pairs(&self, tag: &str, pairs: usize) -> Result<Vec<(Peer, Peer)>, String> {
        let names = (0..pairs)
            .flat_map(|i| {
                let room = format!("{tag}-{i}");
                [
                    (format!("{tag}-{i}a"), room.clone()),
                    (format!("{tag}-{i}b"), room),
                ]
            })
            .collect();
        let mut peers = self.open(names, true).await?;
        settle(self.protocol, &mut peers).await?;
        let mut peers = peers.into_iter();
        let mut out = Vec::with_capacity(pairs);
        while let (Some(a), Some(b)) = (peers.next(), peers.next()) {
            out.push((a, b));
        }
        Ok(out)
    }
}

/// How long every peer must have received nothing before a measurement starts ([`settle`]).
const SETTLE_QUIET: Duration = Duration::from_millis(200);

/// Reads the frames the peers' registration caused (signalbox: a `user_joined` to every
/// member already in the shared chat server for each join, O(peers²) in all; matchbox:
/// `NewPeer`) until none has arrived on any peer for [`SETTLE_QUIET`], so the measured window
/// starts with empty queues on both sides. Without it the first signals of a run waited
/// behind that backlog (a 35-40 ms `max` for signalbox at every rate, none for the relay):
/// set-up work, not the cost of a signal. A signal before any was sent fails the run.
async fn settle(protocol: Protocol, peers: &mut [Peer]) -> Result<(), String> {
    let drains = peers.iter_mut().map(|peer| async move {
        // Dropping `next_text` on the timeout loses nothing: `StreamExt::next` is cancel-safe.
        while let Ok(text) = tokio::time::timeout(SETTLE_QUIET, next_text(&mut peer.stream)).await {
            if let Frame::Signal { from, .. } = protocol.parse(&text?)? {
                return Err(format!(
                    "{}: a signal from {from} before any was sent",
                    peer.id
                ));
            }
        }
        Ok::<(), String>(())
    });
    futures_util::future::try_join_all(drains).await.map(|_| ())
}

/// The signals one peer received from its partner.
#[derive(Default)]
struct Received {
    latencies_us: Vec<u64>,
    count: u64,
}

/// Checks one frame: returns the signal's `(seq, sent_at_us)`, `None` for control frames.
fn check_frame(
    protocol: Protocol,
    text: &str,
    partner: &str,
    next_seq: u64,
) -> Result<Option<(u64, u64)>, String> {
    match protocol.parse(text)? {
        Frame::Control => Ok(None),
        Frame::Signal { from, body } => {
            if from != partner {
                return Err(format!("signal from {from}, expected {partner}"));
            }
            let (seq, sent_at) = body::decode(&body)?;
            if seq != next_seq {
                return Err(format!(
                    "signal {seq} from {partner} arrived when {next_seq} was due (lost, repeated or reordered)"
                ));
            }
            Ok(Some((seq, sent_at)))
        }
    }
}

/// Reads and checks frames on a stream that must carry no signals, until it ends.
async fn watch_control(protocol: Protocol, mut stream: Stream) -> Result<(), String> {
    while let Ok(text) = next_text(&mut stream).await {
        if let Frame::Signal { from, .. } = protocol.parse(&text)? {
            return Err(format!(
                "unexpected signal from {from} on a sending-only peer"
            ));
        }
    }
    Ok(())
}

async fn send_text(sink: &mut Sink, text: String) -> Result<(), String> {
    sink.send(Message::text(text))
        .await
        .map_err(|e| format!("send: {e}"))
}

/// Fixed-rate one-way signals: `pairs` senders together send `rate` signals/s of `size` bytes
/// for `duration`; every signal must arrive within `grace` after the last is sent.
pub async fn rate(
    target: &Target,
    pairs: usize,
    rate: u64,
    size: usize,
    duration: Duration,
    grace: Duration,
) -> Result<(), String> {
    let protocol = target.protocol;
    let pairs = pairs.max(1);
    let opened = target.open_pairs(&format!("r{rate}"), pairs).await?;
    let period = Duration::from_secs_f64(pairs as f64 / rate.max(1) as f64);
    let cpu_before = target.cpu_us();
    let start = tokio::time::Instant::now();
    let mut senders = JoinSet::new();
    let mut receivers = JoinSet::new();
    let mut watchers = JoinSet::new();
    for (index, (a, b)) in opened.into_iter().enumerate() {
        let (done, sent) = oneshot::channel();
        let to = b.id.clone();
        // Staggered, so the pairs do not all send in the same instant.
        let first = start + period.mul_f64(index as f64 / pairs as f64);
        let mut sink = a.sink;
        senders.spawn(async move {
            let mut ticker = tokio::time::interval_at(first, period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut seq = 0u64;
            let mut outcome = Ok(());
            while start.elapsed() < duration {
                ticker.tick().await;
                let text = protocol.signal(&to, &body::encode(seq, now_us(), size));
                if let Err(e) = send_text(&mut sink, text).await {
                    outcome = Err(e);
                    break;
                }
                seq += 1;
            }
            let _ = done.send(seq);
            outcome.map(|()| (seq, sink))
        });
        watchers.spawn(watch_control(protocol, a.stream));
        receivers.spawn(receive_counted(protocol, b.stream, a.id, sent, grace));
    }
    let mut sent = 0;
    let mut sinks = Vec::new();
    while let Some(joined) = senders.join_next().await {
        let (count, sink) = joined.map_err(|e| e.to_string())??;
        sent += count;
        sinks.push(sink);
    }
    let cpu_after = target.cpu_us();
    let elapsed = start.elapsed();
    let mut samples = Vec::new();
    let mut delivered = 0;
    while let Some(joined) = receivers.join_next().await {
        let received = joined.map_err(|e| e.to_string())??;
        delivered += received.count;
        samples.extend(received.latencies_us);
    }
    drop(sinks);
    while let Some(finished) = watchers.try_join_next() {
        if let Ok(Err(e)) = finished {
            return Err(format!("{}: {e}", target.label));
        }
    }
    watchers.abort_all();
    let latencies = Latencies::new(samples);
    println!(
        "rate {}: {pairs} pairs, target {rate}/s, {size}-byte signals for {:.1}s: sent {sent} ({:.0}/s), delivered {delivered}",
        target.label,
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    println!("rate {}: one-way {}", target.label, latencies.summary_ms());
    if delivered != sent {
        return Err(format!(
            "{}: {} of {sent} signals never reached their partner",
            target.label,
            sent - delivered
        ));
    }
    let ms = |us: u64| us as f64 / 1000.0;
    target.result(&format!("p50_ms@{rate}"), ms(latencies.percentile(50.0)));
    target.result(&format!("p99_ms@{rate}"), ms(latencies.percentile(99.0)));
    target.result(
        &format!("sent_per_s@{rate}"),
        sent as f64 / elapsed.as_secs_f64(),
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let per = after.saturating_sub(before) as f64 / sent.max(1) as f64;
        println!("rate {}: server CPU {per:.2} µs per signal", target.label);
        target.result(&format!("cpu_us_per_signal@{rate}"), per);
    }
    Ok(())
}

/// Receives and checks the signals of one partner until it has all of them (their number
/// arrives on `sent` when the partner stops) or `grace` after that.
async fn receive_counted(
    protocol: Protocol,
    mut stream: Stream,
    partner: String,
    mut sent: oneshot::Receiver<u64>,
    grace: Duration,
) -> Result<Received, String> {
    let mut received = Received::default();
    let mut expected: Option<u64> = None;
    let give_up = tokio::time::sleep(Duration::from_secs(24 * 3600));
    tokio::pin!(give_up);
    loop {
        if expected.is_some_and(|n| received.count >= n) {
            break;
        }
        tokio::select! {
            text = next_text(&mut stream) => {
                if let Some((_, sent_at)) = check_frame(protocol, &text?, &partner, received.count)? {
                    received.latencies_us.push(now_us().saturating_sub(sent_at));
                    received.count += 1;
                }
            }
            count = &mut sent, if expected.is_none() => {
                expected = Some(count.unwrap_or(0));
                give_up.as_mut().reset(tokio::time::Instant::now() + grace);
            }
            () = &mut give_up => break,
        }
    }
    Ok(received)
}

/// Closed loop: each pair keeps `in_flight` signals in flight for `duration` (the first peer
/// sends them, every delivery is answered by its receiver); then the loop drains.
pub async fn closed(
    target: &Target,
    pairs: usize,
    in_flight: usize,
    size: usize,
    duration: Duration,
    grace: Duration,
) -> Result<(), String> {
    let protocol = target.protocol;
    let opened = target.open_pairs("closed", pairs.max(1)).await?;
    let start = tokio::time::Instant::now();
    let stop_at = start + duration;
    let give_up_at = stop_at + grace;
    let cpu_before = target.cpu_us();
    let mut tasks = JoinSet::new();
    let mut pendings = Vec::new();
    for (a, b) in opened {
        let pending = Arc::new(AtomicI64::new(0));
        pendings.push(pending.clone());
        let (a_id, b_id) = (a.id.clone(), b.id.clone());
        let loop_a = Loop {
            protocol,
            partner: b_id,
            pending: pending.clone(),
            stop_at,
            give_up_at,
            size,
        };
        let loop_b = Loop {
            partner: a_id,
            pending,
            ..loop_a.clone()
        };
        tasks.spawn(loop_a.run(a, in_flight));
        tasks.spawn(loop_b.run(b, 0));
    }
    tokio::time::sleep_until(stop_at).await;
    let cpu_after = target.cpu_us();
    let mut delivered = 0;
    while let Some(joined) = tasks.join_next().await {
        delivered += joined.map_err(|e| e.to_string())??;
    }
    let lost: i64 = pendings.iter().map(|p| p.load(Ordering::Relaxed)).sum();
    let per_s = delivered as f64 / duration.as_secs_f64();
    println!(
        "closed {}: {pairs} pairs, {in_flight} in flight each, {size}-byte signals for {:.1}s: delivered {delivered} ({per_s:.0}/s)",
        target.label,
        duration.as_secs_f64()
    );
    if lost != 0 {
        return Err(format!(
            "{}: {lost} signals in flight never reached their partner",
            target.label
        ));
    }
    target.result("closed_delivered_per_s", per_s);
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let per = after.saturating_sub(before) as f64 / delivered.max(1) as f64;
        println!("closed {}: server CPU {per:.2} µs per signal", target.label);
        target.result("closed_cpu_us_per_signal", per);
    }
    Ok(())
}

/// One peer of a closed-loop pair.
#[derive(Clone)]
struct Loop {
    protocol: Protocol,
    partner: String,
    /// Signals of this pair sent and not yet received.
    pending: Arc<AtomicI64>,
    stop_at: tokio::time::Instant,
    give_up_at: tokio::time::Instant,
    size: usize,
}

impl Loop {
    /// Sends `initial` signals, then answers each delivery until `stop_at`, then waits for the
    /// pair's in-flight signals to drain. Returns the deliveries it received before `stop_at`.
    async fn run(self, mut peer: Peer, initial: usize) -> Result<u64, String> {
        let mut seq = 0u64;
        for _ in 0..initial {
            self.feed(&mut peer.sink, &mut seq).await?;
        }
        peer.sink.flush().await.map_err(|e| format!("send: {e}"))?;
        let mut received = 0u64;
        let mut counted = 0u64;
        let give_up = tokio::time::sleep_until(self.give_up_at);
        tokio::pin!(give_up);
        let mut drained = tokio::time::interval_at(self.stop_at, Duration::from_millis(10));
        loop {
            tokio::select! {
                text = next_text(&mut peer.stream) => {
                    // Every frame already received is answered before one flush, as a client
                    // reading a batch would: one system call per batch, not per answer (the
                    // generator runs on one core and must not be the limit).
                    let mut next = Some(text?);
                    let mut answered = false;
                    while let Some(text) = next.take() {
                        if check_frame(self.protocol, &text, &self.partner, received)?.is_some() {
                            received += 1;
                            self.pending.fetch_sub(1, Ordering::Relaxed);
                            if tokio::time::Instant::now() < self.stop_at {
                                counted += 1;
                                self.feed(&mut peer.sink, &mut seq).await?;
                                answered = true;
                            }
                        }
                        next = next_text(&mut peer.stream).now_or_never().transpose()?;
                    }
                    if answered {
                        peer.sink.flush().await.map_err(|e| format!("send: {e}"))?;
                    }
                }
                _ = drained.tick() => {
                    if self.pending.load(Ordering::Relaxed) == 0 {
                        break;
                    }
                }
                () = &mut give_up => break,
            }
        }
        Ok(counted)
    }

    /// Queues the next signal to the partner; the caller flushes.
    async fn feed(&self, sink: &mut Sink, seq: &mut u64) -> Result<(), String> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let text = self
            .protocol
            .signal(&self.partner, &body::encode(*seq, now_us(), self.size));
        *seq += 1;
        sink.feed(Message::text(text))
            .await
            .map_err(|e| format!("send: {e}"))
    }
}

/// Holds `count` registered, idle connections and reports the server's resident memory per
/// connection (the growth from before the first to after the last, divided by `count`).
pub async fn idle(target: &Target, count: usize, hold: Duration) -> Result<(), String> {
    let before = target.server_pid.and_then(rss_kib);
    let started = Instant::now();
    let names = (0..count)
        .map(|i| (format!("idle-{i}"), format!("idle-{i}")))
        .collect();
    let peers = target.open(names, false).await?;
    let setup = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = target.server_pid.and_then(rss_kib);
    println!(
        "idle {}: {} connections registered in {:.2}s",
        target.label,
        peers.len(),
        setup.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (before, after) {
        let per = after.saturating_sub(before) as f64 / peers.len().max(1) as f64;
        println!(
            "idle {}: server RSS {before} KiB before, {after} KiB with them open: {per:.2} KiB per connection",
            target.label
        );
        target.result("idle_kib_per_connection", per);
    }
    let mut peers = peers;
    if let Some(keepalive) = target.protocol.keepalive() {
        for peer in &mut peers {
            send_text(&mut peer.sink, keepalive.clone()).await?;
        }
    }
    tokio::time::sleep(hold).await;
    drop(peers);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(from: &str, seq: u64) -> String {
        Protocol::Relay.signal(from, &body::encode(seq, 1_000, 40))
    }

    #[test]
    fn the_signal_due_from_the_partner_is_accepted_with_its_send_time() {
        assert_eq!(
            check_frame(Protocol::Relay, &frame("alice", 3), "alice", 3),
            Ok(Some((3, 1_000)))
        );
        assert_eq!(
            check_frame(Protocol::Relay, "hello bob", "alice", 3),
            Ok(None)
        );
    }

    #[test]
    fn a_stranger_a_gap_a_repeat_or_garbage_fails_the_run() {
        assert!(check_frame(Protocol::Relay, &frame("mallory", 0), "alice", 0).is_err());
        let gap = check_frame(Protocol::Relay, &frame("alice", 5), "alice", 4);
        assert!(gap.is_err_and(|e| e.contains("arrived when 4 was due")));
        assert!(check_frame(Protocol::Relay, &frame("alice", 3), "alice", 4).is_err());
        assert!(check_frame(Protocol::Relay, "alice\nnot a body", "alice", 0).is_err());
        assert!(check_frame(Protocol::Relay, "no newline", "alice", 0).is_err());
    }
}
