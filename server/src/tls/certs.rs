//! Loading and checking a certificate/key pair, and the resolver that hands each new handshake
//! the pair in force.
//!
//! Every failure is a [`ConfigError`] naming the key at fault (`tls.certFile` or `tls.keyFile`)
//! and the file; key material is never logged or put in a message.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::config::ConfigError;
use crate::config::tls::PairPaths;

/// The crypto provider every TLS server config uses (ring, as the outbound client does).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(key: &str, path: &Path, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: format!("{}: {message}", path.display()),
    }
}

/// Reads both files and checks that the key is the certificate's.
pub fn load(
    paths: &PairPaths,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, ConfigError> {
    let cert_key = "tls.certFile";
    let chain = CertificateDer::pem_file_iter(&paths.cert_file)
        .map_err(|e| invalid(cert_key, &paths.cert_file, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert_key, &paths.cert_file, e))?;
    if chain.is_empty() {
        return Err(invalid(
            cert_key,
            &paths.cert_file,
            "no PEM certificate in the file",
        ));
    }
    let key_key = "tls.keyFile";
    let key = PrivateKeyDer::from_pem_file(&paths.key_file)
        .map_err(|e| invalid(key_key, &paths.key_file, e))?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        let why = match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "is not the private key of the certificate in tls.certFile ({})",
                paths.cert_file.display()
            ),
            other => format!("unusable private key or certificate: {other}"),
        };
        invalid(key_key, &paths.key_file, why)
    })?;
    Ok(Arc::new(certified))
}

/// The pair new handshakes get; swapped by [`super::TlsReloader`].
#[derive(Debug)]
pub struct CurrentCert {
    pair: RwLock<Arc<CertifiedKey>>,
}

impl CurrentCert {
    /// Starts with `pair`.
    pub fn new(pair: Arc<CertifiedKey>) -> Self {
        Self {
            pair: RwLock::new(pair),
        }
    }

    /// Replaces the pair for every later handshake.
    pub fn replace(&self, pair: Arc<CertifiedKey>) {
        *self.pair.write().unwrap_or_else(PoisonError::into_inner) = pair;
    }

    /// The pair in force.
    pub fn get(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.pair.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The rustls server configuration: TLS 1.2 and 1.3, HTTP/1.1 by ALPN, the certificate from
/// `current`.
pub fn server_config(
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentCert>,
) -> Result<ServerConfig, ConfigError> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Invalid {
            key: "tls".into(),
            message: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(current);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
