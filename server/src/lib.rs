//! # signalbox (server)
//!
//! The warp server behind the `signalbox` binary. Every byte it reads or writes is a type of
//! `signalbox-protocol`.
//!
//! Architecture, outside in:
//! - [`cli`] parses the command line; [`config`] merges the variables file, environment and
//!   flags into one [`config::Config`]; [`telemetry`] installs logging.
//! - [`app`] builds the shared state and the warp filter tree; [`shutdown`] turns SIGINT/SIGTERM
//!   into a graceful stop.
//! - [`routes`] holds the REST routes, one file per family, all listed in one route table that
//!   both the router and the OpenAPI document are built from; [`http`] holds what every route
//!   shares (the error type, body parsing, size cap, `Idempotency-Key`).
//! - [`auth`] issues and checks tokens (Ed25519 challenge-response, guests, JWTs).
//! - [`directory`] is the persistent directory (SQLite): migrations, typed commands and queries,
//!   and the access rules ([`directory::access`]) shared by REST and the realtime handlers.
//! - [`hub`] routes realtime envelopes between connections (no I/O, no database).
//! - [`transport`] holds the realtime transports ([`transport::websocket`]: the upgrade and
//!   per-socket tasks; [`transport::sse`]: rooms over SSE and POSTs) and what they share (rate
//!   limits, connection caps, counters); [`handlers`] holds one handler per client envelope
//!   type, dispatched by one exhaustive `match`.
//! - [`plugins`] checks plugin manifests and events; [`ice`] mints the STUN/TURN list the
//!   transports hand to clients.
//! - [`admin`] serves the operator dashboard at `/admin` and the JSON snapshot it polls.
//! - [`demo`] serves the demo page at `/demo` (embedded files built from `bindings/typescript`).
//! - [`outbound`] is the SSRF guard every fetch the server makes for a client goes through.
//! - [`tls`] serves the same filter tree over HTTPS/WSS when `tls.certFile`/`tls.keyFile` are
//!   set (reloading the pair on SIGHUP and file changes); [`peer`] gives routes the client's
//!   address whichever loop accepted it.

pub mod admin;
pub mod app;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod directory;
pub mod export;
pub mod handlers;
pub mod http;
pub mod hub;
pub mod ice;
pub mod lifecycle;
pub mod listener;
pub mod observe;
pub mod outbound;
pub mod peer;
pub mod plugins;
pub mod routes;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
pub mod transport;
pub mod withdrawal;

use thiserror::Error;

/// Why the binary stopped with a failure.
#[derive(Debug, Error)]
pub enum RunError {
    /// The configuration is malformed (the message names the key).
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Db(#[from] directory::db::DbError),
    /// The async runtime or a socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server could not start.
    #[error("start-up: {0}")]
    Start(String),
}

/// Runs the command the command line asks for.
pub fn run(cli: cli::Cli) -> Result<(), RunError> {
    let command = cli.command.clone().unwrap_or_default();
    if let cli::Command::Export { out } = &command {
        let written = export::export(out)?;
        println!("{}: {written} file(s) written", out.display());
        return Ok(());
    }
    let config = config::Config::load(&cli.overrides)?;
    telemetry::init(config.log_format);
    match command {
        cli::Command::Serve => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let signals = shutdown::Signals::install();
                let server = app::start(config).await?;
                tracing::info!(addr = %server.addr, tls = server.tls.is_some(), "signalbox listening");
                server.wait(signals.recv()).await;
                Ok(())
            })
        }
        cli::Command::Migrate => match &config.variables.directory {
            settings if settings.backend == config::DirectoryBackend::Postgres => {
                let url = settings.postgres_url.clone().unwrap_or_default();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let applied = runtime.block_on(directory::postgres::migrate(url.expose()))?;
                println!("postgres: {applied} migration(s) applied");
                Ok(())
            }
            _ => {
                let applied = directory::db::migrate_file(&config.db_path)?;
                println!(
                    "{}: {} migration(s) applied",
                    config.db_path.display(),
                    applied
                );
                Ok(())
            }
        },
        cli::Command::Export { .. } => Ok(()),
        cli::Command::CheckConfig => {
            println!("{config:#?}");
            println!("configuration is valid");
            Ok(())
        }
    }
}
