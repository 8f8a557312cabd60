//! PostgreSQL test helpers: the server the tests use comes from `SIGNALBOX_TEST_POSTGRES_URL`
//! (`scripts/postgres start` prints it); each test gets a schema of its own, reached through
//! the URL's `options=-csearch_path=...`, so tests never see each other's tables.
//! Without the variable a test prints why it is skipped and passes; under `CI=true` it fails.

#![allow(dead_code, missing_docs)]

use signalbox::directory::postgres::pool::connect_one;

/// The variable naming the test server.
pub const URL_VARIABLE: &str = "SIGNALBOX_TEST_POSTGRES_URL";

/// The server URL, or `None` (after printing the reason) when the tests cannot run here.
/// Panics under `CI=true`: CI must run them.
pub fn server_url(test: &str) -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let reason =
                format!("{URL_VARIABLE} is not set (run `export $(scripts/postgres start)` first)");
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: PostgreSQL tests cannot be skipped in CI: {reason}"
            );
            println!("SKIPPED {test}: {reason}");
            None
        }
    }
}

/// Creates an empty schema `t_<uuid>` and returns a URL whose sessions use it as their
/// search path (so refinery's history table and every directory table land there).
pub async fn fresh_schema_url(base: &str) -> String {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let client = connect_one(base).await.expect("connect to the test server");
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-csearch_path%3D{schema}")
}
