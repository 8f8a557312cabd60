//! Reloading the certificate/key pair: on SIGHUP and when either file changes (checked every
//! `tls.reloadPollMs` by modification time and size).
//!
//! A reload that fails (a file half-written, a key that does not match) is logged with the key
//! at fault and keeps the pair in force; the next change or SIGHUP tries again. Never closes or
//! renegotiates an open connection.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio_rustls::rustls::crypto::CryptoProvider;

use super::certs::{self, CurrentCert};
use crate::config::ConfigError;
use crate::config::tls::{PairPaths, TlsSettings};

/// What a file looked like when last loaded.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The pair in force and how to reload it.
#[derive(Debug)]
pub struct TlsReloader {
    paths: PairPaths,
    provider: Arc<CryptoProvider>,
    current: Arc<CurrentCert>,
    poll: Duration,
    stamps: Mutex<(Stamp, Stamp)>,
    reloads: AtomicU64,
}

impl TlsReloader {
    /// Loads the pair of `settings`; `None` when TLS is off. A pair that cannot be used is an
    /// error naming the key, so the server does not start.
    pub fn from_settings(settings: &TlsSettings) -> Result<Option<Arc<Self>>, ConfigError> {
        let Some(paths) = settings.pair() else {
            return Ok(None);
        };
        let provider = certs::provider();
        let stamps = (stamp(&paths.cert_file), stamp(&paths.key_file));
        let pair = certs::load(&paths, &provider)?;
        Ok(Some(Arc::new(Self {
            paths,
            provider,
            current: Arc::new(CurrentCert::new(pair)),
            poll: Duration::from_millis(u64::from(settings.reload_poll_ms)),
            stamps: Mutex::new(stamps),
            reloads: AtomicU64::new(0),
        })))
    }

    /// The resolver new handshakes ask.
    pub fn current(&self) -> Arc<CurrentCert> {
        Arc::clone(&self.current)
    }

    /// The crypto provider of the server config.
    pub fn provider(&self) -> Arc<CryptoProvider> {
        Arc::clone(&self.provider)
    }

    /// Successful reloads since start.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Reads both files again and, when they make a valid pair, hands it to later handshakes.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let stamps = (stamp(&self.paths.cert_file), stamp(&self.paths.key_file));
        *self.stamps.lock().unwrap_or_else(PoisonError::into_inner) = stamps;
        let pair = certs::load(&self.paths, &self.provider)?;
        self.current.replace(pair);
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether either file changed since the last load (or load attempt).
    pub fn files_changed(&self) -> bool {
        let now = (stamp(&self.paths.cert_file), stamp(&self.paths.key_file));
        *self.stamps.lock().unwrap_or_else(PoisonError::into_inner) != now
    }

    fn reload_logged(&self, why: &str) {
        match self.reload() {
            Ok(()) => tracing::info!(trigger = why, "TLS certificate reloaded"),
            Err(e) => {
                tracing::error!(trigger = why, error = %e, "TLS reload failed; keeping the pair in force")
            }
        }
    }

    /// Registers the SIGHUP handler now, before the server says it is listening: a SIGHUP that
    /// arrived before [`TlsReloader::watch`] first ran would otherwise meet the default action
    /// and end the process.
    #[cfg(unix)]
    pub fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP; TLS reloads on file changes only");
                None
            }
        }
    }

    /// Watches for SIGHUP (`hup`, from [`TlsReloader::hangup_signal`]) and file changes until
    /// dropped (abort the task to stop it).
    pub async fn watch(self: Arc<Self>, #[cfg(unix)] mut hup: Option<tokio::signal::unix::Signal>) {
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<()>();
            tokio::select! {
                () = hangup => self.reload_logged("SIGHUP"),
                _ = tick.tick() => {
                    if self.files_changed() {
                        self.reload_logged("file change");
                    }
                }
            }
        }
    }
}
