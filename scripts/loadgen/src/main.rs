//! `signalbox-loadgen`: drives a running signalbox over real WebSockets and prints figures.
//!
//! Scenarios (see `scripts/bench`, which starts a release server and runs all of them):
//! - `connections`: opens and identifies N connections, holds them, and reports the server's
//!   memory per connection (from `/proc/PID/status` when `--server-pid` is given);
//! - `forward`: pairs of clients send `offer`s to each other at a target rate; reports achieved
//!   throughput, one-way latency percentiles (sender and receiver share this process's clock)
//!   and losses; with `--urls` the pairs spread over cluster nodes, both members on one node or
//!   on two (`--placement`, see [`placement`]; `scripts/bench --cluster`);
//! - `fanout`: M members join one server, one of them posts `chat_message`s; reports the time
//!   for each message to reach every member and deliveries per second;
//! - `sse-fanout`: N SSE sessions in one room; one more session joins and leaves; reports the
//!   time for each membership change to reach every session as a `roster` (with `--delta`, as
//!   a `roster_joined`/`roster_left` on `roster=delta` streams);
//! - `soak`: live clients, connect/disconnect churn and abandoned SSE sessions for some minutes,
//!   then quiet; prints every gauge's start, peak and end from `/metrics` (see `scripts/soak`).
//! - `peers`: the side-by-side workloads (`rate`, `closed`, `idle`) against signalbox,
//!   matchbox_server, the PeerJS server or `bench-relay`, one adapter each, on one thread
//!   (`scripts/bench --peers`); `peers-report` turns their `RESULT` lines into the table.
//!
//! It speaks the protocol through `signalbox-protocol` types only. Connections are spread over
//! several loopback source addresses (127.0.0.1, 127.0.0.2, ...) so tens of thousands of them do
//! not exhaust one address's ephemeral ports. Every scenario is bounded in count and time.

mod client;
mod forward;
mod peers;
mod placement;
mod scenarios;
mod soak;
mod sse;
mod stats;
mod wire_peek;

use std::path::PathBuf;
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
        /// User ids are `PREFIX-0`, `PREFIX-1`, ...: distinct prefixes keep several generator
        /// processes' users apart.
        #[arg(long, default_value = "conn")]
        name_prefix: String,
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
        /// Node URLs (comma-separated) the pairs spread over; default: `--url` alone.
        #[arg(long, value_delimiter = ',')]
        urls: Vec<String>,
        /// With `--urls`: both members of a pair on one node, or on two different nodes.
        #[arg(long, value_enum, default_value_t = placement::Placement::Same)]
        placement: placement::Placement,
        /// User ids are `PREFIX-0`, `PREFIX-1`, ...
        #[arg(long, default_value = "fwd")]
        name_prefix: String,
        /// Seconds to wait for the last offers after sending stops before counting them lost.
        #[arg(long, default_value_t = 2)]
        grace_secs: u64,
        /// Fail unless every offer arrived exactly once, in order, and no sender got an error.
        #[arg(long)]
        require_all: bool,
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
        /// The server's process id: reports its CPU time per message (from /proc).
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// SSE sessions in one room; one more joins and leaves; each change's `roster` fan-out.
    SseFanout {
        /// SSE sessions holding a stream in the room.
        #[arg(long, default_value_t = 1_000)]
        sessions: usize,
        /// Membership changes (a join, then a leave, alternately).
        #[arg(long, default_value_t = 20)]
        changes: usize,
        /// The room (an ad-hoc room: a name no directory server has).
        #[arg(long, default_value = "sse-bench")]
        room: String,
        /// Open every stream with `roster=delta`: a change arrives as `roster_joined` or
        /// `roster_left` instead of a whole `roster`.
        #[arg(long)]
        delta: bool,
        /// The server's process id: reports its CPU time per change (from /proc).
        #[arg(long)]
        server_pid: Option<u32>,
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
    /// One side-by-side workload against one server, through that server's adapter.
    Peers(PeersArgs),
    /// The table of a side-by-side run: medians over rounds, ratios to the relay and matchbox.
    PeersReport {
        /// The file holding the run's `RESULT` lines.
        results: PathBuf,
    },
}

/// Which server, and how to reach and measure it.
#[derive(Debug, Clone, clap::Args)]
pub struct PeersArgs {
    /// The server's protocol (which adapter).
    #[arg(long, value_enum)]
    pub protocol: peers::Protocol,
    /// The server's `IP:port`.
    #[arg(long)]
    pub addr: String,
    /// The server's process id (CPU from /proc/PID/stat, memory from /proc/PID/status).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// signalbox only: the chat server the pairs join.
    #[arg(long, default_value = "bench")]
    pub server_id: String,
    /// The column in the report (default: the protocol's name).
    #[arg(long)]
    pub label: Option<String>,
    /// The round, for the report's medians.
    #[arg(long, default_value_t = 1)]
    pub round: u32,
    /// Clock ticks per second in /proc/PID/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    pub clk_tck: u64,
    /// Seconds to wait for the last signals after sending stops before counting them lost.
    #[arg(long, default_value_t = 10)]
    pub grace_secs: u64,
    /// The workload.
    #[command(subcommand)]
    pub workload: PeersWorkload,
}

/// The side-by-side workloads.
#[derive(Debug, Clone, Subcommand)]
pub enum PeersWorkload {
    /// One-way signals at a fixed total rate; latency percentiles.
    Rate {
        /// Sender/receiver pairs.
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// Signals per second over all pairs.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        /// Bytes of each signal's body.
        #[arg(long, default_value_t = 300)]
        size: usize,
        /// Seconds to send for.
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
    },
    /// A fixed number of signals in flight per pair, each delivery answered; delivered/s.
    Closed {
        /// Pairs.
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// Signals in flight per pair.
        #[arg(long, default_value_t = 8)]
        in_flight: usize,
        /// Bytes of each signal's body.
        #[arg(long, default_value_t = 300)]
        size: usize,
        /// Seconds to run for.
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
    },
    /// Registered, idle connections held; server memory per connection.
    Idle {
        /// Connections.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Seconds to hold them after measuring.
        #[arg(long, default_value_t = 2)]
        hold_secs: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The side-by-side workloads run on one thread (and `scripts/bench` pins it to one core),
    // so every server faces the same generator.
    let mut builder = match cli.scenario {
        Scenario::Peers(_) | Scenario::PeersReport { .. } => {
            tokio::runtime::Builder::new_current_thread()
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
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
