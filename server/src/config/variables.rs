//! The variables file's schema, with its defaults and validation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::LogFormat;
use super::realtime::Realtime;

/// Whether identification needs a token.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Toju-compatible: identify without a token is allowed (a key-bound `oderId` still needs its
    /// token), REST reads are open, REST writes need a token.
    #[default]
    Open,
    /// Every connection and every REST request (other than health and obtaining a token) needs
    /// a token.
    Required,
}

/// A secret of the variables file (the Klipy key, the TURN secret): the protocol's [`Secret`],
/// serialized as itself, never shown by `Debug` or `Display`.
pub use signalbox_protocol::Secret;

/// `data/variables.json`: the operator's runtime configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Variables {
    /// Address to listen on.
    pub bind: String,
    /// Port to listen on.
    pub port: u16,
    /// Log format (`human` or `json`).
    #[serde(with = "log_format")]
    #[schemars(with = "LogFormatName")]
    pub log_format: LogFormat,
    /// `open`: Toju-compatible, `identify` without a token is allowed for an `oderId` never
    /// issued with a token (a guest or key-bound id needs its token), REST reads and SSE ad-hoc
    /// rooms are open, writes need a token. `required`: every realtime connection (SSE
    /// included) and REST request needs a token. See docs/security.md.
    pub auth: AuthMode,
    /// Host name clients reach the server at (for links it generates).
    pub public_host: Option<String>,
    /// `http` or `https`.
    pub public_protocol: Option<String>,
    /// URL of the client release manifest.
    pub release_manifest_url: Option<String>,
    /// Whether link previews are fetched.
    pub link_previews: bool,
    /// Klipy GIF API key; GIF search is off without one.
    pub klipy_api_key: Option<Secret>,
    /// STUN server URLs handed to clients.
    pub stun_urls: Vec<String>,
    /// TURN server URLs handed to clients.
    pub turn_urls: Vec<String>,
    /// Static TURN user name, used only when `turnSecret` is not set.
    pub turn_username: Option<String>,
    /// Static TURN credential, used only when `turnSecret` is not set.
    pub turn_credential: Option<Secret>,
    /// TURN REST shared secret (coturn's `static-auth-secret` with `use-auth-secret`): when set,
    /// every session gets its own time-limited TURN credentials (see `crate::ice`).
    pub turn_secret: Option<Secret>,
    /// Lifetime of minted TURN credentials, in seconds.
    pub turn_credential_ttl_seconds: u32,
    /// The SSE transport's timings and bounds.
    pub sse: super::SseSettings,
    /// Users (`oderId`) allowed to edit the games catalogue.
    pub operator_user_ids: Vec<String>,
    /// Lifetime of key-bound tokens, in seconds.
    pub token_ttl_seconds: u32,
    /// Lifetime of guest tokens, in seconds.
    pub guest_token_ttl_seconds: u32,
    /// Lifetime of an auth challenge, in seconds.
    pub challenge_ttl_seconds: u32,
    /// Largest HTTP request body, in bytes.
    pub max_body_bytes: u32,
    /// Limits and timings of the realtime transports.
    pub realtime: Realtime,
    /// SQLite tuning of the pooled connections, write concurrency, and the `Idempotency-Key`
    /// store.
    pub database: super::DatabaseSettings,
    /// Where the directory lives: the embedded SQLite file (default) or PostgreSQL.
    pub directory: super::DirectorySettings,
    /// Standalone (default) or one node of a cluster sharing one Redis and one PostgreSQL.
    pub cluster: super::ClusterConfig,
    /// Bounds on what clients may make the server store, compute or hold.
    pub security: super::Security,
    /// Hosts, IP addresses and `address/prefix` blocks outbound fetches (link previews, the
    /// image proxy, GIF search) may reach despite the outbound guard's forbidden ranges.
    pub outbound_allowlist: Vec<String>,
    /// Time limit of one outbound fetch (redirects and body included), in milliseconds.
    pub outbound_timeout_ms: u32,
    /// Base URL of the Klipy API (the key and `/gifs/...` are appended).
    pub klipy_base_url: String,
    /// Built-in TLS (HTTPS, WSS, SSE over HTTPS on `port`); off unless both files are set.
    pub tls: super::TlsSettings,
}

impl Default for Variables {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1".into(),
            port: 8080,
            log_format: LogFormat::Human,
            auth: AuthMode::Open,
            public_host: None,
            public_protocol: None,
            release_manifest_url: None,
            link_previews: true,
            klipy_api_key: None,
            stun_urls: vec!["stun:stun.l.google.com:19302".into()],
            turn_urls: Vec::new(),
            turn_username: None,
            turn_credential: None,
            turn_secret: None,
            turn_credential_ttl_seconds: 24 * 3600,
            sse: super::SseSettings::default(),
            operator_user_ids: Vec::new(),
            token_ttl_seconds: 7 * 24 * 3600,
            guest_token_ttl_seconds: 24 * 3600,
            challenge_ttl_seconds: 120,
            max_body_bytes: 64 * 1024,
            realtime: Realtime::default(),
            database: super::DatabaseSettings::default(),
            directory: super::DirectorySettings::default(),
            cluster: super::ClusterConfig::default(),
            security: super::Security::default(),
            outbound_allowlist: Vec::new(),
            outbound_timeout_ms: 8_000,
            klipy_base_url: "https://api.klipy.com/api/v1".into(),
            tls: super::TlsSettings::default(),
        }
    }
}

impl Variables {
    /// Checks what parsing cannot: ranges and enumerated strings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| {
            Err(ConfigError::Invalid {
                key: key.into(),
                message: message.into(),
            })
        };
        if let Some(protocol) = &self.public_protocol
            && protocol != "http"
            && protocol != "https"
        {
            return invalid("publicProtocol", "must be `http` or `https`");
        }
        for (key, value) in [
            ("tokenTtlSeconds", self.token_ttl_seconds),
            ("guestTokenTtlSeconds", self.guest_token_ttl_seconds),
            ("challengeTtlSeconds", self.challenge_ttl_seconds),
            ("maxBodyBytes", self.max_body_bytes),
            ("outboundTimeoutMs", self.outbound_timeout_ms),
            ("turnCredentialTtlSeconds", self.turn_credential_ttl_seconds),
        ] {
            if value == 0 {
                return invalid(key, "must be greater than 0");
            }
        }
        if let Err(message) = super::outbound::parse_allowlist(&self.outbound_allowlist) {
            return invalid("outboundAllowlist", &message);
        }
        match url::Url::parse(&self.klipy_base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.username().is_empty() => {}
            _ => return invalid("klipyBaseUrl", "must be an http or https URL"),
        }
        if self
            .turn_secret
            .as_ref()
            .is_some_and(|s| s.expose().is_empty())
        {
            return invalid("turnSecret", "must not be empty");
        }
        self.sse.validate()?;
        self.database.validate()?;
        self.directory.validate()?;
        self.cluster.validate()?;
        if self.cluster.mode == super::ClusterMode::Redis
            && self.directory.backend == super::DirectoryBackend::Sqlite
        {
            return invalid(
                "cluster.mode",
                "cluster.mode \"redis\" needs directory.backend \"postgres\": every node must share one directory, and the embedded SQLite file is one process's",
            );
        }
        self.tls.validate()?;
        self.security.validate()?;
        self.realtime.validate()
    }
}

/// The spellings of [`LogFormat`] in the variables file (for the generated reference).
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum LogFormatName {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

mod log_format {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use super::super::LogFormat;

    pub fn serialize<S: Serializer>(value: &LogFormat, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match value {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LogFormat, D::Error> {
        match String::deserialize(d)?.as_str() {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(D::Error::custom(format!(
                "unknown log format `{other}`, expected `human` or `json`"
            ))),
        }
    }
}
