//! The one mapping of transport failures and refused requests to log levels.
//!
//! - A client that goes away (reset, EOF mid-request, an abandoned stream, a missing close
//!   frame, a header timeout) is [`Severity::ClientGone`]: DEBUG.
//! - A request refused before it reached a route (unparsable HTTP) is [`Severity::Refused`]:
//!   INFO. Refusals with an API code are logged by [`refusal`]: INFO, or WARN when the refusal
//!   is a capacity bound (429, 503) an operator may need to raise.
//! - Anything else is [`Severity::Fault`]: ERROR, the server failed at something it should not
//!   have. Unknown errors stay faults, so a new failure is seen rather than hidden.
//!
//! warp logs every failed connection itself, pre-formatted, at ERROR ("server connection error:
//! hyper::Error(...)", target `warp::server`). Serving connections through hyper-util ourselves
//! would give typed errors, but would also re-implement warp's remote-address plumbing the
//! per-IP caps depend on; instead [`Relevel`] withholds exactly those events when they are not
//! faults and re-emits them at their level with target [`TARGET`]. A connection loop of our own
//! (the TLS listener) calls [`log_connection_error`] with the typed error; both paths end in
//! the same [`io_kind`] and hyper-kind tables below.
//!
//! Never logs request contents: only the error's kind and the API code.

use std::error::Error as StdError;
use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The target re-levelled connection errors are logged with.
pub const TARGET: &str = "signalbox::connection";

/// What a transport failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The client went away or stalled: ordinary behaviour (DEBUG).
    ClientGone,
    /// The client sent something that is not HTTP and was refused (INFO).
    Refused,
    /// The server failed (ERROR).
    Fault,
}

impl Severity {
    /// The level to log at.
    pub fn level(self) -> Level {
        match self {
            Self::ClientGone => Level::DEBUG,
            Self::Refused => Level::INFO,
            Self::Fault => Level::ERROR,
        }
    }
}

/// The severity of an I/O error kind, by its `Debug` name (`ConnectionReset`, ...).
pub fn io_kind(name: &str) -> Severity {
    match name {
        "ConnectionReset" | "ConnectionAborted" | "BrokenPipe" | "UnexpectedEof"
        | "NotConnected" | "TimedOut" | "WriteZero" => Severity::ClientGone,
        "InvalidData" => Severity::Refused,
        _ => Severity::Fault,
    }
}

/// The severity of a hyper error kind, by its `Debug` name, given the I/O kind of its cause.
fn hyper_kind(kind: &str, io: Option<&str>) -> Severity {
    match kind {
        "IncompleteMessage" | "Canceled" | "ChannelClosed" | "HeaderTimeout" => {
            Severity::ClientGone
        }
        "Parse" | "UnexpectedMessage" => Severity::Refused,
        // Reading or writing the socket failed, or a body was cut short by the peer: the cause
        // decides; no cause means the peer aborted the body.
        "Io" | "Body" | "BodyWrite" | "Shutdown" => io.map_or(Severity::ClientGone, io_kind),
        _ => Severity::Fault,
    }
}

/// The severity of a typed connection error (a `hyper::Error`, an `std::io::Error`, or an
/// error wrapping one of them).
pub fn classify(error: &(dyn StdError + 'static)) -> Severity {
    if let Some(e) = error.downcast_ref::<hyper::Error>() {
        if e.is_incomplete_message()
            || e.is_canceled()
            || e.is_closed()
            || e.is_body_write_aborted()
            || e.is_timeout()
        {
            return Severity::ClientGone;
        }
        if e.is_parse() || e.is_parse_too_large() || e.is_parse_status() {
            return Severity::Refused;
        }
        if e.is_user() {
            return Severity::Fault;
        }
        return match e.source() {
            Some(cause) => classify(cause),
            None if e.is_shutdown() => Severity::ClientGone,
            None => Severity::Fault,
        };
    }
    if let Some(e) = error.downcast_ref::<std::io::Error>() {
        if let Some(inner) = e.get_ref() {
            let inner = classify(inner);
            if inner != Severity::Fault {
                return inner;
            }
        }
        return io_kind(&format!("{:?}", e.kind()));
    }
    error.source().map_or(Severity::Fault, classify)
}

/// The severity of an error known only by its `Debug` text, as warp logs it:
/// `hyper::Error(IncompleteMessage)`, `hyper::Error(Io, Os { code: 104, kind: ConnectionReset,
/// .. })`, `Kind(UnexpectedEof)`, `Os { .. kind: BrokenPipe .. }`.
pub fn classify_text(text: &str) -> Severity {
    let io = io_kind_in(text);
    if let Some(rest) = text.trim().strip_prefix("hyper::Error(") {
        let kind: String = rest
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        return hyper_kind(&kind, io);
    }
    if let Some(rest) = text.trim().strip_prefix("Kind(") {
        let kind: String = rest
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        return io_kind(&kind);
    }
    io.map_or(Severity::Fault, io_kind)
}

/// The I/O kind named in an error's `Debug` text (`kind: ConnectionReset`).
fn io_kind_in(text: &str) -> Option<&str> {
    let start = text.find("kind: ")? + "kind: ".len();
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Logs a failed connection at the level its error deserves (for connection loops of our own).
pub fn log_connection_error(error: &(dyn StdError + 'static)) {
    emit(classify(error), &format!("{error:?}"));
}

fn emit(severity: Severity, detail: &str) {
    match severity {
        Severity::ClientGone => {
            tracing::debug!(target: TARGET, error = detail, "client went away");
        }
        Severity::Refused => {
            tracing::info!(target: TARGET, error = detail, "malformed request refused");
        }
        Severity::Fault => tracing::error!(target: TARGET, error = detail, "connection failed"),
    }
}

/// Logs a request refused with an API `code` and HTTP `status`: WARN for capacity bounds (429,
/// 503), INFO for other client errors; nothing for 5xx, whose cause was logged at ERROR where
/// it was known.
pub fn refusal(code: impl fmt::Debug, status: u16) {
    match status {
        429 | 503 => tracing::warn!(code = ?code, status, "request refused"),
        400..=499 => tracing::info!(code = ?code, status, "request refused"),
        _ => {}
    }
}

/// Logs an `error` envelope sent on a realtime connection, like [`refusal`]: `RATE_LIMITED` is a
/// capacity bound (WARN), `INTERNAL_ERROR` was logged where it happened, the rest is INFO.
pub fn envelope_refusal(code: signalbox_protocol::ErrorCode) {
    use signalbox_protocol::ErrorCode;
    let status = match code {
        ErrorCode::RateLimited => 429,
        ErrorCode::InternalError => 500,
        _ => 400,
    };
    refusal(code, status);
}

/// A layer that withholds warp's "server connection error" events that are not faults and
/// re-emits them at their level (see the module docs). Every other event passes untouched.
///
/// It must sit before the formatting layer; the re-emitted event goes through the whole
/// subscriber again (the global dispatcher allows that), with target [`TARGET`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Relevel;

/// The prefix of warp's connection error message.
const WARP_CONNECTION_ERROR: &str = "server connection error: ";

impl<S: Subscriber> Layer<S> for Relevel {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || !meta.target().starts_with("warp::server") {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let Some(detail) = message.0.strip_prefix(WARP_CONNECTION_ERROR) else {
            return true;
        };
        let severity = classify_text(detail);
        if severity == Severity::Fault {
            return true;
        }
        emit(severity, detail);
        false
    }
}

/// Collects an event's `message` field.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_going_away_is_debug() {
        for text in [
            "hyper::Error(IncompleteMessage)",
            "hyper::Error(Io, Os { code: 104, kind: ConnectionReset, message: \"reset\" })",
            "hyper::Error(BodyWrite, Os { code: 32, kind: BrokenPipe, message: \"pipe\" })",
            "hyper::Error(Shutdown, Os { code: 107, kind: NotConnected, message: \"x\" })",
            "hyper::Error(BodyWrite)",
            "hyper::Error(HeaderTimeout)",
            "Kind(UnexpectedEof)",
            "Os { code: 104, kind: ConnectionReset, message: \"reset\" }",
        ] {
            assert_eq!(classify_text(text), Severity::ClientGone, "{text}");
            assert_eq!(classify_text(text).level(), Level::DEBUG);
        }
    }

    #[test]
    fn malformed_http_is_a_refusal_and_the_rest_stays_an_error() {
        assert_eq!(
            classify_text("hyper::Error(Parse(Method))"),
            Severity::Refused
        );
        assert_eq!(
            classify_text("hyper::Error(Parse(TooLarge))"),
            Severity::Refused
        );
        for text in [
            "hyper::Error(User(UnexpectedHeader))",
            "hyper::Error(Io, Os { code: 24, kind: Uncategorized, message: \"too many\" })",
            "something new",
        ] {
            assert_eq!(classify_text(text), Severity::Fault, "{text}");
        }
    }

    #[test]
    fn typed_io_errors_are_classified_by_kind_through_wrappers() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(classify(&reset), Severity::ClientGone);
        let wrapped = std::io::Error::other(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(classify(&wrapped), Severity::ClientGone);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(classify(&denied), Severity::Fault);
    }
}
