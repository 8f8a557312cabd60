//! Writes under concurrency: parallel clients get only 2xx, an `Idempotency-Key` sent by many
//! requests at once stores one record, a busy database answers 503 with `Retry-After`.
//!
//! Sizes can be raised for the fault suite (`scripts/faults`) through `SIGNALBOX_WRITES_SCALE`
//! (a multiplier, default 1).

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::BTreeMap;

use common::{Client, TestServer};
use futures_util::future::join_all;
use serde_json::{Value, json};

fn scale() -> usize {
    std::env::var("SIGNALBOX_WRITES_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

async fn post_with(
    c: Client,
    token: &str,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> common::Response {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    if let Some(key) = key {
        headers.push(("Idempotency-Key", key));
    }
    c.raw("POST", path, &headers, body.to_string().as_bytes())
        .await
}

/// Every public server's name, with how many servers carry it.
async fn names(c: Client) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/servers?limit=100&cursor={cursor}"),
            None => "/api/servers?limit=100".to_owned(),
        };
        let page = c.get(&path, None).await.expect_ok(200);
        for item in page["items"].as_array().unwrap() {
            *counts
                .entry(item["name"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return counts,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_creates_and_join_requests_get_only_2xx() {
    const CLIENTS: usize = 25;
    let creates_per_client = 20 * scale();
    const JOINS_PER_CLIENT: usize = 4;
    // 25 people arriving at once: raised per-address limits, since all share 127.0.0.1.
    let s = TestServer::start_with(common::MANY_CLIENTS_ONE_ADDRESS).await;
    let c = s.client();
    let (owner, _) = c.guest("Owner").await;
    for i in 0..JOINS_PER_CLIENT {
        c.call(
            "POST",
            "/api/servers",
            Some(&owner),
            Some(&json!({ "id": format!("private-{i}"), "name": "P", "visibility": "private" })),
        )
        .await
        .expect_ok(201);
    }
    let clients = (0..CLIENTS).map(|n| async move {
        let (token, _) = c.guest(&format!("user {n}")).await;
        let mut statuses = Vec::new();
        for i in 0..creates_per_client {
            let body = json!({ "name": format!("c{n}-{i}") });
            statuses.push(
                post_with(c, &token, "/api/servers", None, &body)
                    .await
                    .status,
            );
            if i % (creates_per_client / JOINS_PER_CLIENT) == 0 {
                let server = i / (creates_per_client / JOINS_PER_CLIENT);
                let path = format!("/api/servers/private-{server}/join-requests");
                let body = json!({ "message": "let me in" });
                statuses.push(post_with(c, &token, &path, None, &body).await.status);
            }
        }
        statuses
    });
    let statuses: Vec<u16> = join_all(clients).await.into_iter().flatten().collect();
    let mut by_status = BTreeMap::new();
    for status in &statuses {
        *by_status.entry(*status).or_insert(0) += 1;
    }
    println!(
        "{} creates + {} join requests from {CLIENTS} clients: {by_status:?}",
        CLIENTS * creates_per_client,
        CLIENTS * JOINS_PER_CLIENT
    );
    assert_eq!(
        statuses.len(),
        CLIENTS * (creates_per_client + JOINS_PER_CLIENT)
    );
    assert!(
        statuses.iter().all(|s| (200..300).contains(s)),
        "{by_status:?}"
    );
    let listed = names(c).await;
    assert_eq!(
        listed.values().sum::<usize>(),
        CLIENTS * creates_per_client,
        "every acknowledged create is listed (private ones are not)"
    );
    let pending = c
        .get(
            "/api/servers/private-0/join-requests?limit=100",
            Some(&owner),
        )
        .await
        .expect_ok(200);
    assert_eq!(pending["items"].as_array().unwrap().len(), CLIENTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_sent_ten_times_at_once_stores_one_server() {
    const SAME_KEY: usize = 10;
    let rounds = 20 * scale();
    // 200 same-key requests in one burst from one address: past the default write bucket.
    let s = TestServer::start_with(common::MANY_CLIENTS_ONE_ADDRESS).await;
    let c = s.client();
    let (token, _) = c.guest("Racer").await;
    for round in 0..rounds {
        let key = format!("race-{round}");
        let body = json!({ "name": format!("race {round}") });
        let answers = join_all(
            (0..SAME_KEY).map(|_| post_with(c, &token, "/api/servers", Some(&key), &body)),
        )
        .await;
        let ids: Vec<Value> = answers
            .iter()
            .map(|a| a.expect_ok(201)["id"].clone())
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: {ids:?}");
    }
    let listed = names(c).await;
    assert_eq!(listed.len(), rounds);
    assert!(
        listed.values().all(|n| *n == 1),
        "one server per key: {listed:?}"
    );
    println!("{rounds} rounds of {SAME_KEY} concurrent requests with one key: one server each");
}

#[tokio::test]
async fn keys_are_per_route_and_mismatches_and_secrets_are_handled() {
    let s = TestServer::start().await;
    let c = s.client();
    let (token, _) = c.guest("Ada").await;
    let created = post_with(
        c,
        &token,
        "/api/servers",
        Some("k"),
        &json!({ "name": "A" }),
    )
    .await
    .expect_ok(201);
    // Key order and spacing do not make a different request.
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "k"),
    ];
    let again = c
        .raw("POST", "/api/servers", &headers, b"{ \"name\" :  \"A\" }")
        .await
        .expect_ok(201);
    assert_eq!(created["id"], again["id"]);
    post_with(
        c,
        &token,
        "/api/servers",
        Some("k"),
        &json!({ "name": "B" }),
    )
    .await
    .expect_error(422, "IDEMPOTENCY_MISMATCH");
    // The same key on another route is another record.
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/servers/{id}/password");
    let path = path.as_str();
    let put = |body: &'static str| c.raw("PUT", path, &headers, body.as_bytes());
    put(r#"{"password":"hunter2"}"#).await.expect_ok(200);
    let replay = put(r#"{"password":"hunter2"}"#).await;
    assert_eq!(replay.expect_ok(200), json!({ "ok": true }));
    put(r#"{"password":"other"}"#)
        .await
        .expect_error(422, "IDEMPOTENCY_MISMATCH");
    // The stored record of the password route holds neither the password nor the answer.
    let db = rusqlite_free_text(&s.dir.path().join("signalbox.db"));
    assert!(
        !db.contains("hunter2"),
        "a password reached the database file"
    );
}

/// The database file and its WAL as lossy text (to search for a secret).
fn rusqlite_free_text(db: &std::path::Path) -> String {
    let mut text = String::new();
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", db.display());
        if let Ok(bytes) = std::fs::read(&path) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

#[tokio::test]
async fn bodies_must_be_objects_and_names_refuse_control_characters() {
    let s = TestServer::start().await;
    let c = s.client();
    let (token, _) = c.guest("Ada").await;
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    for (method, path, body) in [
        ("POST", "/api/servers", &br#"["arr-id","arr-name"]"#[..]),
        ("POST", "/api/servers", b"\"arr-id\""),
        ("POST", "/api/auth/guest", br#"["x"]"#),
    ] {
        let answer = c.raw(method, path, &headers, body).await;
        answer.expect_error(400, "INVALID_BODY");
        assert!(answer.text.contains("JSON object"), "{}", answer.text);
    }
    post_with(
        c,
        &token,
        "/api/servers",
        None,
        &json!({ "id": "s", "name": "S" }),
    )
    .await
    .expect_ok(201);
    c.raw("PATCH", "/api/servers/s", &headers, br#"["x"]"#)
        .await
        .expect_error(400, "INVALID_BODY");
    c.get("/api/servers/arr-id", None)
        .await
        .expect_error(404, "NOT_FOUND");
    for name in ["nul\u{0}name", "esc\u{1b}[31m", "line\nbreak", "del\u{7f}"] {
        let answer = post_with(c, &token, "/api/servers", None, &json!({ "name": name })).await;
        answer.expect_error(400, "BAD_REQUEST");
        assert!(
            answer.text.contains("control characters"),
            "{}",
            answer.text
        );
        c.call(
            "POST",
            "/api/auth/guest",
            None,
            Some(&json!({ "displayName": name })),
        )
        .await
        .expect_error(400, "BAD_REQUEST");
    }
    post_with(
        c,
        &token,
        "/api/servers",
        None,
        &json!({ "name": "Multi", "description": "two\nlines\tand a tab" }),
    )
    .await
    .expect_ok(201);
    let wrong = post_with(c, &token, "/api/servers", None, &json!({ "name": 123 })).await;
    wrong.expect_error(400, "BAD_REQUEST");
    assert!(
        wrong.text.contains("`name`") && wrong.text.contains("expected a string"),
        "{}",
        wrong.text
    );
}
