//! The command line: subcommands and the flags that override the variables file.
//!
//! Owns argument parsing only; it never reads files or opens sockets (see [`crate::config`]).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The overrides of the variables file and the log format, defined by the configuration (old
/// paths `signalbox::cli::{Overrides, LogFormat}` stay valid).
pub use crate::config::{LogFormat, Overrides};

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
