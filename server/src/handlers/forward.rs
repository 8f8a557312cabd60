//! The forwarded envelopes: `offer`, `answer`, `ice_candidate`, `direct-call`, the
//! `direct-message*` family, `server_icon_peer_request`, `server_icon_peer_data`,
//! `rpc_request` and `rpc_response`.
//!
//! The payload is never inspected: the envelope, unknown fields included, goes to every
//! connection of `targetUserId` with `fromUserId` overwritten by the sender's `oderId`
//! ([`crate::hub::Hub::forward`]). `TARGET_NOT_FOUND` when the target is offline, `FORBIDDEN`
//! when the two share no server (unless `realtime.forwarding` is `open`); both carry the
//! `requestId` of a failed RPC.
//!
//! In cluster mode the local delivery comes first, then the same frame goes through the hub's
//! `Remote` hook to the target's other nodes; the refusal stands only when no node took it,
//! and a backplane that cannot reach Redis answers `UNAVAILABLE`.

use signalbox_protocol::{ClientEnvelope, ErrorCode};

use super::{Handled, Next, Refusal, Session};
use crate::hub::{HubError, RemoteForward};

/// Handles one forwarded envelope on a server with no cluster backplane: the delivery is
/// queued before this returns (nothing waits), so the transport can run it without a future.
/// With a backplane, [`handle`] is the one to call.
pub fn handle_local(session: &Session, envelope: ClientEnvelope) -> Handled {
    session.hub().forward(session.key(), envelope)?;
    session
        .state
        .transport_metrics
        .forward_latency(session.received_at.elapsed());
    Ok(Next::Continue)
}

/// Handles one forwarded envelope.
pub async fn handle(session: &Session, envelope: ClientEnvelope) -> Handled {
    match session.hub().remote() {
        None => return handle_local(session, envelope),
        Some(remote) => {
            let local = session.hub().forward(session.key(), envelope.clone());
            if let Err(e) = &local
                && !matches!(
                    e,
                    HubError::TargetNotFound { .. } | HubError::Forbidden { .. }
                )
            {
                return Err(e.clone().into());
            }
            let out = session.hub().forward_frame(session.key(), envelope)?;
            let outcome = remote
                .forward(&out.from, &out.target, &out.frame, out.shared)
                .await;
            match (local, outcome) {
                (Ok(_), _) | (Err(_), RemoteForward::Delivered) => {}
                (Err(e), RemoteForward::TargetNotFound | RemoteForward::LocalOnly) => {
                    return Err(e.into());
                }
                (Err(_), RemoteForward::Forbidden) => {
                    return Err(HubError::Forbidden {
                        target: out.target,
                        request_id: out.request_id,
                    }
                    .into());
                }
                (Err(_), RemoteForward::Unavailable) => {
                    return Err(Refusal::new(
                        ErrorCode::Unavailable,
                        "the other nodes cannot be reached right now; try again",
                    ));
                }
            }
        }
    }
    session
        .state
        .transport_metrics
        .forward_latency(session.received_at.elapsed());
    Ok(Next::Continue)
}
