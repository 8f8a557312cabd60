//! PostgreSQL migrations (issue 13): the embedded `migrations/postgres/` apply to an empty
//! database, a second run applies nothing, and three nodes migrating an empty database at the
//! same time apply each migration exactly once (the run holds `pg_advisory_lock`).
//! Needs `SIGNALBOX_TEST_POSTGRES_URL` (see tests/pg); skipped with a printed reason without it.

mod pg;

use signalbox::directory::postgres::{migrate, migrate::migration_count, pool::connect_one};

async fn history_rows(url: &str) -> i64 {
    let client = connect_one(url).await.expect("connect");
    client
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .expect("history")
        .get(0)
}

#[tokio::test]
async fn migrations_apply_once_to_an_empty_database() {
    let Some(base) = pg::server_url("migrations_apply_once_to_an_empty_database") else {
        return;
    };
    let url = pg::fresh_schema_url(&base).await;
    assert_eq!(migrate(&url).await.expect("migrate"), migration_count());
    assert_eq!(
        migrate(&url).await.expect("again"),
        0,
        "a second run applies nothing"
    );
    assert_eq!(history_rows(&url).await, 4);
    let client = connect_one(&url).await.expect("connect");
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() ORDER BY 1",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in [
        "auth_challenges",
        "bans",
        "games",
        "idempotency_records",
        "invites",
        "join_requests",
        "members",
        "plugin_manifests",
        "servers",
        "signing_keys",
        "users",
    ] {
        assert!(tables.contains(&table.to_owned()), "{table} in {tables:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_migrating_together_apply_each_migration_once() {
    let Some(base) = pg::server_url("three_nodes_migrating_together_apply_each_migration_once")
    else {
        return;
    };
    let url = pg::fresh_schema_url(&base).await;
    // Three connections, as three nodes starting at once would open.
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { migrate(&url).await })
        })
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        applied.push(run.await.expect("join").expect("migrate"));
    }
    assert_eq!(
        applied.iter().sum::<usize>(),
        4,
        "applied per node: {applied:?}"
    );
    assert_eq!(
        applied.iter().filter(|&&n| n == 4).count(),
        1,
        "{applied:?}"
    );
    assert_eq!(history_rows(&url).await, 4);
}
