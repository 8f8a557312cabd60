//! `identify`: binds the connection to an `oderId` and a profile.
//!
//! The token comes from `identify.token`, else from `?token=` at upgrade. A token that is
//! malformed, forged or expired ends the connection (`AUTH_INVALID` / `AUTH_EXPIRED`, then close
//! 4001), and so does claiming an identity the token does not prove ([`access::identify`]: in
//! `auth: open` an `oderId` issued with a token, guest or key-bound, needs that token; in
//! `auth: required` every identify needs a token). Without an `oderId` the token's identity is used, else a fresh UUID.
//! The hub learns the identity and profile. The directory writes a row only for a key-bound
//! identity; a guest or token-less one is ephemeral until it owns or joins something
//! ([`access::admit`] writes it then), so anonymous `identify`s grow nothing on disk.

use signalbox_protocol::ws::Identify;
use signalbox_protocol::{CloseCode, ErrorCode, TimestampMs, UserId};

use super::{Handled, Next, Refusal, Session, validate};
use crate::auth::Caller;
use crate::directory::access::IdentifyDenied;
use crate::directory::store::Proven;
use crate::hub::Profile;

/// Handles `identify`.
pub async fn handle(session: &mut Session, identify: Identify) -> Handled {
    validate::display_name(&identify.display_name)?;
    validate::profile_text("description", identify.description.as_deref())?;
    validate::profile_text("connectionScope", identify.connection_scope.as_deref())?;
    if let Some(id) = &identify.oder_id {
        validate::id("oderId", id.as_str())?;
    }
    let caller = match &identify.token {
        Some(token) => Some(check_token(session, token.expose())?),
        // A `?token=` proves nothing once it has expired (a later re-identify).
        None => session
            .upgrade_caller
            .clone()
            .filter(|caller| caller.expires_at > TimestampMs::now()),
    };
    let user = identify
        .oder_id
        .clone()
        .or_else(|| caller.as_ref().map(|c| c.user_id.clone()))
        .unwrap_or_else(|| UserId(uuid::Uuid::new_v4().to_string()));

    // An SSE session's id is its identity in the hub: taking it over would receive its signals.
    if session.state.sse.is_session_anywhere(user.as_str()).await {
        return Err(Refusal::new(
            ErrorCode::AuthInvalid,
            "this oderId is a live SSE session's identity",
        )
        .then_close(CloseCode::AuthFailed));
    }
    let mode = session.state.auth.mode;
    let display_name = identify.display_name.trim().to_owned();
    let display_name_for_row = display_name.clone();
    // A key-bound identity's row is refreshed; an ephemeral one (guest, token-less) gets a row
    // only when it owns or joins something, and a row it already has keeps its name fresh.
    let proven = caller.as_ref().map(|c| Proven {
        user_id: c.user_id.clone(),
        public_key: c.public_key.clone(),
    });
    let decision = session
        .state
        .directory
        .identify(
            &crate::op!("handle"),
            &user,
            proven,
            mode,
            &display_name,
            TimestampMs::now(),
        )
        .await
        .map_err(|e| Refusal::internal("the identity could not be checked", e))?;
    if let Err(denied) = decision {
        return Err(Refusal::new(ErrorCode::AuthInvalid, denial_message(denied))
            .then_close(CloseCode::AuthFailed));
    }

    let mut profile = Profile::from_identify(&identify);
    profile.display_name = display_name;
    session
        .hub()
        .identify(session.key(), user.clone(), profile)?;
    session.user = Some(user);
    session.display_name = Some(display_name_for_row);
    Ok(Next::Continue)
}

fn check_token(session: &Session, token: &str) -> Result<Caller, Refusal> {
    session
        .state
        .auth
        .check(token)
        .map_err(|e| Refusal::auth(&e, ""))
}

fn denial_message(denied: IdentifyDenied) -> &'static str {
    match denied {
        IdentifyDenied::TokenRequired => "this server requires a token (auth: required)",
        IdentifyDenied::BoundToAnotherKey => {
            "this oderId is bound to a key: identify with that key's token"
        }
        IdentifyDenied::OtherIdentity => "the token proves another oderId than the one claimed",
        IdentifyDenied::IssuedWithToken => {
            "this oderId is bound to the token it was issued with (guest or key): identify with that token"
        }
    }
}
