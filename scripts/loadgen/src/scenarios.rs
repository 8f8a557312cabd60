//! The scenarios: `connections`, `fanout` (and `forward`, `soak`, in their own modules). Each prints
//! its figures on stdout.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use signalbox_protocol::json::JsonObject;
use signalbox_protocol::ws::ChatMessage;
use signalbox_protocol::{ClientEnvelope, ServerId};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{self, Client};
use crate::peers;
use crate::peers::workloads::{self, Target};
use crate::placement::Nodes;
use crate::stats::{Latencies, rss_kib};
use crate::{Cli, PeersArgs, PeersWorkload, Scenario};

/// Microseconds since this process started: one clock for senders and receivers.
pub(crate) fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Runs the chosen scenario.
pub async fn run(cli: Cli) -> Result<(), String> {
    now_us();
    match &cli.scenario {
        Scenario::Connections {
            count,
            hold_secs,
            server_pid,
            name_prefix,
        } => connections(&cli, *count, *hold_secs, *server_pid, name_prefix).await,
        Scenario::Forward {
            pairs,
            rate,
            duration_secs,
            server_id,
            urls,
            placement,
            name_prefix,
            grace_secs,
            require_all,
        } => {
            let urls = if urls.is_empty() {
                vec![cli.url.clone()]
            } else {
                urls.clone()
            };
            let run = crate::forward::Forward {
                pairs: *pairs,
                rate: *rate,
                duration: Duration::from_secs(*duration_secs),
                grace: Duration::from_secs(*grace_secs),
                server_id: server_id.clone(),
                name_prefix: name_prefix.clone(),
                nodes: Nodes::new(urls, *placement)?,
                require_all: *require_all,
            };
            crate::forward::run(&cli, run).await
        }
        Scenario::Fanout {
            members,
            messages,
            interval_ms,
            server_id,
            server_pid,
        } => {
            fanout(
                &cli,
                *members,
                *messages,
                *interval_ms,
                server_id,
                *server_pid,
            )
            .await
        }
        Scenario::SseFanout {
            sessions,
            changes,
            room,
            delta,
            server_pid,
        } => {
            let mode = if *delta {
                signalbox_protocol::sse::RosterMode::Delta
            } else {
                signalbox_protocol::sse::RosterMode::Full
            };
            crate::sse::fanout(&cli, *sessions, *changes, room, mode, *server_pid).await
        }
        Scenario::Soak {
            live,
            churn_per_sec,
            sse_per_sec,
            minutes,
            idle_secs,
            sample_secs,
            server_id,
        } => {
            let soak = crate::soak::Soak {
                live: *live,
                churn_per_sec: *churn_per_sec,
                sse_per_sec: *sse_per_sec,
                minutes: *minutes,
                idle_secs: *idle_secs,
                sample_secs: (*sample_secs).max(1),
                server_id: server_id.clone(),
            };
            crate::soak::run(&cli, soak).await
        }
        Scenario::Peers(args) => side_by_side(&cli, args).await,
        Scenario::PeersReport { results } => {
            let text = std::fs::read_to_string(results)
                .map_err(|e| format!("cannot read {}: {e}", results.display()))?;
            print!("{}", peers::report::Results::parse(&text)?.table());
            Ok(())
        }
    }
}

/// One side-by-side workload (`peers`).
async fn side_by_side(cli: &Cli, args: &PeersArgs) -> Result<(), String> {
    let target = Target {
        protocol: args.protocol,
        addr: args.addr.clone(),
        server_pid: args.server_pid,
        server_id: args.server_id.clone(),
        label: args
            .label
            .clone()
            .unwrap_or_else(|| format!("{:?}", args.protocol).to_lowercase()),
        round: args.round,
        source_ips: cli.source_ips,
        connect_concurrency: cli.connect_concurrency,
        clk_tck: args.clk_tck,
    };
    let grace = Duration::from_secs(args.grace_secs);
    match &args.workload {
        PeersWorkload::Rate {
            pairs,
            rate,
            size,
            duration_secs,
        } => {
            let duration = Duration::from_secs(*duration_secs);
            workloads::rate(&target, *pairs, *rate, *size, duration, grace).await
        }
        PeersWorkload::Closed {
            pairs,
            in_flight,
            size,
            duration_secs,
        } => {
            let duration = Duration::from_secs(*duration_secs);
            workloads::closed(&target, *pairs, *in_flight, *size, duration, grace).await
        }
        PeersWorkload::Idle { count, hold_secs } => {
            workloads::idle(&target, *count, Duration::from_secs(*hold_secs)).await
        }
    }
}

/// Opens `names.len()` identified connections, `cli.connect_concurrency` at a time, joining
/// `server_id` when given; `after_connect` runs on each as soon as it is ready (in connection
/// order is not guaranteed) and returns what the caller keeps.
pub(crate) async fn open_many<T, F, Fut>(
    cli: &Cli,
    names: Vec<String>,
    server_id: Option<&str>,
    after_connect: F,
) -> Result<Vec<(usize, T)>, String>
where
    T: Send + 'static,
    F: Fn(usize, Client) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let targets = names.into_iter().map(|name| (cli.url.clone(), name));
    open_many_at(cli, targets.collect(), server_id, after_connect).await
}

/// [`open_many`] with a URL per connection: `(url, name)` pairs.
pub(crate) async fn open_many_at<T, F, Fut>(
    cli: &Cli,
    targets: Vec<(String, String)>,
    server_id: Option<&str>,
    after_connect: F,
) -> Result<Vec<(usize, T)>, String>
where
    T: Send + 'static,
    F: Fn(usize, Client) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let permits = Arc::new(Semaphore::new(cli.connect_concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (index, (url, name)) in targets.into_iter().enumerate() {
        let permits = permits.clone();
        let source = (index % usize::from(cli.source_ips.max(1))) as u8 + 1;
        let server_id = server_id.map(str::to_owned);
        let after_connect = after_connect.clone();
        tasks.spawn(async move {
            let permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
            let mut client = client::connect(&url, source, &name).await?;
            if let Some(server_id) = &server_id {
                client.join(server_id).await?;
            }
            drop(permit);
            Ok::<_, String>((index, after_connect(index, client).await))
        });
    }
    let mut out = Vec::new();
    while let Some(result) = tasks.join_next().await {
        out.push(result.map_err(|e| e.to_string())??);
    }
    out.sort_by_key(|(index, _)| *index);
    Ok(out)
}

async fn connections(
    cli: &Cli,
    count: usize,
    hold_secs: u64,
    pid: Option<u32>,
    name_prefix: &str,
) -> Result<(), String> {
    let before = pid.and_then(rss_kib);
    let started = Instant::now();
    let names = (0..count).map(|i| format!("{name_prefix}-{i}")).collect();
    let clients = open_many(cli, names, None, |_, client| async move { client }).await?;
    let setup = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = pid.and_then(rss_kib);
    println!(
        "connections: {} identified connections open in {:.2}s",
        clients.len(),
        setup.as_secs_f64()
    );
    match (before, after) {
        (Some(before), Some(after)) => {
            let per = (after.saturating_sub(before)) as f64 / clients.len().max(1) as f64;
            println!(
                "connections: server RSS {before} KiB before, {after} KiB with them open: {per:.2} KiB per connection"
            );
        }
        _ => println!("connections: server memory not measured (pass --server-pid)"),
    }
    tokio::time::sleep(Duration::from_secs(hold_secs)).await;
    drop(clients);
    Ok(())
}

/// Reads and discards everything until the stream ends (keeps the server's queue drained).
async fn drain(mut stream: client::Stream) {
    while let Some(Ok(_)) = stream.next().await {}
}

/// Arrival times (µs) of each message `seq`, as seen by one member.
async fn receive_chat(
    mut stream: client::Stream,
    messages: usize,
    deadline: Instant,
) -> Vec<(u64, u64)> {
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    // Frames are read raw and only a probe's `seq` is looked at (`wire_peek`): every copy is
    // timed when this task gets it, and the generator's own parsing would delay the others.
    let mut arrivals = Vec::with_capacity(messages);
    while arrivals.len() < messages {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, stream.next()).await {
            Ok(Some(Ok(WsMessage::Text(text)))) => {
                if let Some(seq) = crate::wire_peek::chat_seq(&text) {
                    arrivals.push((seq, now_us()));
                }
            }
            Ok(Some(Ok(WsMessage::Close(_)) | Err(_)) | None) | Err(_) => break,
            Ok(Some(Ok(_))) => {}
        }
    }
    tokio::spawn(drain(stream));
    arrivals
}

async fn fanout(
    cli: &Cli,
    members: usize,
    messages: usize,
    interval_ms: u64,
    server_id: &str,
    server_pid: Option<u32>,
) -> Result<(), String> {
    let members = members.max(2);
    let names = (0..members).map(|i| format!("fan-{i}")).collect();
    let setup_started = Instant::now();
    // Every member starts reading as soon as it has joined, so the joins of later members
    // (user_joined to all) never back up its queue.
    // The join reads frames by their type only (`wire_peek`): the rosters and `user_joined`s
    // of a join storm are not parsed.
    let server = server_id.to_owned();
    let opened = open_many(cli, names, None, move |index, mut client| {
        let server = server.clone();
        async move {
            crate::wire_peek::join_lean(&mut client, &server).await?;
            Ok::<_, String>(if index == 0 {
                tokio::spawn(drain(client.stream));
                (Some(client.sink), None)
            } else {
                let deadline = Instant::now() + Duration::from_secs(600);
                (
                    None,
                    Some(tokio::spawn(receive_chat(
                        client.stream,
                        messages,
                        deadline,
                    ))),
                )
            })
        }
    })
    .await?
    .into_iter()
    .map(|(index, opened)| opened.map(|opened| (index, opened)))
    .collect::<Result<Vec<_>, String>>()?;
    println!(
        "fanout: {members} members joined `{server_id}` in {:.2}s",
        setup_started.elapsed().as_secs_f64()
    );
    let settled = crate::stats::wait_until_idle(server_pid, Duration::from_millis(500)).await;
    println!(
        "fanout: server idle after {:.2}s (set-up traffic written)",
        settled.as_secs_f64()
    );

    let mut sender = None;
    let mut receivers = Vec::new();
    for (_, (sink, receiver)) in opened {
        if let Some(sink) = sink {
            sender = Some(sink);
        }
        if let Some(receiver) = receiver {
            receivers.push(receiver);
        }
    }
    let mut sink = sender.ok_or("no sender")?;
    let cpu_before = server_pid.and_then(crate::stats::cpu_ns);
    let mut sent_at = Vec::with_capacity(messages);
    for seq in 0..messages {
        let mut message = JsonObject::new();
        message.insert("seq".into(), json!(seq));
        message.insert("content".into(), json!("fan-out probe"));
        sent_at.push(now_us());
        client::send_on(
            &mut sink,
            &ClientEnvelope::ChatMessage(ChatMessage {
                server_id: Some(ServerId::from(server_id)),
                message,
            }),
        )
        .await?;
        if interval_ms > 0 {
            tokio::time::sleep(Duration::from_millis(interval_ms)).await;
        }
    }
    let mut last_arrival = vec![0u64; messages];
    let mut deliveries = 0usize;
    for receiver in receivers {
        for (seq, at) in receiver.await.unwrap_or_default() {
            if let Some(slot) = last_arrival.get_mut(seq as usize) {
                *slot = (*slot).max(at);
                deliveries += 1;
            }
        }
    }
    let cpu_after = server_pid.and_then(crate::stats::cpu_ns);
    let expected = messages * (members - 1);
    let to_all: Vec<u64> = last_arrival
        .iter()
        .zip(&sent_at)
        .map(|(last, sent)| last.saturating_sub(*sent))
        .collect();
    let window_us = last_arrival
        .iter()
        .max()
        .copied()
        .unwrap_or(0)
        .saturating_sub(sent_at.first().copied().unwrap_or(0));
    println!("fanout: delivered {deliveries} of {expected} chat_message copies");
    println!(
        "fanout: time for one message to reach all {} members: {}",
        members - 1,
        Latencies::new(to_all).summary_ms()
    );
    println!(
        "fanout: {:.0} deliveries/s over {:.1} ms ({} messages, {} ms apart)",
        deliveries as f64 / (window_us.max(1) as f64 / 1e6),
        window_us as f64 / 1000.0,
        messages,
        interval_ms
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let per_message = after.saturating_sub(before) as f64 / messages.max(1) as f64;
        println!(
            "fanout: server CPU {:.2} ms per message ({:.0} ns per copy)",
            per_message / 1e6,
            per_message / (members - 1) as f64
        );
    }
    Ok(())
}
