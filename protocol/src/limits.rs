//! Default limits and timings of the protocol, each defined once.
//!
//! The server's configuration starts from these values (an operator may change most of them);
//! the generated TypeScript exports them (with these doc comments) so clients can size their own
//! buffers and timers, and the docs quote them from [`ALL`].

/// A documented numeric constant, as exported to the bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The constant's name, e.g. `"MAX_FRAME_BYTES"`.
    pub name: &'static str,
    /// Its value.
    pub value: u64,
    /// Its doc comment.
    pub doc: &'static str,
}

/// Declares each limit as a `pub const` and lists them all in [`ALL`].
macro_rules! limits {
    ($( $(#[doc = $doc:literal])+ $name:ident: $ty:ty = $value:expr; )+) => {
        $( $(#[doc = $doc])+ pub const $name: $ty = $value; )+

        /// Every limit of this module, in declaration order.
        pub const ALL: &[Limit] = &[
            $( Limit { name: stringify!($name), value: $name as u64, doc: concat!($($doc),+) }, )+
        ];
    };
}

limits! {
    /// Largest WebSocket frame the server accepts by default; larger ones close with 1009.
    MAX_FRAME_BYTES: usize = 256 * 1024;
    /// Interval between server WebSocket pings, in milliseconds.
    HEARTBEAT_INTERVAL_MS: u64 = 30_000;
    /// A WebSocket silent for this long (no pong, no message) is closed with 4002, in
    /// milliseconds.
    HEARTBEAT_TIMEOUT_MS: u64 = 45_000;
    /// Token-bucket capacity: envelopes or signals one sender (WebSocket connection or SSE
    /// session) may send in a burst.
    RATE_LIMIT_BURST: u32 = 50;
    /// Tokens added to a sender's bucket per second.
    RATE_LIMIT_REFILL_PER_SEC: u32 = 10;
    /// Rate-limited envelopes tolerated in a row before a WebSocket is closed with 1008.
    RATE_LIMIT_STRIKES_BEFORE_CLOSE: u32 = 20;
    /// Envelopes queued for one slow connection before it is closed with 4008.
    OUTBOUND_QUEUE_ENVELOPES: usize = 1024;
    /// Largest `plugin_event` payload when a plugin manifest does not set `maxPayloadBytes`.
    PLUGIN_MAX_PAYLOAD_BYTES: usize = 64 * 1024;
    /// Events one plugin manifest may declare.
    PLUGIN_MAX_EVENTS: usize = 64;
    /// Longest plugin id, event name or plugin version, in bytes.
    PLUGIN_MAX_NAME_BYTES: usize = 64;
    /// Plugins one server may register.
    PLUGIN_MAX_PER_SERVER: usize = 32;
    /// Interval between `: keepalive` comments on an SSE stream, in milliseconds.
    SSE_KEEPALIVE_INTERVAL_MS: u64 = 10_000;
    /// An SSE session with no open stream and no request for this long is pruned, in
    /// milliseconds.
    SSE_SESSION_IDLE_TIMEOUT_MS: u64 = 90_000;
    /// How often the server scans for idle SSE sessions, in milliseconds.
    SSE_PRUNE_SCAN_INTERVAL_MS: u64 = 30_000;
    /// SSE sessions the server holds at once, in every room; past it `GET /api/connect` answers
    /// 503.
    SSE_MAX_SESSIONS: usize = 10_000;
    /// SSE sessions one room holds at once; past it `GET /api/connect` answers 503.
    SSE_MAX_SESSIONS_PER_ROOM: usize = 256;
    /// Events buffered for one SSE session (on its stream, or while it has none); a stream that
    /// falls this far behind is dropped and its session left resumable.
    SSE_STREAM_BUFFER_EVENTS: usize = 256;
    /// Largest `POST /api/signal` or `POST /api/leave` body, in bytes; larger ones get 413.
    SSE_MAX_BODY_BYTES: usize = 64 * 1024;
    /// Longest `displayName` accepted from a client, in characters.
    MAX_DISPLAY_NAME_CHARS: usize = 64;
    /// Longest identifier (`oderId`, `serverId`, ...) accepted from a client, in bytes.
    MAX_ID_BYTES: usize = 128;
    /// Longest `description` or `connectionScope` in a profile, in characters.
    MAX_PROFILE_TEXT_CHARS: usize = 512;
}
