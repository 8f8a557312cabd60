//! The `tls` object of the variables file.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Default of `tls.reloadPollMs`.
pub const DEFAULT_RELOAD_POLL_MS: u32 = 2_000;
/// Default of `tls.handshakeTimeoutMs`.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u32 = 10_000;

/// `tls` in `data/variables.json`: built-in HTTPS/WSS. Off unless both files are set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM file with the certificate chain (leaf first). With `keyFile`, the server speaks only
    /// TLS (HTTPS, WSS, SSE over HTTPS) on its port. Relative paths are relative to the working
    /// directory. Environment: `SIGNALBOX_TLS_CERT_FILE`.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1) of the certificate's public key.
    /// Environment: `SIGNALBOX_TLS_KEY_FILE`.
    pub key_file: Option<PathBuf>,
    /// How often both files are checked for changes (modification time and size), in
    /// milliseconds; a change reloads the pair (as SIGHUP does) for new handshakes.
    pub reload_poll_ms: u32,
    /// Longest a client may take to complete the TLS handshake, in milliseconds.
    pub handshake_timeout_ms: u32,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            cert_file: None,
            key_file: None,
            reload_poll_ms: DEFAULT_RELOAD_POLL_MS,
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
        }
    }
}

/// The two files of an enabled TLS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairPaths {
    /// `tls.certFile`.
    pub cert_file: PathBuf,
    /// `tls.keyFile`.
    pub key_file: PathBuf,
}

impl TlsSettings {
    /// The pair's paths when TLS is on.
    pub fn pair(&self) -> Option<PairPaths> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert_file), Some(key_file)) => Some(PairPaths {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
            }),
            _ => None,
        }
    }

    /// Both files or neither; positive timings. The error names the key (`tls.NAME`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| {
            Err(ConfigError::Invalid {
                key: format!("tls.{key}"),
                message: message.into(),
            })
        };
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => return invalid("keyFile", "must be set when tls.certFile is"),
            (None, Some(_)) => return invalid("certFile", "must be set when tls.keyFile is"),
            _ => {}
        }
        if self.reload_poll_ms == 0 {
            return invalid("reloadPollMs", "must be greater than 0");
        }
        if self.handshake_timeout_ms == 0 {
            return invalid("handshakeTimeoutMs", "must be greater than 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_half_a_pair_is_refused() {
        assert_eq!(TlsSettings::default().pair(), None);
        TlsSettings::default()
            .validate()
            .expect("defaults are valid");
        let half = TlsSettings {
            cert_file: Some("cert.pem".into()),
            ..TlsSettings::default()
        };
        let err = half.validate().expect_err("key missing");
        assert!(err.to_string().contains("tls.keyFile"), "{err}");
        let half = TlsSettings {
            key_file: Some("key.pem".into()),
            ..TlsSettings::default()
        };
        let err = half.validate().expect_err("cert missing");
        assert!(err.to_string().contains("tls.certFile"), "{err}");
    }
}
