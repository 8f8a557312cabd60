//! The real binary: data survives SIGKILL and a restart; `migrate` and `check-config` work; a
//! malformed variables file stops start-up with the key named.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_signalbox");

/// Spawns `signalbox serve` on port 0 and reads the bound address from its JSON log.
fn spawn(data_dir: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--log-format", "json", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn signalbox");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .expect("read log");
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let Some(addr) = entry["fields"]["addr"].as_str() {
            break addr.parse().expect("addr");
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

#[tokio::test]
async fn data_survives_sigkill_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn(dir.path());
    let c = common::Client { addr };
    let (token, user) = c.guest("Ada").await;
    c.call(
        "POST",
        "/api/servers",
        Some(&token),
        Some(&json!({ "id": "kept", "name": "Kept", "visibility": "private" })),
    )
    .await
    .expect_ok(201);
    let invite = c
        .call("POST", "/api/servers/kept/invites", Some(&token), None)
        .await
        .expect_ok(201);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (mut child, addr) = spawn(dir.path());
    let c = common::Client { addr };
    // The signing key survived: the old token still works, and so does its ownership.
    let me = c.get("/api/auth/me", Some(&token)).await.expect_ok(200);
    assert_eq!(me["userId"], user.as_str());
    let server = c
        .get("/api/servers/kept", Some(&token))
        .await
        .expect_ok(200);
    assert_eq!(server["ownerId"], user.as_str());
    let code = invite["code"].as_str().unwrap();
    c.get(&format!("/api/invites/{code}"), None)
        .await
        .expect_ok(200);
    let profile = c
        .get(&format!("/api/users/{user}"), None)
        .await
        .expect_ok(200);
    assert_eq!(profile["displayName"], "Ada");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn migrate_applies_every_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let run = || {
        Command::new(BIN)
            .arg("migrate")
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    // Every file in the migrations folder, whatever the latest version is.
    let migrations = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/directory/migrations"
    ))
    .unwrap()
    .filter(|e| {
        e.as_ref()
            .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sql"))
    })
    .count();
    let applied = format!("{migrations} migration(s) applied");
    assert!(
        String::from_utf8_lossy(&first.stdout).contains(&applied),
        "{first:?}"
    );
    let second = run();
    assert!(String::from_utf8_lossy(&second.stdout).contains("0 migration(s) applied"));
    assert!(
        dir.path().join("variables.json").exists(),
        "defaults written"
    );
}

#[test]
fn malformed_variables_stop_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str| {
        std::fs::write(dir.path().join("variables.json"), text).unwrap();
        Command::new(BIN)
            .arg("check-config")
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let unknown = check(r#"{"linkPreview": false}"#);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("linkPreview"));
    let wrong = check(r#"{"port": "eighty"}"#);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("key `port`"));
    let secret = check(r#"{"klipyApiKey": "very-secret-value"}"#);
    assert!(secret.status.success(), "{secret:?}");
    assert!(!String::from_utf8_lossy(&secret.stdout).contains("very-secret-value"));
}

#[tokio::test]
async fn sigterm_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = spawn(dir.path());
    common::Client { addr }
        .get("/api/health", None)
        .await
        .expect_ok(200);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful exit: {exit:?}");
}

#[test]
fn export_writes_openapi_and_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("export")
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(dir.path().join("openapi.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        dir.path()
            .join("schemas/HealthResponse.schema.json")
            .exists()
    );
}
