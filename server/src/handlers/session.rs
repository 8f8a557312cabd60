//! What a handler works with: the connection, its identity, and the server's shared state; and
//! what a handler answers with when it refuses an envelope.
//!
//! Transport-agnostic: the WebSocket transport builds a [`Session`] per socket; nothing here
//! knows about frames, pings or close handshakes.

use std::sync::Arc;
use std::time::Instant;

use signalbox_protocol::ws::ErrorEvent;
use signalbox_protocol::{CloseCode, ErrorCode, RequestId, ServerEnvelope, UserId};

use crate::app::AppState;
use crate::auth::{AuthError, Caller};
use crate::hub::{ConnKey, ConnectionHandle, Hub, HubError};

/// One realtime connection, as the handlers see it.
#[derive(Debug)]
pub struct Session {
    /// The server's shared state (database, auth, plugins, configuration).
    pub state: Arc<AppState>,
    /// The connection's registration in the hub.
    pub conn: ConnectionHandle,
    /// The identity proven by a token presented at upgrade (`?token=`), if any.
    pub upgrade_caller: Option<Caller>,
    /// The identity `identify` bound, once it succeeded.
    pub user: Option<UserId>,
    /// The display name of the last successful `identify` (fills the directory row of an
    /// ephemeral identity when it first joins something).
    pub display_name: Option<String>,
    /// The client's address, when the listener knows it.
    pub remote_ip: Option<std::net::IpAddr>,
    /// When the envelope being handled was read (for the forward latency histogram).
    pub received_at: Instant,
    /// Its cross-node forwards awaiting Redis's receipt (cluster mode).
    pub pending_forwards: super::forward::PendingForwards,
}

impl Session {
    /// A session for a connection that has not identified yet.
    pub fn new(
        state: Arc<AppState>,
        conn: ConnectionHandle,
        upgrade_caller: Option<Caller>,
    ) -> Self {
        Self {
            state,
            conn,
            upgrade_caller,
            user: None,
            display_name: None,
            remote_ip: None,
            received_at: Instant::now(),
            pending_forwards: super::forward::PendingForwards::default(),
        }
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        self.conn.hub()
    }

    /// The connection's key for hub calls.
    pub fn key(&self) -> ConnKey {
        self.conn.key()
    }

    /// The identified user, or `NOT_IDENTIFIED`.
    pub fn user(&self) -> Result<&UserId, Refusal> {
        self.user
            .as_ref()
            .ok_or_else(|| Refusal::new(ErrorCode::NotIdentified, "send `identify` first"))
    }

    /// Queues `envelope` for this connection. A connection already closing drops it, which is
    /// what it should do: nothing more reaches a client being closed.
    pub fn send(&self, envelope: &ServerEnvelope) {
        if let ServerEnvelope::Error(error) = envelope {
            self.state.transport_metrics.error(error.code);
            crate::telemetry::levels::envelope_refusal(error.code);
        }
        if let Err(e) = self.conn.send(envelope) {
            tracing::error!(error = %e, "reply could not be queued");
        }
    }
}

/// How a handler ended when it did not refuse the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep reading.
    Continue,
    /// Close the connection with this code (after what is queued).
    Close(CloseCode),
}

/// An envelope refused: answered with `error`, and the connection stays open unless `close`
/// says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error code.
    pub code: ErrorCode,
    /// What went wrong, for a human.
    pub message: String,
    /// The `requestId` of a failed RPC.
    pub request_id: Option<RequestId>,
    /// Close the connection after the `error` (authentication failures).
    pub close: Option<CloseCode>,
}

impl Refusal {
    /// A refusal that keeps the connection open.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            request_id: None,
            close: None,
        }
    }

    /// `INVALID_MESSAGE` naming what is wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidMessage, message)
    }

    /// An infrastructure failure: logged with its cause, answered without it.
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{context}");
        Self::new(ErrorCode::InternalError, format!("{context}; try again"))
    }

    /// Closes the connection with `code` after the `error`.
    pub fn then_close(mut self, code: CloseCode) -> Self {
        self.close = Some(code);
        self
    }

    /// An authentication failure: `AUTH_INVALID` / `AUTH_EXPIRED`, then close 4001.
    pub fn auth(e: &AuthError, context: &str) -> Self {
        Self::new(e.error_code(), format!("{context}{e}")).then_close(CloseCode::AuthFailed)
    }

    /// The `error` envelope, naming the envelope type that failed when there is one.
    pub fn to_event(&self, request_type: Option<&str>) -> ServerEnvelope {
        ServerEnvelope::Error(ErrorEvent {
            code: self.code,
            message: self.message.clone(),
            request_type: request_type.map(str::to_owned),
            request_id: self.request_id.clone(),
        })
    }
}

impl From<HubError> for Refusal {
    fn from(e: HubError) -> Self {
        let code = e.error_code();
        if code == ErrorCode::InternalError {
            return Self::internal("the hub refused the envelope", e);
        }
        Self {
            code,
            message: e.to_string(),
            request_id: e.request_id().cloned(),
            close: None,
        }
    }
}

/// What every handler returns.
pub type Handled = Result<Next, Refusal>;
