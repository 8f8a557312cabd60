//! ICE servers handed to clients: STUN URLs, and TURN URLs with credentials.
//!
//! With `turnSecret` set, TURN credentials are minted per session under the TURN REST scheme
//! that coturn checks with `use-auth-secret` / `static-auth-secret`: the username is
//! `EXPIRY_UNIX_SECONDS:IDENTITY` and the credential is `base64(HMAC-SHA1(secret, username))`,
//! so the TURN server verifies them without talking to signalbox, and they stop working after
//! `turnCredentialTtlSeconds`. Without a secret, the static `turnUsername` / `turnCredential`
//! are handed out as they are (the older setting, kept as a fallback); with neither, TURN URLs
//! are listed without credentials. The SSE transport puts the list in `joined`; the WebSocket
//! transport calls the same function for `connected`.
//!
//! Never logs the secret or a credential.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use signalbox_protocol::TimestampMs;
use signalbox_protocol::sse::IceServer;

use crate::config::Variables;

/// The ICE servers for `identity` (a session id or `oderId`) as of `now`.
pub fn ice_servers(variables: &Variables, identity: &str, now: TimestampMs) -> Vec<IceServer> {
    let mut servers = Vec::new();
    if !variables.stun_urls.is_empty() {
        servers.push(IceServer {
            urls: variables.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if variables.turn_urls.is_empty() {
        return servers;
    }
    let (username, credential) = match (&variables.turn_secret, &variables.turn_username) {
        (Some(secret), _) => {
            let expires = now.0.div_euclid(1000) + i64::from(variables.turn_credential_ttl_seconds);
            let (username, credential) = turn_rest_credential(secret.expose(), identity, expires);
            (Some(username), Some(credential))
        }
        (None, Some(username)) => (
            Some(username.clone()),
            variables
                .turn_credential
                .as_ref()
                .map(|c| c.expose().to_owned()),
        ),
        (None, None) => (None, None),
    };
    servers.push(IceServer {
        urls: variables.turn_urls.clone(),
        username,
        credential: credential.map(signalbox_protocol::Secret::from),
    });
    servers
}

/// The TURN REST username and credential for `identity`, valid until `expires_unix_seconds`:
/// `("EXPIRY:IDENTITY", base64(HMAC-SHA1(secret, "EXPIRY:IDENTITY")))`.
pub fn turn_rest_credential(
    secret: &str,
    identity: &str,
    expires_unix_seconds: i64,
) -> (String, String) {
    let username = format!("{expires_unix_seconds}:{identity}");
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn minted_credentials_match_the_rfc_2202_vector_and_expire_after_the_ttl() {
        // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?").
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        let digest: &[u8] = &mac.finalize().into_bytes();
        assert_eq!(
            digest,
            [
                0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84,
                0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79
            ]
        );
        let variables = Variables {
            stun_urls: vec!["stun:stun.example:3478".into()],
            turn_urls: vec!["turn:turn.example:3478?transport=udp".into()],
            turn_secret: Some(Secret::new("s3cret")),
            turn_credential_ttl_seconds: 600,
            ..Variables::default()
        };
        let servers = ice_servers(&variables, "abc", TimestampMs(1_700_000_000_999));
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].username, None);
        let turn = &servers[1];
        assert_eq!(turn.username.as_deref(), Some("1700000600:abc"));
        let (_, expected) = turn_rest_credential("s3cret", "abc", 1_700_000_600);
        assert_eq!(
            turn.credential
                .as_ref()
                .map(signalbox_protocol::Secret::expose),
            Some(expected.as_str())
        );
    }

    #[test]
    fn static_credentials_are_the_fallback() {
        let variables = Variables {
            stun_urls: Vec::new(),
            turn_urls: vec!["turn:t:3478".into()],
            turn_username: Some("u".into()),
            turn_credential: Some(Secret::new("c")),
            ..Variables::default()
        };
        let servers = ice_servers(&variables, "abc", TimestampMs(0));
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].username.as_deref(), Some("u"));
        assert_eq!(
            servers[0]
                .credential
                .as_ref()
                .map(signalbox_protocol::Secret::expose),
            Some("c")
        );
        let none = Variables {
            turn_urls: Vec::new(),
            ..Variables::default()
        };
        assert_eq!(ice_servers(&none, "abc", TimestampMs(0)).len(), 1);
    }
}
