//! `/api/auth/*`: challenge, verify, guest, me.
//!
//! Never logs a token, key or signature; the crypto is [`crate::auth`]'s, the storage
//! [`crate::directory::credentials`]'.

use std::sync::Arc;

use signalbox_protocol::http::{
    ChallengeRequest, ChallengeResponse, GuestRequest, MeResponse, TokenResponse, VerifyRequest,
};
use signalbox_protocol::limits::MAX_DISPLAY_NAME_CHARS;
use signalbox_protocol::{TimestampMs, UserId};
use warp::http::Method;

use super::{AuthRule, Reply, Req, Route, body, handler};
use crate::auth::Authority;
use crate::auth::{self as authn, AuthError};
use crate::directory::Directory;
use crate::http::ApiFailure;

/// The services of `/api/auth/*`.
#[derive(Debug)]
pub struct AuthApi {
    /// Every directory command and query.
    pub directory: Arc<dyn Directory>,
    /// Issues tokens.
    pub authority: Authority,
    /// `challengeTtlSeconds`.
    pub challenge_ttl_seconds: u32,
    /// `tokenTtlSeconds`.
    pub token_ttl_seconds: u32,
    /// `guestTokenTtlSeconds`.
    pub guest_token_ttl_seconds: u32,
}

/// This family's routes.
pub fn routes() -> Vec<Route<AuthApi>> {
    vec![
        Route::new(
            Method::POST,
            "/api/auth/challenge",
            AuthRule::Public,
            "Issues a single-use, expiring challenge for an Ed25519 public key.",
            handler!(challenge),
        )
        .takes(body!(ChallengeRequest))
        .answers(body!(ChallengeResponse)),
        Route::new(
            Method::POST,
            "/api/auth/verify",
            AuthRule::Public,
            "Exchanges a signed challenge for a token bound to the key.",
            handler!(verify),
        )
        .takes(body!(VerifyRequest))
        .answers(body!(TokenResponse)),
        Route::new(
            Method::POST,
            "/api/auth/guest",
            AuthRule::Public,
            "Issues a token for a new ephemeral (guest) identity.",
            handler!(guest),
        )
        .takes(body!(GuestRequest))
        .answers(body!(TokenResponse)),
        Route::new(
            Method::GET,
            "/api/auth/me",
            AuthRule::Token,
            "Reads the presented token back.",
            handler!(me),
        )
        .answers(body!(MeResponse)),
    ]
}

/// `POST /api/auth/challenge`.
pub async fn challenge(api: Arc<AuthApi>, req: Req) -> Result<Reply, ApiFailure> {
    let request: ChallengeRequest = req.json()?;
    authn::parse_public_key(&request.public_key)
        .map_err(|e| ApiFailure::bad_request(format!("field `publicKey`: {e}")))?;
    let id = authn::random_code();
    let challenge = authn::encode_b64(&rand::random::<[u8; 32]>());
    let ttl = i64::from(api.challenge_ttl_seconds) * 1000;
    let expires_at = TimestampMs(TimestampMs::now().0 + ttl);
    let response = ChallengeResponse {
        challenge_id: id.clone(),
        challenge: challenge.clone(),
        expires_at,
    };
    api.directory
        .insert_challenge(
            &crate::op!("challenge"),
            &id,
            &request.public_key,
            &challenge,
            expires_at,
        )
        .await?;
    Reply::ok(&response)
}

/// `POST /api/auth/verify`.
pub async fn verify(api: Arc<AuthApi>, req: Req) -> Result<Reply, ApiFailure> {
    let request: VerifyRequest = req.json()?;
    let key = authn::parse_public_key(&request.public_key)
        .map_err(|e| ApiFailure::bad_request(format!("field `publicKey`: {e}")))?;
    let now = TimestampMs::now();
    let (stored_key, challenge) = api
        .directory
        .consume_challenge(&crate::op!("verify"), &request.challenge_id, now)
        .await?;
    if stored_key != request.public_key {
        return Err(AuthError::Invalid("the challenge was issued for another key").into());
    }
    let message = authn::decode_b64(&challenge)
        .ok_or_else(|| ApiFailure::internal(&"stored challenge is not base64url"))?;
    authn::verify_signature(&key, &message, &request.signature)?;
    let user = api
        .directory
        .bind_key(
            &crate::op!("verify"),
            &request.public_key,
            &authn::user_id_for_key(&key),
            now,
        )
        .await?;
    let ttl = api.token_ttl_seconds;
    let (token, expires_at) =
        api.authority
            .issue(&user, false, Some(&request.public_key), None, now, ttl)?;
    Reply::ok(&TokenResponse {
        token: token.into(),
        user_id: user,
        expires_at,
        guest: false,
    })
}

/// `POST /api/auth/guest`.
pub async fn guest(api: Arc<AuthApi>, req: Req) -> Result<Reply, ApiFailure> {
    let request: GuestRequest = req.json()?;
    let name = request.display_name.map(|n| n.trim().to_owned());
    if let Some(name) = &name {
        super::servers::check_text("displayName", name, MAX_DISPLAY_NAME_CHARS, false)?;
    }
    let user = UserId(format!(
        "{}{}",
        authn::GUEST_ID_PREFIX,
        uuid::Uuid::new_v4()
    ));
    let now = TimestampMs::now();
    // No directory row: a guest is ephemeral until it owns or joins something (its name rides
    // in the token and fills the row then), so minting guests grows nothing on disk.
    let ttl = api.guest_token_ttl_seconds;
    let (token, expires_at) = api
        .authority
        .issue(&user, true, None, name.as_deref(), now, ttl)?;
    Reply::ok(&TokenResponse {
        token: token.into(),
        user_id: user,
        expires_at,
        guest: true,
    })
}

/// `GET /api/auth/me`.
pub async fn me(_api: Arc<AuthApi>, req: Req) -> Result<Reply, ApiFailure> {
    let caller = req.caller()?;
    Reply::ok(&MeResponse {
        user_id: caller.user_id.clone(),
        guest: caller.guest,
        public_key: caller.public_key.clone(),
        expires_at: caller.expires_at,
    })
}
