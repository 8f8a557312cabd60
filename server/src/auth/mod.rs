//! Auth: Ed25519 challenge-response, guest identities, and the JWTs that prove them.
//!
//! Owns the signing secret (created on first start and kept in the database), token issuing and
//! checking, and signature verification. Never logs a token, a key or a signature, and never
//! decides server access (see [`crate::directory::access`]).

pub mod attempts;
pub mod password;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use signalbox_protocol::{TimestampMs, UserId};
use thiserror::Error;

use crate::config::AuthMode;

/// The prefixes of the ids this module issues (guests; keys, see [`user_id_for_key`]), defined
/// by the protocol so that modules below `auth` (the directory's access rules) can read them.
pub use signalbox_protocol::ids::{GUEST_ID_PREFIX, KEY_ID_PREFIX};

/// Why a token or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No token was presented where one is needed.
    #[error("a bearer token is required")]
    Missing,
    /// The token or signature is malformed or forged.
    #[error("{0}")]
    Invalid(&'static str),
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
}

impl AuthError {
    /// The realtime `error` code for this failure (`AUTH_EXPIRED` or `AUTH_INVALID`), sent before
    /// close 4001.
    pub fn error_code(&self) -> signalbox_protocol::ErrorCode {
        match self {
            Self::Expired => signalbox_protocol::ErrorCode::AuthExpired,
            Self::Missing | Self::Invalid(_) => signalbox_protocol::ErrorCode::AuthInvalid,
        }
    }
}

/// Who is calling, as a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The identity (`oderId`).
    pub user_id: UserId,
    /// Whether it is a guest identity.
    pub guest: bool,
    /// The key it is bound to (absent for guests).
    pub public_key: Option<String>,
    /// When the token expires.
    pub expires_at: TimestampMs,
    /// The display name a guest chose when its token was issued. A guest has no directory row
    /// until it owns or joins something; this name fills the row then.
    pub display_name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    iat: u64,
    guest: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

/// Issues and checks tokens with the server's secret.
#[derive(Clone)]
pub struct Authority {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// `open` or `required`.
    pub mode: AuthMode,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// An authority signing with `secret` (at least 32 bytes).
    pub fn new(secret: &[u8], mode: AuthMode) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            mode,
        }
    }

    /// A fresh random secret for [`Authority::new`].
    pub fn fresh_secret() -> [u8; 32] {
        rand::random()
    }

    /// Issues a token for `user` (a guest's chosen `name` rides in it), valid for `ttl_seconds`
    /// from `now`.
    pub fn issue(
        &self,
        user: &UserId,
        guest: bool,
        public_key: Option<&str>,
        name: Option<&str>,
        now: TimestampMs,
        ttl_seconds: u32,
    ) -> Result<(String, TimestampMs), AuthError> {
        let iat = u64::try_from(now.0 / 1000).unwrap_or(0);
        let exp = iat + u64::from(ttl_seconds);
        let claims = Claims {
            sub: user.0.clone(),
            exp,
            iat,
            guest,
            pk: public_key.map(str::to_owned),
            name: name.map(str::to_owned),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| AuthError::Invalid("the token could not be signed"))?;
        Ok((
            token,
            TimestampMs(i64::try_from(exp * 1000).unwrap_or(i64::MAX)),
        ))
    }

    /// Checks `token`: signature, algorithm and expiry.
    pub fn check(&self, token: &str) -> Result<Caller, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid("the token is malformed or forged"),
            },
        )?;
        let claims = data.claims;
        Ok(Caller {
            user_id: UserId(claims.sub),
            guest: claims.guest,
            public_key: claims.pk,
            expires_at: TimestampMs(i64::try_from(claims.exp * 1000).unwrap_or(i64::MAX)),
            display_name: claims.name,
        })
    }
}

/// Decodes base64url (padding tolerated).
pub fn decode_b64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// Encodes base64url without padding.
pub fn encode_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Parses an Ed25519 public key given as base64url.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, AuthError> {
    let bytes: [u8; 32] =
        decode_b64(text)
            .and_then(|b| b.try_into().ok())
            .ok_or(AuthError::Invalid(
                "publicKey must be 32 bytes of base64url",
            ))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| AuthError::Invalid("publicKey is not an Ed25519 key"))
}

/// Verifies that `signature` (base64url) signs `message` under `key`.
pub fn verify_signature(
    key: &VerifyingKey,
    message: &[u8],
    signature: &str,
) -> Result<(), AuthError> {
    let bytes: [u8; 64] = decode_b64(signature)
        .and_then(|b| b.try_into().ok())
        .ok_or(AuthError::Invalid(
            "signature must be 64 bytes of base64url",
        ))?;
    key.verify_strict(message, &Signature::from_bytes(&bytes))
        .map_err(|_| AuthError::Invalid("the signature does not match"))
}

/// The identity bound to an Ed25519 key: `key-` and the key in base64url.
pub fn user_id_for_key(public_key: &VerifyingKey) -> UserId {
    UserId(format!(
        "{KEY_ID_PREFIX}{}",
        encode_b64(public_key.as_bytes())
    ))
}

/// An unguessable token of 16 random bytes (invite codes, challenge ids).
pub fn random_code() -> String {
    encode_b64(&rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn tokens_round_trip_and_expire() {
        let auth = Authority::new(&Authority::fresh_secret(), AuthMode::Open);
        let now = TimestampMs::now();
        let (token, exp) = auth
            .issue(&UserId::from("u"), true, None, Some("Ada"), now, 60)
            .expect("issue");
        let caller = auth.check(&token).expect("valid");
        assert_eq!(caller.user_id, UserId::from("u"));
        assert!(caller.guest);
        assert_eq!(caller.expires_at, exp);
        assert_eq!(caller.display_name.as_deref(), Some("Ada"));
        let past = TimestampMs(now.0 - 3_600_000);
        let (old, _) = auth
            .issue(&UserId::from("u"), true, None, None, past, 60)
            .expect("issue");
        assert_eq!(auth.check(&old), Err(AuthError::Expired));
        let other = Authority::new(&Authority::fresh_secret(), AuthMode::Open);
        assert!(matches!(other.check(&token), Err(AuthError::Invalid(_))));
        assert!(matches!(auth.check("garbage"), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn signatures_verify() {
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let public = encode_b64(signing.verifying_key().as_bytes());
        let key = parse_public_key(&public).expect("key");
        let sig = encode_b64(&signing.sign(b"hello").to_bytes());
        verify_signature(&key, b"hello", &sig).expect("valid");
        assert!(verify_signature(&key, b"other", &sig).is_err());
        assert!(parse_public_key("short").is_err());
        assert!(user_id_for_key(&key).0.starts_with("key-"));
        assert_ne!(random_code(), random_code());
    }
}
