//! The `forward` scenario: pairs of clients, one sending `offer`s to the other at a fixed total
//! rate, on one server or spread over cluster nodes ([`Nodes`]). Prints throughput, one-way
//! latency percentiles (sender and receiver share this process's clock), what was lost,
//! duplicated or reordered, and the error codes senders got.
//!
//! Owns the pairs' send and receive loops. Never decides placement (that is [`Nodes`]) and
//! never runs unbounded: sending stops after the duration, receiving after the grace period.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use signalbox_protocol::json::JsonObject;
use signalbox_protocol::ws::{SdpSignal, SdpType, SessionDescription};
use signalbox_protocol::{ClientEnvelope, ServerEnvelope, UserId};
use tokio::task::JoinSet;

use crate::Cli;
use crate::client;
use crate::placement::{Delivery, Nodes};
use crate::scenarios::{now_us, open_many_at};
use crate::stats::Latencies;

/// One `forward` run.
pub struct Forward {
    /// Sender/receiver pairs.
    pub pairs: usize,
    /// Envelopes per second over all pairs.
    pub rate: u64,
    /// How long to send.
    pub duration: Duration,
    /// How long to wait for the last offers once sending stopped.
    pub grace: Duration,
    /// The chat server every client joins (forwarding needs a shared server).
    pub server_id: String,
    /// User ids are `PREFIX-i`.
    pub name_prefix: String,
    /// Where each client connects.
    pub nodes: Nodes,
    /// Fail unless everything arrived exactly once, in order, with no error.
    pub require_all: bool,
}

/// What one pair's sender did.
struct Sent {
    count: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
}

fn offer_to(target: &str, seq: u64) -> ClientEnvelope {
    let mut extra = JsonObject::new();
    extra.insert("sentAtUs".into(), json!(now_us()));
    extra.insert("seq".into(), json!(seq));
    ClientEnvelope::Offer(SdpSignal {
        target_user_id: UserId::from(target),
        sdp: SessionDescription {
            sdp_type: SdpType::Offer,
            sdp: Some("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n".into()),
            extra: JsonObject::new(),
        },
        extra,
    })
}

/// How often a reader wakes to look at its stop condition.
const POLL: Duration = Duration::from_millis(100);

/// What one receiver saw.
struct Received {
    /// One-way latency of each offer, in microseconds.
    samples: Vec<u64>,
    delivery: Delivery,
    /// Why its connection ended before the run did, if it did.
    ended: Option<String>,
}

/// Reads offers until the sender is done and every offer it sent has arrived, or `deadline`.
async fn receive_offers(mut stream: client::Stream, sent: Sent, deadline: Instant) -> Received {
    let mut samples = Vec::new();
    let mut delivery = Delivery::default();
    let mut ended = None;
    loop {
        if sent.done.load(Ordering::Acquire)
            && delivery.distinct >= sent.count.load(Ordering::Acquire)
        {
            break;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            break;
        }
        match tokio::time::timeout(remaining.min(POLL), client::next_envelope(&mut stream)).await {
            Ok(Ok(ServerEnvelope::Offer(offer))) => {
                if let Some(at) = offer.extra.get("sentAtUs").and_then(|v| v.as_u64()) {
                    samples.push(now_us().saturating_sub(at));
                }
                if let Some(seq) = offer.extra.get("seq").and_then(|v| v.as_u64()) {
                    delivery.record(seq);
                }
            }
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => {
                ended = Some(e);
                break;
            }
        }
    }
    Received {
        samples,
        delivery,
        ended,
    }
}

/// Counts the error codes a sender receives until `stop` is set or the stream ends.
async fn sender_errors(mut stream: client::Stream, stop: Arc<AtomicBool>) -> BTreeMap<String, u64> {
    let mut codes = BTreeMap::new();
    while !stop.load(Ordering::Acquire) {
        match tokio::time::timeout(POLL, client::next_envelope(&mut stream)).await {
            Ok(Ok(ServerEnvelope::Error(error))) => {
                *codes.entry(error.code.as_str().to_owned()).or_insert(0) += 1;
            }
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(_)) => break,
        }
    }
    codes
}

/// Runs the scenario and prints its figures.
pub async fn run(cli: &Cli, run: Forward) -> Result<(), String> {
    let Forward {
        pairs,
        rate,
        duration,
        grace,
        server_id,
        name_prefix,
        nodes,
        require_all,
    } = run;
    let name = |i: usize| format!("{name_prefix}-{i}");
    let clients = open_many_at(
        cli,
        (0..pairs * 2)
            .map(|i| (nodes.url_of(i).to_owned(), name(i)))
            .collect(),
        Some(&server_id),
        |_, client| async move { client },
    )
    .await?;
    let start = Instant::now();
    let deadline = start + duration + grace;
    let period = Duration::from_secs_f64(pairs as f64 / rate.max(1) as f64);
    let stop_readers = Arc::new(AtomicBool::new(false));
    let mut receivers = JoinSet::new();
    let mut senders = JoinSet::new();
    let mut error_readers = JoinSet::new();
    let mut clients = clients.into_iter();
    while let (Some((_, sender)), Some((b, receiver))) = (clients.next(), clients.next()) {
        let count = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let sent = Sent {
            count: count.clone(),
            done: done.clone(),
        };
        receivers.spawn(receive_offers(receiver.stream, sent, deadline));
        error_readers.spawn(sender_errors(sender.stream, stop_readers.clone()));
        let target = name(b);
        let mut sink = sender.sink;
        senders.spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut seq = 0u64;
            while start.elapsed() < duration {
                ticker.tick().await;
                if client::send_on(&mut sink, &offer_to(&target, seq))
                    .await
                    .is_err()
                {
                    break;
                }
                seq += 1;
                count.store(seq, Ordering::Release);
            }
            done.store(true, Ordering::Release);
            (seq, sink)
        });
    }
    let mut sent = 0;
    let mut sinks = Vec::new();
    while let Some(result) = senders.join_next().await {
        let (count, sink) = result.map_err(|e| e.to_string())?;
        sent += count;
        sinks.push(sink);
    }
    let mut samples = Vec::new();
    let mut total = Delivery::default();
    let mut ended = Vec::new();
    while let Some(result) = receivers.join_next().await {
        let received = result.map_err(|e| e.to_string())?;
        samples.extend(received.samples);
        total.distinct += received.delivery.distinct;
        total.duplicates += received.delivery.duplicates;
        total.out_of_order += received.delivery.out_of_order;
        ended.extend(received.ended);
    }
    stop_readers.store(true, Ordering::Release);
    let mut errors = BTreeMap::new();
    while let Some(result) = error_readers.join_next().await {
        for (code, n) in result.map_err(|e| e.to_string())? {
            *errors.entry(code).or_insert(0u64) += n;
        }
    }
    drop(sinks);
    let latencies = Latencies::new(samples);
    let lost = total.lost(sent);
    println!(
        "forward: {pairs} pairs ({} over {} node URL(s)), target {rate}/s for {}s: sent {sent}, \
         delivered {} ({:.0}/s), lost {lost}, duplicates {}, out of order {}",
        nodes.placement(),
        nodes.len(),
        duration.as_secs(),
        total.distinct,
        total.distinct as f64 / duration.as_secs_f64().max(f64::EPSILON),
        total.duplicates,
        total.out_of_order,
    );
    println!("forward: one-way latency {}", latencies.summary_ms());
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(|(c, n)| format!("{c}={n}")).collect();
        println!("forward: errors answered to senders: {}", list.join(" "));
    }
    if require_all
        && (lost > 0 || total.duplicates > 0 || total.out_of_order > 0 || !errors.is_empty())
    {
        return Err(format!(
            "not every offer arrived exactly once and in order ({lost} lost, {} duplicated, \
             {} out of order, {} errors)",
            total.duplicates,
            total.out_of_order,
            errors.values().sum::<u64>()
        ));
    }
    if require_all && sent == 0 {
        return Err("no offer was sent".into());
    }
    Ok(())
}
