//! The forwarded envelopes: `offer`, `answer`, `ice_candidate`, `direct-call`, the
//! `direct-message*` family, `server_icon_peer_request`, `server_icon_peer_data`,
//! `rpc_request` and `rpc_response`.
//!
//! The payload is never inspected: the envelope, unknown fields included, goes to every
//! connection of `targetUserId` with `fromUserId` overwritten by the sender's `oderId`
//! ([`crate::hub::Hub::forward`]). `TARGET_NOT_FOUND` when the target is offline, `FORBIDDEN`
//! when the two share no server (unless `realtime.forwarding` is `open`); both carry the
//! `requestId` of a failed RPC.

use signalbox_protocol::ClientEnvelope;

use super::{Handled, Next, Session};

/// Handles one forwarded envelope.
pub fn handle(session: &Session, envelope: ClientEnvelope) -> Handled {
    session.hub().forward(session.key(), envelope)?;
    session
        .state
        .transport_metrics
        .forward_latency(session.received_at.elapsed());
    Ok(Next::Continue)
}
