//! U+0000 in anything a client sends (path segments, query parameters, JSON string fields) is
//! answered alike on SQLite and PostgreSQL (issue 13): PostgreSQL text cannot hold U+0000, and
//! a statement carrying one fails (SQLSTATE 22021), which must never surface as a 500.
//! Every route is called with `%00` in each path parameter and query, and with a body whose
//! string fields hold U+0000; the SQLite answer is the reference.
//! Needs `SIGNALBOX_TEST_POSTGRES_URL` (see tests/pg); skipped with a printed reason without it.

mod common;
mod pg;

use common::{Client, TestServer};
use serde_json::{Value, json};

/// Every route template with a method; `{}` placeholders are replaced in turn.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/servers?q=a%00&cursor=a%00"),
    ("POST", "/api/servers"),
    ("GET", "/api/servers/{}"),
    ("PATCH", "/api/servers/{}"),
    ("DELETE", "/api/servers/{}"),
    ("PUT", "/api/servers/{}/password"),
    ("GET", "/api/servers/{}/bans?cursor=%00"),
    ("PUT", "/api/servers/{}/bans/{}"),
    ("POST", "/api/servers/{}/bans"),
    ("DELETE", "/api/servers/{}/bans/{}"),
    ("POST", "/api/servers/{}/invites"),
    ("GET", "/api/servers/{}/join-requests?cursor=%00"),
    ("POST", "/api/servers/{}/join-requests"),
    ("GET", "/api/servers/{}/join-requests/{}"),
    ("POST", "/api/servers/{}/join-requests/{}/approve"),
    ("POST", "/api/servers/{}/join-requests/{}/reject"),
    ("GET", "/api/servers/{}/members?cursor=%00"),
    ("POST", "/api/servers/{}/members"),
    ("PATCH", "/api/servers/{}/members/{}"),
    ("PUT", "/api/servers/{}/members/{}"),
    ("DELETE", "/api/servers/{}/members/{}"),
    ("GET", "/api/servers/{}/plugins"),
    ("GET", "/api/servers/{}/plugins/{}"),
    ("PUT", "/api/servers/{}/plugins/{}"),
    ("DELETE", "/api/servers/{}/plugins/{}"),
    ("GET", "/api/invites/{}"),
    ("POST", "/api/invites/{}/accept"),
    ("DELETE", "/api/invites/{}"),
    ("GET", "/api/games?cursor=%00"),
    ("PUT", "/api/games/{}"),
    ("DELETE", "/api/games/{}"),
    ("GET", "/api/users/{}"),
    ("POST", "/api/auth/guest"),
    ("POST", "/api/auth/challenge"),
    ("POST", "/api/auth/verify"),
];

/// Bodies whose string fields hold U+0000: one where every field does, and one per field
/// where only that field does and the rest is valid for most routes.
fn bodies() -> Vec<Value> {
    let valid = json!({
        "id": "srv-nul",
        "name": "Name",
        "displayName": "Ada",
        "description": "text",
        "tags": ["t"],
        "visibility": "private",
        "password": "secret-password",
        "reason": "spam",
        "userId": "someone",
        "role": "moderator",
        "message": "hello",
        "code": "code",
        "publicKey": "key",
        "challengeId": "challenge",
        "signature": "sig",
        "executables": ["game.exe"],
        "iconUrl": "https://example.com/i.png",
        "pluginId": "plug",
        "version": "1.0.0",
        "entry": "https://example.com/p.js",
        "maxUses": 1,
    });
    let mut out = vec![valid.clone()];
    let Value::Object(fields) = &valid else {
        unreachable!("an object")
    };
    for (key, value) in fields {
        let poisoned = match value {
            Value::String(s) => json!(format!("{s}\u{0}x")),
            Value::Array(_) => json!(["a\u{0}b"]),
            _ => continue,
        };
        let mut body = valid.clone();
        body[key] = poisoned;
        out.push(body);
    }
    out
}

async fn answers(c: Client, token: &str, server: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    let auth = format!("Bearer {token}");
    for (method, template) in ROUTES {
        // Each placeholder in turn holds U+0000; the others name real things where possible.
        let holes = template.matches("{}").count();
        let mut paths = Vec::new();
        for poisoned in 0..holes.max(1) {
            let mut path = (*template).to_owned();
            for i in 0..holes {
                let value = match (i, i == poisoned) {
                    (_, true) => "x%00y",
                    (0, false) => server,
                    _ => "someone",
                };
                path = path.replacen("{}", value, 1);
            }
            paths.push(path);
        }
        for path in paths {
            for (n, body) in bodies().iter().enumerate() {
                let text = body.to_string();
                let key = format!("nul-{method}-{path}-{n}").replace('%', "_");
                let headers = [
                    ("Authorization", auth.as_str()),
                    ("Content-Type", "application/json"),
                    ("Idempotency-Key", key.as_str()),
                ];
                let r = c.raw(method, &path, &headers, text.as_bytes()).await;
                out.push((format!("{method} {path} body#{n}"), r.status));
            }
        }
    }
    out
}

async fn run(variables: &str) -> Vec<(String, u16)> {
    let server = TestServer::start_with(variables).await;
    let c = server.client();
    let (token, _) = c.guest("Owner").await;
    let body = json!({ "name": "Home", "id": "home", "visibility": "private" });
    c.call("POST", "/api/servers", Some(&token), Some(&body))
        .await
        .expect_ok(201);
    answers(c, &token, "home").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_any_client_string_is_answered_as_on_sqlite() {
    let Some(base) = pg::server_url("nul_in_any_client_string_is_answered_as_on_sqlite") else {
        return;
    };
    let url = pg::fresh_schema_url(&base).await;
    let bucket = json!({ "burst": 100_000, "refillPerSec": 100_000 });
    let unlimited = json!({ "auth": bucket, "reads": bucket, "writes": bucket });
    let mut variables = json!({ "security": { "restRateLimits": unlimited } });
    let sqlite = run(&variables.to_string()).await;
    variables["directory"] = json!({ "backend": "postgres", "postgresUrl": url });
    let on_pg = variables.to_string();
    let postgres = run(&on_pg).await;
    let mut differ = Vec::new();
    for ((what, expected), (_, got)) in sqlite.iter().zip(&postgres) {
        assert_ne!(*expected, 500, "SQLite answered 500 to {what}");
        if expected != got {
            differ.push(format!("{what}: sqlite {expected}, postgres {got}"));
        }
    }
    assert_eq!(sqlite.len(), postgres.len());
    assert!(differ.is_empty(), "answers differ:\n{}", differ.join("\n"));
}
