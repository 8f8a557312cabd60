//! `/api/auth/*`: Ed25519 challenge-response, guest tokens, and reading a token back.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::ids::{TimestampMs, UserId};

/// Body of `POST /api/auth/challenge`: asks for a challenge to sign with a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeRequest {
    /// The Ed25519 public key (32 bytes, base64url without padding) that will sign.
    pub public_key: String,
}

/// 200 body of `POST /api/auth/challenge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeResponse {
    /// Names this challenge in `POST /api/auth/verify`.
    pub challenge_id: String,
    /// The bytes to sign (base64url without padding); single-use.
    pub challenge: String,
    /// When the challenge stops being accepted.
    pub expires_at: TimestampMs,
}

/// Body of `POST /api/auth/verify`: the signed challenge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    /// The `challengeId` from the challenge response.
    pub challenge_id: String,
    /// The same public key the challenge was issued for (base64url without padding).
    pub public_key: String,
    /// The Ed25519 signature of the decoded challenge bytes (64 bytes, base64url without padding).
    pub signature: String,
}

/// Body of `POST /api/auth/guest`: asks for an ephemeral identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct GuestRequest {
    /// The name to show for the guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub display_name: Option<String>,
}

/// 200 body of `POST /api/auth/verify` and `POST /api/auth/guest`: a bearer token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// The JWT to send as `Authorization: Bearer <token>` (or `?token=` at WebSocket upgrade).
    #[ts(as = "String")]
    pub token: crate::Secret,
    /// The identity the token proves (`oderId`).
    pub user_id: UserId,
    /// When the token expires.
    pub expires_at: TimestampMs,
    /// Whether this is a guest (ephemeral) identity rather than a key-bound one.
    pub guest: bool,
}

/// 200 body of `GET /api/auth/me`: what the presented token says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct MeResponse {
    /// The identity the token proves (`oderId`).
    pub user_id: UserId,
    /// Whether it is a guest identity.
    pub guest: bool,
    /// The public key the identity is bound to (absent for guests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub public_key: Option<String>,
    /// When the token expires.
    pub expires_at: TimestampMs,
}
