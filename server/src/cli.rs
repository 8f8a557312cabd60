//! The command line: subcommands and the flags that override the variables file.
//!
//! Owns argument parsing only; it never reads files or opens sockets (see [`crate::config`]).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::AuthMode;

/// signalbox: a schema-first signaling server for peer-to-peer apps.
///
/// Configuration is read from `<data-dir>/variables.json` (created with defaults on first
/// start), then environment variables, then these flags; each layer overrides the previous one.
#[derive(Debug, Clone, Parser)]
#[command(name = "signalbox", version, about, long_about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Overrides of the variables file.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// The subcommands.
#[derive(Debug, Clone, Default, Subcommand)]
pub enum Command {
    /// Run the server (the default): migrate the database, then serve the HTTP API.
    #[default]
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load and validate the configuration, print it (secrets redacted) and exit.
    CheckConfig,
    /// Write the OpenAPI document and the JSON Schema of every wire type, then exit.
    Export {
        /// Output directory (created if missing).
        #[arg(long, default_value = "export")]
        out: PathBuf,
    },
}

/// Flags (and their environment variables) that override the variables file.
#[derive(Debug, Clone, Default, Args)]
pub struct Overrides {
    /// Directory holding `variables.json` and, by default, the database.
    #[arg(
        long,
        global = true,
        env = "SIGNALBOX_DATA_DIR",
        default_value = "data"
    )]
    pub data_dir: PathBuf,
    /// Address to listen on (default from the variables file: 127.0.0.1).
    #[arg(long, global = true, env = "SIGNALBOX_BIND")]
    pub bind: Option<IpAddr>,
    /// Port to listen on; 0 picks a free one (default from the variables file: 8080).
    #[arg(long, global = true, env = "PORT")]
    pub port: Option<u16>,
    /// SQLite database file (default: `<data-dir>/signalbox.db`).
    #[arg(long, global = true, env = "SIGNALBOX_DB")]
    pub db: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, env = "SIGNALBOX_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Auth mode: `open` (Toju-compatible) or `required` (default from the variables file).
    #[arg(long, global = true, env = "SIGNALBOX_AUTH", value_enum)]
    pub auth: Option<AuthMode>,
    /// PEM certificate chain for built-in TLS (`tls.certFile`; needs `--tls-key-file`).
    #[arg(long, global = true, env = "SIGNALBOX_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for built-in TLS (`tls.keyFile`; needs `--tls-cert-file`).
    #[arg(long, global = true, env = "SIGNALBOX_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// Directory backend: `sqlite` or `postgres` (`directory.backend`).
    #[arg(long, global = true, env = "SIGNALBOX_DIRECTORY_BACKEND", value_enum)]
    pub directory_backend: Option<crate::config::DirectoryBackend>,
    /// PostgreSQL connection URL (`directory.postgresUrl`; may hold a password: prefer the
    /// environment variable or the variables file to a flag).
    #[arg(
        long,
        global = true,
        env = "SIGNALBOX_POSTGRES_URL",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub postgres_url: Option<crate::config::Secret>,
}

fn parse_secret(text: &str) -> Result<crate::config::Secret, std::convert::Infallible> {
    Ok(text.into())
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}
