//! Graceful shutdown: SIGINT and SIGTERM handlers, installed before the server starts, and a
//! future that resolves on the first of them.
//!
//! Owns signal handling only; the server stops accepting when it resolves and lets in-flight
//! requests finish (see [`crate::app::RunningServer::wait`]). Never exits the process itself.
//! The handlers are registered by [`Signals::install`], not when the future is first polled:
//! a SIGTERM that arrives between "listening" and the first poll would otherwise meet the
//! default action and kill the process without a graceful stop.

/// SIGINT and SIGTERM, registered with the runtime.
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Registers the handlers now (inside a Tokio runtime).
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let register = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for {name}");
                    None
                }
            };
            Self {
                interrupt: register(SignalKind::interrupt(), "SIGINT"),
                terminate: register(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
    pub async fn recv(self) {
        #[cfg(unix)]
        {
            async fn next(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(self.interrupt) => tracing::info!("SIGINT: shutting down"),
                () = next(self.terminate) => tracing::info!("SIGTERM: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("SIGINT: shutting down");
            }
        }
    }
}
