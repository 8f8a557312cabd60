//! Logging through `tracing`, human-readable or JSON, filtered by `RUST_LOG` (default `info`).
//!
//! Owns subscriber set-up and, in [`levels`], the one mapping of transport failures and refused
//! requests to log levels (a client going away is DEBUG; a refusal is INFO or WARN with its
//! code; ERROR is reserved for the server failing at something it should not have). Never log
//! a token, password, key or the variables file's secrets: callers log identities and codes,
//! not credentials.

pub mod gauges;
pub mod levels;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::LogFormat;

/// Installs the global subscriber; a second call (tests starting several servers) is a no-op.
///
/// [`levels::Relevel`] sits before the formatter: it withholds the web server's "connection
/// error" events that are ordinary client behaviour and re-emits them at their own level.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let output = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(levels::Relevel)
        .with(output)
        .try_init();
}
