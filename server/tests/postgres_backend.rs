//! Two signalbox servers on one PostgreSQL database (`directory.backend: "postgres"`, issue 13):
//! started together on an empty schema (the migration lock lets each migration run once), they
//! share the signing key (a token from one is accepted by the other), the directory (a server
//! created on one is listed by the other) and the `Idempotency-Key` records (a retry that lands
//! on the other node replays the first answer).
//! Needs `SIGNALBOX_TEST_POSTGRES_URL` (see tests/pg); skipped with a printed reason without it.

mod common;
mod pg;

use common::TestServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_postgres_directory() {
    let Some(base) = pg::server_url("two_nodes_share_one_postgres_directory") else {
        return;
    };
    let url = pg::fresh_schema_url(&base).await;
    let variables =
        json!({ "directory": { "backend": "postgres", "postgresUrl": url } }).to_string();
    let (a, b) = tokio::join!(
        TestServer::start_with(&variables),
        TestServer::start_with(&variables)
    );
    let (a, b) = (a.client(), b.client());
    a.get("/api/ready", None).await.expect_ok(200);
    b.get("/api/ready", None).await.expect_ok(200);

    let (token, user) = a.guest("Ada").await;
    let me = b.get("/api/auth/me", Some(&token)).await.expect_ok(200);
    assert_eq!(
        me["userId"],
        user.as_str(),
        "one signing key for both nodes: {me}"
    );

    let body = json!({ "name": "Shared", "id": "srv-shared" }).to_string();
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Idempotency-Key", "create-shared"),
    ];
    let first = a
        .raw("POST", "/api/servers", &headers, body.as_bytes())
        .await;
    let created = first.expect_ok(201);
    let retried = b
        .raw("POST", "/api/servers", &headers, body.as_bytes())
        .await;
    assert_eq!(
        retried.expect_ok(201),
        created,
        "the retry on the other node replays"
    );

    let listed = b.get("/api/servers?q=shar", None).await.expect_ok(200);
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, ["srv-shared"], "{listed}");
    b.get("/api/servers/srv-shared", None).await.expect_ok(200);
}
