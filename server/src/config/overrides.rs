//! The flags (and their environment variables) that override the variables file, and the log
//! format they and the file name.
//!
//! Owns the shape of the overrides only; `crate::cli` parses them from the command line (and
//! re-exports them under its own path), [`super::Config::load`] applies them.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::AuthMode;

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
    pub directory_backend: Option<super::DirectoryBackend>,
    /// PostgreSQL connection URL (`directory.postgresUrl`; may hold a password: prefer the
    /// environment variable or the variables file to a flag).
    #[arg(
        long,
        global = true,
        env = "SIGNALBOX_POSTGRES_URL",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub postgres_url: Option<super::Secret>,
    /// Cluster mode: `standalone` or `redis` (`cluster.mode`).
    #[arg(long, global = true, env = "SIGNALBOX_CLUSTER_MODE", value_enum)]
    pub cluster_mode: Option<super::ClusterMode>,
    /// This node's id in the cluster (`cluster.nodeId`).
    #[arg(long, global = true, env = "SIGNALBOX_NODE_ID")]
    pub node_id: Option<String>,
    /// Redis URL of the cluster backplane (`cluster.redisUrl`; may hold a password: prefer the
    /// environment variable or the variables file to a flag).
    #[arg(
        long,
        global = true,
        env = "SIGNALBOX_REDIS_URL",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub redis_url: Option<super::Secret>,
    /// Prefix of the cluster's Redis keys and channels (`cluster.keyPrefix`).
    #[arg(long, global = true, env = "SIGNALBOX_CLUSTER_KEY_PREFIX", hide = true)]
    pub cluster_key_prefix: Option<String>,
}

impl Overrides {
    /// Applies the cluster overrides to the `cluster` section.
    pub fn apply_cluster(&self, cluster: &mut super::ClusterConfig) {
        if let Some(mode) = self.cluster_mode {
            cluster.mode = mode;
        }
        if let Some(id) = &self.node_id {
            cluster.node_id = Some(id.clone());
        }
        if let Some(url) = &self.redis_url {
            cluster.redis_url = Some(url.clone());
        }
        if let Some(prefix) = &self.cluster_key_prefix {
            cluster.key_prefix = prefix.clone();
        }
    }
}

fn parse_secret(text: &str) -> Result<super::Secret, std::convert::Infallible> {
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
