//! Configuration: the variables file, then environment variables, then flags.
//!
//! Owns reading, creating (with defaults, on first start) and validating
//! `<data-dir>/variables.json`, and merging the overrides of [`Overrides`]. A
//! malformed file, an unknown key or a bad value is a [`ConfigError`] naming the key; nothing
//! falls back silently. Never logs or prints a secret ([`Secret`]'s `Debug` is redacted).
//!
//! A leaf: it defines every setting type (the transports', the hub's forwarding rule, TLS, rate
//! limits) and imports nothing of this crate; the modules that read the settings import it.
//! `tests/layering.rs` enforces that.

pub mod cluster;
pub mod database;
pub mod directory;
pub mod outbound;
mod overrides;
pub mod rate_limit;
mod realtime;
pub mod reference;
mod security;
pub mod sse;
pub mod tls;
mod variables;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use cluster::{ClusterConfig, ClusterMode};
pub use database::DatabaseSettings;
pub use directory::{DirectoryBackend, DirectorySettings};
pub use overrides::{LogFormat, Overrides};
pub use rate_limit::RateLimit;
pub use realtime::{DEFAULT_MAX_QUEUED_BYTES, ForwardingPolicy, Realtime};
pub use security::{Bucket, RestRateLimits, Security};
pub use sse::SseSettings;
pub use tls::TlsSettings;
pub use variables::{AuthMode, Secret, Variables};

/// File name of the variables file inside the data directory.
pub const VARIABLES_FILE: &str = "variables.json";

/// A configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read, created or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid JSON, has an unknown key, or a value of the wrong type.
    #[error("{path}: key `{key}`: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The key at fault (a dotted path; `.` for the whole document).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value parses but is not allowed.
    #[error("key `{key}`: {message}")]
    Invalid {
        /// The key at fault.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The merged configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The SQLite database file.
    pub db_path: PathBuf,
    /// How logs are written.
    pub log_format: LogFormat,
    /// The variables file, validated.
    pub variables: Variables,
}

impl Config {
    /// Reads (or creates) the variables file under `overrides.data_dir` and applies the
    /// overrides.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let path = overrides.data_dir.join(VARIABLES_FILE);
        let mut variables = load_or_create(&path)?;
        if let Some(cert_file) = &overrides.tls_cert_file {
            variables.tls.cert_file = Some(cert_file.clone());
        }
        if let Some(key_file) = &overrides.tls_key_file {
            variables.tls.key_file = Some(key_file.clone());
        }
        if let Some(backend) = overrides.directory_backend {
            variables.directory.backend = backend;
        }
        if let Some(url) = &overrides.postgres_url {
            variables.directory.postgres_url = Some(url.clone());
        }
        overrides.apply_cluster(&mut variables.cluster);
        variables.validate()?;
        if let Some(auth) = overrides.auth {
            variables.auth = auth;
        }
        let bind: IpAddr = match overrides.bind {
            Some(bind) => bind,
            None => variables.bind.parse().map_err(|_| ConfigError::Invalid {
                key: "bind".into(),
                message: format!("`{}` is not an IP address", variables.bind),
            })?,
        };
        let port = overrides.port.unwrap_or(variables.port);
        let db_path = overrides
            .db
            .clone()
            .unwrap_or_else(|| overrides.data_dir.join("signalbox.db"));
        Ok(Self {
            addr: SocketAddr::new(bind, port),
            data_dir: overrides.data_dir.clone(),
            db_path,
            log_format: overrides.log_format.unwrap_or(variables.log_format),
            variables,
        })
    }
}

/// Parses a variables file's text; errors name the key at fault.
pub fn parse_variables(path: &Path, text: &str) -> Result<Variables, ConfigError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| ConfigError::Malformed {
        path: path.to_owned(),
        key: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

fn load_or_create(path: &Path) -> Result<Variables, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_variables(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let defaults = Variables::default();
            let text =
                serde_json::to_string_pretty(&defaults).map_err(|e| ConfigError::Invalid {
                    key: ".".into(),
                    message: e.to_string(),
                })?;
            std::fs::write(path, text + "\n").map_err(io)?;
            Ok(defaults)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Variables, ConfigError> {
        parse_variables(Path::new("variables.json"), text)
    }

    #[test]
    fn defaults_round_trip() {
        let text = serde_json::to_string(&Variables::default()).expect("serializes");
        assert_eq!(parse(&text).expect("parses"), Variables::default());
    }

    #[test]
    fn empty_object_is_all_defaults() {
        assert_eq!(parse("{}").expect("parses"), Variables::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse(r#"{"linkPreview": true}"#).expect_err("unknown key");
        assert!(err.to_string().contains("linkPreview"), "{err}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = parse(r#"{"auth": "open", "linkPreviews": "yes"}"#).expect_err("bad type");
        assert!(err.to_string().contains("key `linkPreviews`"), "{err}");
        let err = parse(r#"{"auth": "sometimes"}"#).expect_err("bad mode");
        assert!(err.to_string().contains("key `auth`"), "{err}");
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let vars = Variables {
            klipy_api_key: Some(Secret::new("super-secret-key")),
            ..Variables::default()
        };
        assert!(!format!("{vars:?}").contains("super-secret-key"));
    }

    #[test]
    fn redis_mode_on_the_sqlite_directory_is_refused_naming_both_keys() {
        let vars = parse(r#"{"cluster":{"mode":"redis","redisUrl":"redis://127.0.0.1:1"}}"#)
            .expect("parses");
        let err = vars.validate().expect_err("sqlite");
        let text = err.to_string();
        assert!(
            text.contains("cluster.mode") && text.contains("directory.backend"),
            "{text}"
        );
        let vars = parse(
            r#"{"cluster":{"mode":"redis","redisUrl":"redis://127.0.0.1:1"},
                "directory":{"backend":"postgres","postgresUrl":"postgres://u@h/db"}}"#,
        )
        .expect("parses");
        assert!(vars.validate().is_ok());
    }

    #[test]
    fn zero_limits_are_refused() {
        let vars = parse(r#"{"maxBodyBytes": 0}"#).expect("parses");
        let err = vars.validate().expect_err("zero");
        assert!(err.to_string().contains("maxBodyBytes"), "{err}");
    }
}
