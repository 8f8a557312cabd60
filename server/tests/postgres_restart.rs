//! A PostgreSQL crash and restart under a running signalbox (issue 13): while the database is
//! down (`pg_ctl stop -m immediate`) directory calls answer `503 UNAVAILABLE` with
//! `Retry-After`, `/api/ready` answers 503 and `/api/health` stays 200; once it is back the same
//! server answers 200 again, without a restart.
//!
//! Stops and starts the server `scripts/postgres` manages, so it runs only when the URL came
//! from there (`target/postgres/` exists); its own test binary, so no other test shares the
//! outage (cargo runs test binaries one after another). A guard starts the database again if
//! the test fails half-way.

mod common;
mod pg;

use std::path::PathBuf;
use std::process::Command;

use common::TestServer;
use serde_json::json;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn postgres(action: &str) {
    let status = Command::new(repo().join("scripts/postgres"))
        .arg(action)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run scripts/postgres");
    assert!(status.success(), "scripts/postgres {action} failed");
}

/// Starts the database again when dropped (a failed assertion must not leave it down).
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        // No assertion here: a panic while unwinding would abort the test binary.
        let started = Command::new(repo().join("scripts/postgres"))
            .arg("start")
            .stdout(std::process::Stdio::null())
            .status();
        if !matches!(started, Ok(s) if s.success()) {
            eprintln!("scripts/postgres start failed: {started:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_crash_answers_503_then_recovers_without_a_restart() {
    let test = "a_postgres_crash_answers_503_then_recovers_without_a_restart";
    let Some(base) = pg::server_url(test) else {
        return;
    };
    if !repo().join("target/postgres/datadir").exists() {
        println!("SKIPPED {test}: the test server is not managed by scripts/postgres");
        return;
    }
    let url = pg::fresh_schema_url(&base).await;
    let variables =
        json!({ "directory": { "backend": "postgres", "postgresUrl": url } }).to_string();
    let server = TestServer::start_with(&variables).await;
    let c = server.client();
    c.get("/api/servers", None).await.expect_ok(200);

    let restart = Restart;
    postgres("stop-immediate");
    let down = c.get("/api/servers", None).await;
    down.expect_error(503, "UNAVAILABLE");
    assert!(
        down.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("retry-after")),
        "{:?}",
        down.headers
    );
    assert_eq!(c.get("/api/ready", None).await.status, 503);
    c.get("/api/health", None).await.expect_ok(200);

    drop(restart);
    // The first call after the restart may still meet a session the crash cut (503); the one
    // after it has a fresh connection.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let status = c.get("/api/servers", None).await.status;
        statuses.push(status);
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{statuses:?}");
    }
    assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
    c.get("/api/ready", None).await.expect_ok(200);
}
