//! Logging through `tracing`, human-readable or JSON, filtered by `RUST_LOG` (default `info`).
//!
//! Owns subscriber set-up only. Never log a token, password, key or the variables file's
//! secrets: callers log identities and codes, not credentials.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber; a second call (tests starting several servers) is a no-op.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
