//! The REST API over real HTTP: a server per test on 127.0.0.1:0 with a temporary database.
//! Happy paths per route family, and the bad inputs with their exact status and error code.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use signalbox::auth::{decode_b64, encode_b64};

async fn create_server(c: &common::Client, token: &str, body: Value) -> Value {
    c.call("POST", "/api/servers", Some(token), Some(&body))
        .await
        .expect_ok(201)
}

#[tokio::test]
async fn health_ready_and_unknown_routes() {
    let s = TestServer::start().await;
    let c = s.client();
    let health = c.get("/api/health", None).await.expect_ok(200);
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["protocolVersion"],
        signalbox_protocol::PROTOCOL_VERSION
    );
    c.get("/api/ready", None).await.expect_ok(200);
    c.get("/api/nope", None)
        .await
        .expect_error(404, "NOT_FOUND");
    c.get("/elsewhere", None)
        .await
        .expect_error(404, "NOT_FOUND");
    c.call("DELETE", "/api/health", None, None)
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn the_demo_page_is_served_with_its_scripts_and_is_not_an_api_route() {
    let s = TestServer::start().await;
    let c = s.client();
    let header = |r: &common::Response, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    for path in ["/demo", "/demo/", "/demo/index.html"] {
        let page = c.get(path, None).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            header(&page, "content-type").starts_with("text/html"),
            "{path}"
        );
        assert!(page.text.contains("/demo/js/demo/app.js"), "{path}");
        assert!(header(&page, "content-security-policy").contains("default-src 'self'"));
    }
    for path in [
        "/demo/style.css",
        "/demo/js/demo/app.js",
        "/demo/js/client/index.js",
        "/demo/js/client/backoff.js",
        "/demo/js/client/sse.js",
    ] {
        assert_eq!(c.get(path, None).await.status, 200, "{path}");
    }
    let script = c.get("/demo/js/demo/app.js", None).await;
    assert!(header(&script, "content-type").starts_with("text/javascript"));
    c.get("/demo/nope.js", None)
        .await
        .expect_error(404, "NOT_FOUND");
    c.call("POST", "/demo", None, None)
        .await
        .expect_error(404, "NOT_FOUND");
    let openapi = c.get("/api/openapi.json", None).await.expect_ok(200);
    assert!(
        openapi["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .all(|p| p.starts_with("/api/")),
        "/demo is not part of the REST API"
    );
}

#[tokio::test]
async fn guest_tokens_and_me() {
    let s = TestServer::start().await;
    let c = s.client();
    let (token, user) = c.guest("Ada").await;
    assert!(user.starts_with("guest-"));
    let me = c.get("/api/auth/me", Some(&token)).await.expect_ok(200);
    assert_eq!(me["userId"], user.as_str());
    assert_eq!(me["guest"], true);
    // A guest is ephemeral: no directory row (no profile) until it owns or joins something;
    // then the name it chose (carried in its token) fills the row.
    c.get(&format!("/api/users/{user}"), None)
        .await
        .expect_error(404, "NOT_FOUND");
    c.call(
        "POST",
        "/api/servers",
        Some(&token),
        Some(&json!({"name": "Mine"})),
    )
    .await
    .expect_ok(201);
    let profile = c
        .get(&format!("/api/users/{user}"), None)
        .await
        .expect_ok(200);
    assert_eq!(profile["displayName"], "Ada");
    c.get("/api/users/nobody", None)
        .await
        .expect_error(404, "NOT_FOUND");
    c.get("/api/auth/me", None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    // Change one character in the middle of the signature (not the last one, whose low bits
    // are padding in base64url).
    let mut forged: Vec<char> = token.chars().collect();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    c.get("/api/auth/me", Some(&forged))
        .await
        .expect_error(401, "UNAUTHORIZED");
    c.get("/api/auth/me", Some("not.a.jwt"))
        .await
        .expect_error(401, "UNAUTHORIZED");
    let too_long = json!({ "displayName": "x".repeat(65) });
    c.call("POST", "/api/auth/guest", None, Some(&too_long))
        .await
        .expect_error(400, "BAD_REQUEST");
    // No body at all is an anonymous guest.
    c.call("POST", "/api/auth/guest", None, None)
        .await
        .expect_ok(200);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let s = TestServer::start_with(r#"{"guestTokenTtlSeconds": 1}"#).await;
    let c = s.client();
    let (token, _) = c.guest("Ada").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    c.get("/api/auth/me", Some(&token))
        .await
        .expect_error(401, "TOKEN_EXPIRED");
}

#[tokio::test]
async fn ed25519_challenge_response() {
    let s = TestServer::start().await;
    let c = s.client();
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let public = encode_b64(key.verifying_key().as_bytes());
    let ch = c
        .call(
            "POST",
            "/api/auth/challenge",
            None,
            Some(&json!({ "publicKey": public })),
        )
        .await
        .expect_ok(200);
    let challenge = decode_b64(ch["challenge"].as_str().unwrap()).unwrap();
    let signature = encode_b64(&key.sign(&challenge).to_bytes());
    let verify =
        json!({ "challengeId": ch["challengeId"], "publicKey": public, "signature": signature });
    let token = c
        .call("POST", "/api/auth/verify", None, Some(&verify))
        .await
        .expect_ok(200);
    assert_eq!(token["guest"], false);
    assert_eq!(token["userId"], format!("key-{public}"));
    let me = c
        .get("/api/auth/me", token["token"].as_str())
        .await
        .expect_ok(200);
    assert_eq!(me["publicKey"], public.as_str());
    // Reused challenge.
    c.call("POST", "/api/auth/verify", None, Some(&verify))
        .await
        .expect_error(410, "GONE");
    // Unknown challenge.
    let unknown = json!({ "challengeId": "nope", "publicKey": public, "signature": signature });
    c.call("POST", "/api/auth/verify", None, Some(&unknown))
        .await
        .expect_error(404, "NOT_FOUND");
    // Wrong signature.
    let ch2 = c
        .call(
            "POST",
            "/api/auth/challenge",
            None,
            Some(&json!({ "publicKey": public })),
        )
        .await
        .expect_ok(200);
    let bad =
        json!({ "challengeId": ch2["challengeId"], "publicKey": public, "signature": signature });
    c.call("POST", "/api/auth/verify", None, Some(&bad))
        .await
        .expect_error(401, "UNAUTHORIZED");
    // Another key than the challenge's.
    let other = SigningKey::from_bytes(&[3u8; 32]);
    let ch3 = c
        .call(
            "POST",
            "/api/auth/challenge",
            None,
            Some(&json!({ "publicKey": public })),
        )
        .await
        .expect_ok(200);
    let sig3 = encode_b64(
        &other
            .sign(&decode_b64(ch3["challenge"].as_str().unwrap()).unwrap())
            .to_bytes(),
    );
    let swapped = json!({ "challengeId": ch3["challengeId"], "publicKey": encode_b64(other.verifying_key().as_bytes()), "signature": sig3 });
    c.call("POST", "/api/auth/verify", None, Some(&swapped))
        .await
        .expect_error(401, "UNAUTHORIZED");
    // Not a key.
    c.call(
        "POST",
        "/api/auth/challenge",
        None,
        Some(&json!({ "publicKey": "short" })),
    )
    .await
    .expect_error(400, "BAD_REQUEST");
}

#[tokio::test]
async fn bad_bodies_are_refused_with_the_field_named() {
    let s = TestServer::start().await;
    let c = s.client();
    let (token, _) = c.guest("Ada").await;
    let auth = format!("Bearer {token}");
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let malformed = c.raw("POST", "/api/servers", &h, b"{\"name\": ").await;
    malformed.expect_error(400, "BAD_REQUEST");
    let missing = c.raw("POST", "/api/servers", &h, b"{}").await;
    missing.expect_error(400, "BAD_REQUEST");
    assert!(
        missing.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("name")
    );
    let wrong = c.raw("POST", "/api/servers", &h, b"{\"name\": 5}").await;
    wrong.expect_error(400, "BAD_REQUEST");
    assert!(
        wrong.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`name`")
    );
    let wrong_enum = c
        .raw(
            "POST",
            "/api/servers",
            &h,
            br#"{"name": "x", "visibility": "secret"}"#,
        )
        .await;
    wrong_enum.expect_error(400, "BAD_REQUEST");
    assert!(wrong_enum.text.contains("visibility"));
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
    c.raw("POST", "/api/servers", &h, huge.as_bytes())
        .await
        .expect_error(413, "PAYLOAD_TOO_LARGE");
    let text = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "text/plain"),
    ];
    c.raw("POST", "/api/servers", &text, br#"{"name": "x"}"#)
        .await
        .expect_error(415, "UNSUPPORTED_MEDIA_TYPE");
    c.raw("POST", "/api/servers", &h, br#"{"name": "   "}"#)
        .await
        .expect_error(400, "BAD_REQUEST");
    c.call("POST", "/api/servers", None, Some(&json!({ "name": "x" })))
        .await
        .expect_error(401, "UNAUTHORIZED");
    c.get("/api/servers?limit=abc", None)
        .await
        .expect_error(400, "BAD_REQUEST");
}

#[tokio::test]
async fn server_directory_crud_and_ownership() {
    let s = TestServer::start().await;
    let c = s.client();
    let (ada, ada_id) = c.guest("Ada").await;
    let (bob, _) = c.guest("Bob").await;
    let created = create_server(
        &c,
        &ada,
        json!({ "id": "srv-rust", "name": "Rustaceans", "tags": ["rust"] }),
    )
    .await;
    assert_eq!(created["ownerId"], ada_id.as_str());
    assert_eq!(created["memberCount"], 1);
    assert_eq!(created["hasPassword"], false);
    create_server(&c, &ada, json!({ "name": "Gophers", "description": "go" })).await;
    create_server(
        &c,
        &ada,
        json!({ "name": "Hidden", "visibility": "private" }),
    )
    .await;
    c.call(
        "POST",
        "/api/servers",
        Some(&ada),
        Some(&json!({ "id": "srv-rust", "name": "dup" })),
    )
    .await
    .expect_error(409, "CONFLICT");

    let list = c.get("/api/servers?limit=1", None).await.expect_ok(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let cursor = list["nextCursor"].as_str().unwrap().to_owned();
    let page2 = c
        .get(&format!("/api/servers?limit=1&cursor={cursor}"), None)
        .await
        .expect_ok(200);
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(
        page2.get("nextCursor").is_none(),
        "private servers are not listed"
    );
    let found = c.get("/api/servers?q=rust", None).await.expect_ok(200);
    assert_eq!(found["items"][0]["id"], "srv-rust");

    c.get("/api/servers/srv-rust", None).await.expect_ok(200);
    c.get("/api/servers/unknown", None)
        .await
        .expect_error(404, "NOT_FOUND");
    let patch = json!({ "description": "Talk about Rust." });
    c.call("PATCH", "/api/servers/srv-rust", Some(&bob), Some(&patch))
        .await
        .expect_error(403, "FORBIDDEN");
    let updated = c
        .call("PATCH", "/api/servers/srv-rust", Some(&ada), Some(&patch))
        .await
        .expect_ok(200);
    assert_eq!(updated["description"], "Talk about Rust.");
    c.call("PATCH", "/api/servers/unknown", Some(&ada), Some(&patch))
        .await
        .expect_error(404, "NOT_FOUND");

    c.call(
        "PUT",
        "/api/servers/srv-rust/password",
        Some(&bob),
        Some(&json!({ "password": "pw" })),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    c.call(
        "PUT",
        "/api/servers/srv-rust/password",
        Some(&ada),
        Some(&json!({ "password": "correct horse" })),
    )
    .await
    .expect_ok(200);
    let read = c.get("/api/servers/srv-rust", None).await;
    assert_eq!(read.json()["hasPassword"], true);
    assert!(!read.text.contains("correct horse") && !read.text.contains("argon2"));
    c.call("DELETE", "/api/servers/srv-rust/password", Some(&ada), None)
        .await
        .expect_ok(200);

    c.call("DELETE", "/api/servers/srv-rust", Some(&bob), None)
        .await
        .expect_error(403, "FORBIDDEN");
    c.call("DELETE", "/api/servers/srv-rust", Some(&ada), None)
        .await
        .expect_ok(200);
    c.get("/api/servers/srv-rust", None)
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn bans_keep_users_out() {
    let s = TestServer::start().await;
    let c = s.client();
    let (ada, ada_id) = c.guest("Ada").await;
    let (bob, bob_id) = c.guest("Bob").await;
    create_server(&c, &ada, json!({ "id": "pub", "name": "Public" })).await;
    create_server(
        &c,
        &ada,
        json!({ "id": "priv", "name": "Private", "visibility": "private" }),
    )
    .await;
    let ban = json!({ "userId": bob_id, "reason": "spam" });
    c.call("POST", "/api/servers/pub/bans", Some(&bob), Some(&ban))
        .await
        .expect_error(403, "FORBIDDEN");
    let banned = c
        .call("POST", "/api/servers/pub/bans", Some(&ada), Some(&ban))
        .await
        .expect_ok(200);
    assert_eq!(banned["bannedBy"], ada_id.as_str());
    c.call(
        "POST",
        "/api/servers/pub/bans",
        Some(&ada),
        Some(&json!({ "userId": ada_id })),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    c.get("/api/servers/pub", Some(&bob))
        .await
        .expect_error(403, "FORBIDDEN");
    let bans = c
        .get("/api/servers/pub/bans", Some(&ada))
        .await
        .expect_ok(200);
    assert_eq!(bans["items"].as_array().unwrap().len(), 1);
    c.get("/api/servers/pub/bans", Some(&bob))
        .await
        .expect_error(403, "FORBIDDEN");
    // A banned user cannot ask to join, nor accept an invite.
    c.call("POST", "/api/servers/priv/bans", Some(&ada), Some(&ban))
        .await
        .expect_ok(200);
    c.call(
        "POST",
        "/api/servers/priv/join-requests",
        Some(&bob),
        Some(&json!({})),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    let invite = c
        .call(
            "POST",
            "/api/servers/priv/invites",
            Some(&ada),
            Some(&json!({})),
        )
        .await
        .expect_ok(201);
    let code = invite["code"].as_str().unwrap();
    c.call(
        "POST",
        &format!("/api/invites/{code}/accept"),
        Some(&bob),
        None,
    )
    .await
    .expect_error(403, "FORBIDDEN");
    let path = format!("/api/servers/pub/bans/{bob_id}");
    c.call("DELETE", &path, Some(&ada), None)
        .await
        .expect_ok(200);
    c.call("DELETE", &path, Some(&ada), None)
        .await
        .expect_error(404, "NOT_FOUND");
    c.get("/api/servers/pub", Some(&bob)).await.expect_ok(200);
}

#[tokio::test]
async fn invites_admit_and_expire() {
    let s = TestServer::start().await;
    let c = s.client();
    let (ada, _) = c.guest("Ada").await;
    let (bob, bob_id) = c.guest("Bob").await;
    let (carol, _) = c.guest("Carol").await;
    create_server(
        &c,
        &ada,
        json!({ "id": "priv", "name": "Private", "visibility": "private" }),
    )
    .await;
    c.get("/api/servers/priv", Some(&bob))
        .await
        .expect_error(403, "FORBIDDEN");
    c.call(
        "POST",
        "/api/servers/priv/invites",
        Some(&bob),
        Some(&json!({})),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    c.call(
        "POST",
        "/api/servers/nope/invites",
        Some(&ada),
        Some(&json!({})),
    )
    .await
    .expect_error(404, "NOT_FOUND");
    let invite = c
        .call(
            "POST",
            "/api/servers/priv/invites",
            Some(&ada),
            Some(&json!({ "maxUses": 1 })),
        )
        .await
        .expect_ok(201);
    let code = invite["code"].as_str().unwrap().to_owned();
    assert!(code.len() >= 22, "unguessable: {code}");
    let resolved = c
        .get(&format!("/api/invites/{code}"), None)
        .await
        .expect_ok(200);
    assert_eq!(resolved["server"]["id"], "priv");
    let membership = c
        .call(
            "POST",
            &format!("/api/invites/{code}/accept"),
            Some(&bob),
            None,
        )
        .await
        .expect_ok(200);
    assert_eq!(membership["userId"], bob_id.as_str());
    assert_eq!(membership["role"], "member");
    c.get("/api/servers/priv", Some(&bob)).await.expect_ok(200);
    c.call(
        "POST",
        &format!("/api/invites/{code}/accept"),
        Some(&carol),
        None,
    )
    .await
    .expect_error(410, "GONE");
    c.get("/api/invites/unknown", None)
        .await
        .expect_error(404, "NOT_FOUND");

    let short = c
        .call(
            "POST",
            "/api/servers/priv/invites",
            Some(&ada),
            Some(&json!({ "expiresInSeconds": 1 })),
        )
        .await
        .expect_ok(201);
    let short = short["code"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    c.get(&format!("/api/invites/{short}"), None)
        .await
        .expect_error(410, "GONE");
    c.call(
        "POST",
        &format!("/api/invites/{short}/accept"),
        Some(&carol),
        None,
    )
    .await
    .expect_error(410, "GONE");

    let revocable = c
        .call("POST", "/api/servers/priv/invites", Some(&ada), None)
        .await
        .expect_ok(201);
    let revocable = revocable["code"].as_str().unwrap().to_owned();
    c.call(
        "DELETE",
        &format!("/api/invites/{revocable}"),
        Some(&bob),
        None,
    )
    .await
    .expect_error(403, "FORBIDDEN");
    c.call(
        "DELETE",
        &format!("/api/invites/{revocable}"),
        Some(&ada),
        None,
    )
    .await
    .expect_ok(200);
    c.call(
        "POST",
        &format!("/api/invites/{revocable}/accept"),
        Some(&carol),
        None,
    )
    .await
    .expect_error(410, "GONE");
    c.call(
        "POST",
        "/api/servers/priv/invites",
        Some(&ada),
        Some(&json!({ "maxUses": "ten" })),
    )
    .await
    .expect_error(400, "BAD_REQUEST");
}

#[tokio::test]
async fn join_requests_flow() {
    let s = TestServer::start().await;
    let c = s.client();
    let (ada, _) = c.guest("Ada").await;
    let (bob, _) = c.guest("Bob").await;
    let (carol, _) = c.guest("Carol").await;
    create_server(
        &c,
        &ada,
        json!({ "id": "priv", "name": "Private", "visibility": "private" }),
    )
    .await;
    create_server(&c, &ada, json!({ "id": "pub", "name": "Public" })).await;
    c.call("POST", "/api/servers/pub/join-requests", Some(&bob), None)
        .await
        .expect_error(409, "CONFLICT");
    c.call("POST", "/api/servers/nope/join-requests", Some(&bob), None)
        .await
        .expect_error(404, "NOT_FOUND");
    let request = c
        .call(
            "POST",
            "/api/servers/priv/join-requests",
            Some(&bob),
            Some(&json!({ "message": "hi" })),
        )
        .await
        .expect_ok(201);
    assert_eq!(request["status"], "pending");
    let id = request["id"].as_str().unwrap().to_owned();
    c.call("POST", "/api/servers/priv/join-requests", Some(&bob), None)
        .await
        .expect_error(409, "CONFLICT");
    c.get("/api/servers/priv/join-requests", Some(&bob))
        .await
        .expect_error(403, "FORBIDDEN");
    let list = c
        .get("/api/servers/priv/join-requests", Some(&ada))
        .await
        .expect_ok(200);
    assert_eq!(list["items"][0]["id"], id.as_str());
    let approve = format!("/api/servers/priv/join-requests/{id}/approve");
    c.call("POST", &approve, Some(&bob), None)
        .await
        .expect_error(403, "FORBIDDEN");
    let approved = c
        .call("POST", &approve, Some(&ada), None)
        .await
        .expect_ok(200);
    assert_eq!(approved["status"], "approved");
    c.call("POST", &approve, Some(&ada), None)
        .await
        .expect_error(409, "CONFLICT");
    c.get("/api/servers/priv", Some(&bob)).await.expect_ok(200);
    c.call(
        "POST",
        "/api/servers/priv/join-requests/nope/approve",
        Some(&ada),
        None,
    )
    .await
    .expect_error(404, "NOT_FOUND");

    let carol_request = c
        .call(
            "POST",
            "/api/servers/priv/join-requests",
            Some(&carol),
            None,
        )
        .await
        .expect_ok(201);
    let path = format!(
        "/api/servers/priv/join-requests/{}",
        carol_request["id"].as_str().unwrap()
    );
    c.call("DELETE", &path, Some(&ada), None)
        .await
        .expect_error(403, "FORBIDDEN");
    let withdrawn = c
        .call("DELETE", &path, Some(&carol), None)
        .await
        .expect_ok(200);
    assert_eq!(withdrawn["status"], "withdrawn");
    let again = c
        .call(
            "POST",
            "/api/servers/priv/join-requests",
            Some(&carol),
            None,
        )
        .await
        .expect_ok(201);
    let reject = format!(
        "/api/servers/priv/join-requests/{}/reject",
        again["id"].as_str().unwrap()
    );
    let rejected = c
        .call("POST", &reject, Some(&ada), None)
        .await
        .expect_ok(200);
    assert_eq!(rejected["status"], "rejected");
    c.get("/api/servers/priv", Some(&carol))
        .await
        .expect_error(403, "FORBIDDEN");
}

#[tokio::test]
async fn games_are_operator_edited() {
    let dir_vars = r#"{"operatorUserIds": []}"#;
    let s = TestServer::start_with(dir_vars).await;
    let c = s.client();
    let (bob, _) = c.guest("Bob").await;
    let game = json!({ "name": "Factorio", "executables": ["factorio"] });
    c.call("PUT", "/api/games/factorio", Some(&bob), Some(&game))
        .await
        .expect_error(403, "FORBIDDEN");
    c.call("PUT", "/api/games/factorio", None, Some(&game))
        .await
        .expect_error(401, "UNAUTHORIZED");
    let list = c.get("/api/games", None).await.expect_ok(200);
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn operators_edit_games() {
    // The operator is a key-bound identity, known before the server starts.
    let key = SigningKey::from_bytes(&[5u8; 32]);
    let public = encode_b64(key.verifying_key().as_bytes());
    let vars = json!({ "operatorUserIds": [format!("key-{public}")] }).to_string();
    let s = TestServer::start_with(&vars).await;
    let c = s.client();
    let ch = c
        .call(
            "POST",
            "/api/auth/challenge",
            None,
            Some(&json!({ "publicKey": public })),
        )
        .await
        .expect_ok(200);
    let sig = encode_b64(
        &key.sign(&decode_b64(ch["challenge"].as_str().unwrap()).unwrap())
            .to_bytes(),
    );
    let token = c
        .call(
            "POST",
            "/api/auth/verify",
            None,
            Some(
                &json!({ "challengeId": ch["challengeId"], "publicKey": public, "signature": sig }),
            ),
        )
        .await
        .expect_ok(200);
    let op = token["token"].as_str().unwrap();
    let game = json!({ "name": "Factorio", "executables": ["factorio"] });
    let saved = c
        .call("PUT", "/api/games/factorio", Some(op), Some(&game))
        .await
        .expect_ok(200);
    assert_eq!(saved["id"], "factorio");
    c.call("PUT", "/api/games/Bad%20Id", Some(op), Some(&game))
        .await
        .expect_error(400, "BAD_REQUEST");
    let list = c.get("/api/games", None).await.expect_ok(200);
    assert_eq!(list["items"][0]["name"], "Factorio");
    c.call("DELETE", "/api/games/factorio", Some(op), None)
        .await
        .expect_ok(200);
    c.call("DELETE", "/api/games/factorio", Some(op), None)
        .await
        .expect_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn idempotency_keys_replay_writes() {
    let s = TestServer::start().await;
    let c = s.client();
    let (ada, _) = c.guest("Ada").await;
    let auth = format!("Bearer {ada}");
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "key-1"),
    ];
    let first = c
        .raw("POST", "/api/servers", &h, br#"{"name": "Once"}"#)
        .await;
    let second = c
        .raw("POST", "/api/servers", &h, br#"{"name": "Once"}"#)
        .await;
    assert_eq!(first.expect_ok(201)["id"], second.expect_ok(201)["id"]);
    let list = c.get("/api/servers", None).await.expect_ok(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    c.raw("POST", "/api/servers", &h, br#"{"name": "Twice"}"#)
        .await
        .expect_error(422, "IDEMPOTENCY_MISMATCH");
}

#[tokio::test]
async fn auth_required_mode_closes_reads() {
    let s = TestServer::start_with(r#"{"auth": "required"}"#).await;
    let c = s.client();
    c.get("/api/health", None).await.expect_ok(200);
    c.get("/api/servers", None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    let (token, _) = c.guest("Ada").await;
    c.get("/api/servers", Some(&token)).await.expect_ok(200);
}

#[tokio::test]
async fn openapi_documents_exactly_the_served_routes() {
    let s = TestServer::start().await;
    let c = s.client();
    let doc = c.get("/api/openapi.json", None).await.expect_ok(200);
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routes = signalbox::routes::all();
    let served: BTreeSet<(String, String)> = routes
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, served);
    // Every documented route is really routed: none answers "no such route/method".
    for (method, path) in &documented {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let response = c.call(method, &concrete, None, None).await;
        if response.status == 404 {
            let message = response.json()["error"]["message"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                !message.starts_with("no such"),
                "{method} {path} is documented but not routed: {message}"
            );
        }
    }
    let docs = c.get("/api/docs", None).await;
    assert_eq!(docs.status, 200);
    assert!(docs.text.contains("/api/openapi.json"));
}

#[tokio::test]
async fn owners_appoint_moderators_who_moderate() {
    let s = TestServer::start().await;
    let c = s.client();
    let (ada, ada_id) = c.guest("Ada").await;
    let (bob, bob_id) = c.guest("Bob").await;
    let (carol, carol_id) = c.guest("Carol").await;
    create_server(
        &c,
        &ada,
        json!({ "id": "s", "name": "S", "visibility": "private" }),
    )
    .await;
    for token in [&bob, &carol] {
        let invite = c
            .call("POST", "/api/servers/s/invites", Some(&ada), None)
            .await
            .expect_ok(201);
        let code = invite["code"].as_str().unwrap();
        c.call(
            "POST",
            &format!("/api/invites/{code}/accept"),
            Some(token),
            None,
        )
        .await
        .expect_ok(200);
    }
    let members = c
        .get("/api/servers/s/members", Some(&bob))
        .await
        .expect_ok(200);
    assert_eq!(members["items"].as_array().unwrap().len(), 3);
    c.get("/api/servers/s/members", None)
        .await
        .expect_error(403, "FORBIDDEN");
    let bob_path = format!("/api/servers/s/members/{bob_id}");
    let moderator = json!({ "role": "moderator" });
    c.call("PUT", &bob_path, Some(&carol), Some(&moderator))
        .await
        .expect_error(403, "FORBIDDEN");
    c.call(
        "PUT",
        &bob_path,
        Some(&ada),
        Some(&json!({ "role": "boss" })),
    )
    .await
    .expect_error(400, "BAD_REQUEST");
    c.call(
        "PUT",
        &format!("/api/servers/s/members/{ada_id}"),
        Some(&ada),
        Some(&json!({ "role": "member" })),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    let promoted = c
        .call("PUT", &bob_path, Some(&ada), Some(&moderator))
        .await
        .expect_ok(200);
    assert_eq!(promoted["role"], "moderator");
    // The moderator moderates: invites and bans.
    c.call("POST", "/api/servers/s/invites", Some(&bob), None)
        .await
        .expect_ok(201);
    c.call(
        "DELETE",
        &format!("/api/servers/s/members/{carol_id}"),
        Some(&bob),
        None,
    )
    .await
    .expect_ok(200);
    c.get("/api/servers/s", Some(&carol))
        .await
        .expect_error(403, "FORBIDDEN");
    // ... but cannot touch the owner's settings.
    c.call(
        "PATCH",
        "/api/servers/s",
        Some(&bob),
        Some(&json!({ "name": "Mine" })),
    )
    .await
    .expect_error(403, "FORBIDDEN");
    // A member leaves; the owner cannot.
    c.call("DELETE", &bob_path, Some(&bob), None)
        .await
        .expect_ok(200);
    c.call(
        "DELETE",
        &format!("/api/servers/s/members/{ada_id}"),
        Some(&ada),
        None,
    )
    .await
    .expect_error(403, "FORBIDDEN");
}

#[tokio::test]
async fn ready_fails_while_draining() {
    let s = TestServer::start().await;
    let c = s.client();
    c.get("/api/ready", None).await.expect_ok(200);
    s.server.as_ref().unwrap().state.start_draining();
    c.get("/api/ready", None)
        .await
        .expect_error(503, "UNAVAILABLE");
    let health = c.get("/api/health", None).await.expect_ok(200);
    assert_eq!(health["status"], "draining");
}

#[tokio::test]
async fn auth_flag_overrides_the_variables_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("variables.json"), r#"{"auth": "open"}"#).unwrap();
    let overrides = signalbox::cli::Overrides {
        data_dir: dir.path().to_owned(),
        port: Some(0),
        auth: Some(signalbox::config::AuthMode::Required),
        ..Default::default()
    };
    let config = signalbox::config::Config::load(&overrides).unwrap();
    let server = signalbox::app::start(config).await.unwrap();
    let c = common::Client { addr: server.addr };
    c.get("/api/servers", None)
        .await
        .expect_error(401, "UNAUTHORIZED");
    server.shutdown().await;
}
