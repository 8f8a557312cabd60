//! Three nodes started together on an empty database apply each migration exactly once (the
//! PostgreSQL migration run holds `pg_advisory_lock`): `refinery_schema_history` has one row per
//! migration and every node answers ready. The nodes run standalone hubs on the shared
//! database (the migration run does not depend on the mode; `pg_faults` runs redis mode).

use signalbox::directory::postgres::{migrate::migration_count, pool::connect_one};

use crate::harness::{Cluster, Mode, available};

#[tokio::test]
#[ignore = "cluster suite: starts processes, Redis and PostgreSQL; run by scripts/test"]
async fn three_nodes_started_together_apply_each_migration_once() {
    let test = "three_nodes_started_together_apply_each_migration_once";
    if available(test).is_none() {
        return;
    }
    // `up` creates an empty database and starts the three nodes at once; it returns when each
    // answered /api/ready, so each finished its migration run.
    let cluster = Cluster::up(3, Mode::Standalone);
    let client = connect_one(&cluster.postgres_url).await.expect("connect");
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .expect("history")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let expected: Vec<i32> = (1..=i32::try_from(migration_count()).expect("count")).collect();
    assert_eq!(versions, expected, "one history row per migration");
    let users: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .expect("the users table exists")
        .get(0);
    assert_eq!(users, 0);
}
