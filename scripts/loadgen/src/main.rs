//! `signalbox-loadgen`: drives a running signalbox over real WebSockets and prints figures.
//!
//! Scenarios (see `scripts/bench`, which starts a release server and runs all of them):
//! - `connections`: opens and identifies N connections, holds them, and reports the server's
//!   memory per connection (from `/proc/PID/status` when `--server-pid` is given);
//! - `forward`: pairs of clients send `offer`s to each other at a target rate; reports achieved
//!   throughput and one-way latency percentiles (sender and receiver share this process's clock);
//! - `fanout`: M members join one server, one of them posts `chat_message`s; reports the time
//!   for each message to reach every member and deliveries per second;
//! - `soak`: live clients, connect/disconnect churn and abandoned SSE sessions for some minutes,
//!   then quiet; prints every gauge's start, peak and end from `/metrics` (see `scripts/soak`).
//!
//! It speaks the protocol through `signalbox-protocol` types only. Connections are spread over
//! several loopback source addresses (127.0.0.1, 127.0.0.2, ...) so tens of thousands of them do
//! not exhaust one address's ephemeral ports. Every scenario is bounded in count and time.

mod client;
mod scenarios;
mod soak;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line.
#[derive(Debug, Clone, Parser)]
#[command(version, about = "Load generator for signalbox's WebSocket transport")]
pub struct Cli {
    /// WebSocket URL of the server.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ws", global = true)]
    pub url: String,
    /// Spread connections over this many loopback source addresses (127.0.0.1 and up).
    #[arg(long, default_value_t = 4, global = true)]
    pub source_ips: u8,
    /// Connections opened at once while setting up.
    #[arg(long, default_value_t = 256, global = true)]
    pub connect_concurrency: usize,
    /// The scenario.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// What to measure.
#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// Hold N identified connections and report server memory per connection.
    Connections {
        /// Connections to open.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Seconds to hold them before closing.
        #[arg(long, default_value_t = 5)]
        hold_secs: u64,
        /// The server's process id, to read its memory from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Forward `offer`s between pairs of clients at a target rate.
    Forward {
        /// Sender/receiver pairs.
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// Target envelopes per second, over all pairs.
        #[arg(long, default_value_t = 50_000)]
        rate: u64,
        /// Seconds to send for.
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        /// A chat server both sides join, so forwarding is allowed between them.
        #[arg(long)]
        server_id: String,
    },
    /// Post `chat_message`s to a server with many members.
    Fanout {
        /// Members of the server (the sender included).
        #[arg(long, default_value_t = 5_000)]
        members: usize,
        /// Messages to post.
        #[arg(long, default_value_t = 20)]
        messages: usize,
        /// Milliseconds between messages.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        /// The chat server to join.
        #[arg(long)]
        server_id: String,
    },
    /// Churn for some minutes, then stay idle; report every gauge's start, peak and end.
    Soak {
        /// WebSocket clients held during the churn.
        #[arg(long, default_value_t = 300)]
        live: usize,
        /// WebSocket clients opened and closed per second.
        #[arg(long, default_value_t = 10)]
        churn_per_sec: u64,
        /// SSE sessions opened and abandoned (no `/api/leave`) per second.
        #[arg(long, default_value_t = 2)]
        sse_per_sec: u64,
        /// Minutes of churn.
        #[arg(long, default_value_t = 15)]
        minutes: u64,
        /// Seconds of quiet afterwards (longer than the SSE idle timeout plus a prune scan).
        #[arg(long, default_value_t = 180)]
        idle_secs: u64,
        /// Seconds between two scrapes of `/metrics`.
        #[arg(long, default_value_t = 5)]
        sample_secs: u64,
        /// The chat server every client joins.
        #[arg(long)]
        server_id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(scenarios::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
