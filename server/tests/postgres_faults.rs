//! PostgreSQL outages seen by `PgDirectory` (issue 13): an unreachable server is reported
//! promptly as unavailable (answered 503 by the HTTP layer) and never hangs a call; connections
//! the server drops (`pg_terminate_backend`, what a restart does to every session) are replaced
//! by the pool, so the same directory works again without a restart.
//! The second test needs `SIGNALBOX_TEST_POSTGRES_URL` (see tests/pg).

mod pg;

use std::time::{Duration, Instant};

use signalbox::directory::postgres::pool::connect_one;
use signalbox::directory::postgres::{PgDirectory, PoolSettings, migrate};
use signalbox::directory::store::PageQuery;
use signalbox::directory::{Cx, Directory, DirectoryError};

fn cx() -> Cx {
    Cx::new("postgres_faults")
}

fn first_page() -> PageQuery {
    PageQuery {
        limit: 10,
        cursor: None,
    }
}

fn is_unavailable(error: &DirectoryError) -> bool {
    matches!(error, DirectoryError::Db(db) if db.is_unavailable())
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_without_hanging() {
    // A loopback port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/signalbox");
    let settings = PoolSettings {
        size: 2,
        timeout: Duration::from_millis(500),
        ..PoolSettings::default()
    };
    let dir = PgDirectory::new(&url, &settings).expect("a pool builds without connecting");
    let started = Instant::now();
    let error = dir
        .list_games(&cx(), first_page())
        .await
        .expect_err("no server");
    assert!(is_unavailable(&error), "{error:?}");
    assert!(!dir.ping().await);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the pool's timeouts, took {:?}",
        started.elapsed()
    );
    assert!(migrate(&url).await.is_err(), "migrate reports it too");
}

#[tokio::test]
async fn dropped_connections_are_replaced_without_a_restart() {
    let Some(base) = pg::server_url("dropped_connections_are_replaced_without_a_restart") else {
        return;
    };
    let url = pg::fresh_schema_url(&base).await;
    let app = format!("faults_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{url}&application_name={app}");
    let dir = PgDirectory::open(&url, &PoolSettings::default())
        .await
        .expect("open");
    assert!(dir.list_games(&cx(), first_page()).await.is_ok());
    assert!(dir.ping().await);

    let admin = connect_one(&base).await.expect("admin connection");
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("terminate")
        .get(0);
    assert!(
        killed >= 1,
        "the directory's pooled connection was terminated"
    );

    // A call may still meet the dead session once; it must then say "unavailable", and drop
    // that connection so the next call gets a fresh one.
    let (mut recovered, mut failures) = (false, 0);
    for _ in 0..5 {
        match dir.list_games(&cx(), first_page()).await {
            Ok(_) => {
                recovered = true;
                break;
            }
            Err(error) => {
                assert!(is_unavailable(&error), "{error:?}");
                failures += 1;
            }
        }
    }
    assert!(recovered, "the same directory works again");
    assert!(failures <= 1, "{failures} calls met the dead session");
    assert!(dir.ping().await);
}

/// A directory whose sessions are bounded by `statement_timeout` and `lock_timeout` of 300 ms.
async fn bounded_directory(test: &str) -> Option<(String, PgDirectory)> {
    let base = pg::server_url(test)?;
    let url = pg::fresh_schema_url(&base).await;
    let settings = PoolSettings {
        statement_timeout: Duration::from_millis(300),
        ..PoolSettings::default()
    };
    let dir = PgDirectory::open(&url, &settings).await.expect("open");
    Some((url, dir))
}

/// Guards the test itself: before the bounds existed, the calls below never returned.
const NEVER: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_statement_that_runs_too_long_is_cut_and_unavailable() {
    let Some((_, dir)) =
        bounded_directory("a_statement_that_runs_too_long_is_cut_and_unavailable").await
    else {
        return;
    };
    let conn = dir.pool().get().await.expect("checkout");
    let error = tokio::time::timeout(NEVER, conn.query_one("SELECT pg_sleep(30)", &[]))
        .await
        .expect("statement_timeout cuts the statement")
        .expect_err("cut");
    assert_eq!(error.code().map(|c| c.code()), Some("57014"), "{error}");
    let error = signalbox::directory::DbError::from(error);
    assert!(error.is_unavailable(), "answered 503: {error:?}");
    drop(conn);
    assert!(dir.ping().await, "the session survives a cut statement");
}

#[tokio::test]
async fn a_call_waiting_on_a_held_lock_is_unavailable_not_hung() {
    let Some((url, dir)) =
        bounded_directory("a_call_waiting_on_a_held_lock_is_unavailable_not_hung").await
    else {
        return;
    };
    assert!(dir.list_games(&cx(), first_page()).await.is_ok());
    // Another session holds the games table: every read of it waits for the lock.
    let mut other = connect_one(&url).await.expect("second session");
    let tx = other.transaction().await.expect("begin");
    tx.batch_execute("LOCK TABLE games IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let error = tokio::time::timeout(NEVER, dir.list_games(&cx(), first_page()))
        .await
        .expect("lock_timeout ends the wait")
        .expect_err("the table is locked");
    assert!(is_unavailable(&error), "{error:?}");
    tx.rollback().await.expect("release");
    assert!(
        dir.list_games(&cx(), first_page()).await.is_ok(),
        "works again once the lock is gone"
    );
}
